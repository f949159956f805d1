//! `rust-response-transformer`: rewrites the upstream's JSON response in the
//! `response` phase. Declaring `response` makes Kong buffer the upstream
//! response, so the whole body is available here — compressed, when the
//! upstream compressed it: the body is decoded first and the client gets the
//! edited body in the same coding (or uncompressed, with `decompress`), with
//! `Content-Encoding` and `Content-Length` to match.

use kong_pdk::{Error, Kong, PhaseResult, Plugin, Schema};
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
    /// Send an edited body uncompressed even when the upstream compressed it.
    #[serde(default)]
    decompress: bool,
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
        let body = match kong.service_response().get_decoded_body().await {
            Ok(body) => body,
            // A coding we cannot read (say zstd): pass the body on untouched.
            Err(e @ Error::ContentEncoding { .. }) => {
                kong.log().warn(format!("body left unchanged: {e}")).await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(&body.data) else {
            return Ok(());
        };
        for name in &self.remove_json {
            object.remove(name);
        }
        for (name, value) in &self.add_json {
            object.insert(name.clone(), value.clone().into());
        }
        let mut body = body.with_data(serde_json::to_vec(&object)?);
        if self.decompress {
            body = body.send_identity();
        }
        // Replacing the body ends the phase (it is an exit); the upstream's
        // other headers are already on the response.
        kong.response()
            .replace_body(status, body, [("Content-Type", "application/json")])
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

    fn compressed(encoding: &str) -> UpstreamResponse {
        UpstreamResponse::json(200, &json!({"id": 7, "secret": "s"})).content_encoding(encoding)
    }

    #[tokio::test]
    async fn a_compressed_body_is_edited_and_sent_back_in_its_coding() {
        for encoding in ["gzip", "br", "deflate", "gzip, br"] {
            let mut env = TestEnv::new(Request::get("http://api.test/"))
                .upstream_response(compressed(encoding));
            let out = env.run::<Config>(config()).await;
            assert_eq!(out.response.status, 200, "{encoding}");
            assert_eq!(out.response.header("content-encoding"), Some(encoding));
            let length = out.response.body.len().to_string();
            assert_eq!(out.response.header("content-length"), Some(&*length));
            let body: serde_json::Value =
                serde_json::from_slice(&out.response.decoded_body().unwrap()).unwrap();
            assert_eq!(body, json!({"id": 7, "served_by": "rust"}), "{encoding}");
        }
    }

    #[tokio::test]
    async fn decompress_sends_the_edited_body_uncompressed() {
        let mut config = config();
        config["decompress"] = json!(true);
        let mut env =
            TestEnv::new(Request::get("http://api.test/")).upstream_response(compressed("br"));
        let out = env.run::<Config>(config).await;
        assert_eq!(out.response.header("content-encoding"), None);
        let length = out.response.body.len().to_string();
        assert_eq!(out.response.header("content-length"), Some(&*length));
        assert_eq!(
            out.response.body_json().unwrap(),
            json!({"id": 7, "served_by": "rust"})
        );
    }

    #[tokio::test]
    async fn an_unknown_coding_passes_through_with_a_warning() {
        let mut env = TestEnv::new(Request::get("http://api.test/")).upstream_response(
            UpstreamResponse::new(200)
                .header("content-type", "application/json")
                .header("content-encoding", "zstd")
                .body(&b"\x28\xb5\x2f\xfd"[..]),
        );
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.body, b"\x28\xb5\x2f\xfd");
        assert_eq!(out.response.header("content-encoding"), Some("zstd"));
        assert!(
            out.logs
                .iter()
                .any(|l| l.message.contains("unsupported Content-Encoding \"zstd\"")),
            "{:?}",
            out.logs
        );
    }
}
