//! `rust-response-transformer`: rewrites the upstream's JSON response in the
//! `response` phase. Declaring `response` makes Kong buffer the upstream
//! response, so the whole body is available here.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// The plugin's configuration.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Top-level JSON fields to add (or replace), as strings.
    #[serde(default)]
    add_json: std::collections::BTreeMap<String, String>,
    /// Top-level JSON fields to remove.
    #[serde(default)]
    remove_json: Vec<String>,
    /// Response header recording the upstream's status.
    #[kong(default = "x-upstream-status")]
    status_header: String,
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn response(&self, kong: &mut Kong) -> PhaseResult {
        let status = kong.service_response().get_status().await?;
        let content_type = kong.service_response().get_header("content-type").await?;
        kong.response()
            .set_header(&self.status_header, &status.to_string())
            .await?;
        if !content_type.starts_with("application/json") {
            return Ok(()); // Kong sends the buffered body unchanged.
        }
        let body = kong.service_response().get_raw_body().await?;
        let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(&body) else {
            return Ok(());
        };
        for name in &self.remove_json {
            object.remove(name);
        }
        for (name, value) in &self.add_json {
            object.insert(name.clone(), value.clone().into());
        }
        let new_body = serde_json::to_vec(&object)?;
        // The only way to replace the body is to exit with it; the upstream's
        // headers are already on the response.
        kong.response()
            .exit(status, new_body, [("Content-Type", "application/json")])
            .await?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 800)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_test::{Request, TestEnv, UpstreamResponse};
    use serde_json::json;

    fn config() -> serde_json::Value {
        json!({"add_json": {"served_by": "rust"}, "remove_json": ["secret"]})
    }

    #[tokio::test]
    async fn rewrites_the_buffered_json_body() {
        let mut env = TestEnv::new(Request::get("http://api.test/users/7")).upstream_response(
            UpstreamResponse::json(201, &json!({"id": 7, "secret": "s"})).header("x-up", "1"),
        );
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.status, 201);
        assert_eq!(
            out.response.body_json().unwrap(),
            json!({"id": 7, "served_by": "rust"})
        );
        assert_eq!(out.response.header("x-upstream-status"), Some("201"));
        assert_eq!(
            out.response.header("x-up"),
            Some("1"),
            "upstream headers kept"
        );
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
    }

    #[tokio::test]
    async fn other_bodies_pass_unchanged() {
        let mut env = TestEnv::new(Request::get("http://api.test/")).upstream_response(
            UpstreamResponse::new(200)
                .header("content-type", "text/plain")
                .body("hello"),
        );
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.body_text(), "hello");
        assert_eq!(out.response.header("x-upstream-status"), Some("200"));
    }
}
