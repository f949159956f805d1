//! `rust-request-transformer`: rewrites the request Kong sends upstream —
//! path, query, headers, body — and can send it to another target. It can
//! also insist on body fields: the body is parsed by its content type (JSON,
//! form or multipart) exactly as Kong's `kong.request.get_body` does.

use kong_pdk::{Error, Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// Where to send the request instead of the service's host.
#[derive(Debug, Deserialize, Schema)]
struct Target {
    /// Host name or IP address.
    host: String,
    /// Port.
    #[kong(between = [1, 65535])]
    port: u16,
}

/// The plugin's configuration.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Replace the upstream path (must start with `/`).
    #[kong(match = "^/")]
    path: Option<String>,
    /// Replace the method.
    #[kong(one_of = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])]
    method: Option<String>,
    /// Headers to set, as `name:value`.
    #[serde(default)]
    set_headers: Vec<String>,
    /// Headers to remove.
    #[serde(default)]
    remove_headers: Vec<String>,
    /// Query arguments to add (existing values are kept).
    #[serde(default)]
    add_query: std::collections::BTreeMap<String, String>,
    /// Query arguments to remove.
    #[serde(default)]
    remove_query: Vec<String>,
    /// Replace the body with this text.
    body: Option<String>,
    /// Send the request to this host and port.
    target: Option<Target>,
    /// Body fields every request must have (a JSON object, form or
    /// multipart body); otherwise 400 naming the missing ones.
    #[serde(default)]
    require_body_fields: Vec<String>,
}

impl Config {
    fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.set_headers.iter().filter_map(|h| {
            let (name, value) = h.split_once(':')?;
            Some((name.trim(), value.trim()))
        })
    }
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn init(&mut self) -> Result<(), kong_pdk::BoxError> {
        if let Some(bad) = self.set_headers.iter().find(|h| !h.contains(':')) {
            return Err(format!("set_headers entry {bad:?} is not name:value").into());
        }
        Ok(())
    }

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        if !self.require_body_fields.is_empty() {
            type Fields = serde_json::Map<String, serde_json::Value>;
            let problem = match kong.request().get_body::<Fields>().await {
                Ok(fields) => {
                    let missing: Vec<&String> = self
                        .require_body_fields
                        .iter()
                        .filter(|f| !fields.contains_key(f.as_str()))
                        .collect();
                    (!missing.is_empty()).then(
                        || serde_json::json!({"message": "missing body fields", "fields": missing}),
                    )
                }
                // Kong's own message (`missing content type`, `unsupported
                // content type '…'`, …), or a body that is not an object.
                Err(e @ (Error::Kong { .. } | Error::Value { .. })) => {
                    Some(serde_json::json!({"message": format!("cannot read the body: {e}")}))
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(body) = problem {
                kong.response().exit_json(400, &body, []).await?;
                return Ok(());
            }
        }
        if let Some(path) = &self.path {
            kong.service_request().set_path(path).await?;
        }
        if let Some(method) = &self.method {
            kong.service_request().set_method(method).await?;
        }
        if !self.add_query.is_empty() || !self.remove_query.is_empty() {
            let mut query = kong.request().get_query().await?;
            for name in &self.remove_query {
                query.remove(name);
            }
            for (name, value) in &self.add_query {
                query.append(name.clone(), value.clone());
            }
            kong.service_request().set_query(&query).await?;
        }
        for name in &self.remove_headers {
            kong.service_request().clear_header(name).await?;
        }
        for (name, value) in self.header_pairs() {
            kong.service_request().set_header(name, value).await?;
        }
        if let Some(body) = &self.body {
            kong.service_request().set_raw_body(body).await?;
        }
        if let Some(target) = &self.target {
            kong.service().set_target(&target.host, target.port).await?;
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 801)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_test::{Request, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn the_upstream_sees_every_change() {
        let mut env = TestEnv::new(
            Request::get("http://api.test/v1/items?a=1&drop=x")
                .header("cookie", "secret")
                .header("x-keep", "yes"),
        );
        let out = env
            .run::<Config>(json!({
                "path": "/v2/items",
                "method": "POST",
                "set_headers": ["x-added: yes"],
                "remove_headers": ["cookie"],
                "add_query": {"b": "2"},
                "remove_query": ["drop"],
                "body": "{\"x\":1}",
                "target": {"host": "10.1.2.3", "port": 9000},
            }))
            .await;
        assert_eq!(out.response.status, 200);
        let up = &out.upstream_request;
        assert_eq!(up.method, "POST");
        assert_eq!(up.path, "/v2/items");
        assert_eq!(up.query_arg("a").as_deref(), Some("1"));
        assert_eq!(up.query_arg("b").as_deref(), Some("2"));
        assert_eq!(up.query_arg("drop"), None);
        assert_eq!(up.header("x-added"), Some("yes"));
        assert_eq!(up.header("cookie"), None);
        assert_eq!(up.header("x-keep"), Some("yes"));
        assert_eq!(up.body_text(), "{\"x\":1}");
        assert_eq!((up.host.as_str(), up.port), ("10.1.2.3", 9000));
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
    }

    #[tokio::test]
    async fn an_empty_config_changes_nothing() {
        let mut env = TestEnv::new(Request::get("http://api.test/v1/items?a=1"));
        let out = env.run::<Config>(json!({})).await;
        assert_eq!(out.upstream_request.path, "/v1/items");
        assert!(out.calls.is_empty(), "{:?}", out.methods());
    }

    #[tokio::test]
    async fn required_body_fields_are_read_from_json_form_and_multipart() {
        use kong_pdk_test::Part;
        let config = json!({"require_body_fields": ["sku", "quantity"]});
        let url = "http://api.test/orders";
        let complete = [
            Request::post(url, "").json(&json!({"sku": "a-1", "quantity": 2})),
            Request::post(url, "").form(&[("sku", "a-1"), ("quantity", "2")]),
            Request::post(url, "")
                .multipart(&[Part::field("sku", "a-1"), Part::field("quantity", "2")]),
        ];
        for request in complete {
            let out = TestEnv::new(request).run::<Config>(config.clone()).await;
            assert_eq!(out.response.status, 200, "{}", out.response.body_text());
        }
        let out = TestEnv::new(Request::post(url, "").form(&[("sku", "a-1")]))
            .run::<Config>(config.clone())
            .await;
        assert_eq!(out.response.status, 400);
        assert_eq!(
            out.response.body_json().unwrap(),
            json!({"message": "missing body fields", "fields": ["quantity"]})
        );
        let out = TestEnv::new(Request::post(url, "sku=a-1").header("content-type", "text/plain"))
            .run::<Config>(config)
            .await;
        assert_eq!(out.response.status, 400);
        assert!(
            out.response
                .body_text()
                .contains("unsupported content type 'text/plain'"),
            "{}",
            out.response.body_text()
        );
    }
}
