//! The README's example: how a plugin author's unit test reads.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use kong_pdk_test::{Request, TestEnv};
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Config {
    #[kong(default = "hello")]
    message: String,
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        let greeting = format!("Rust says {} to {host}", self.message);
        kong.response()
            .set_header("x-hello-from-rust", &greeting)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn greets() {
    let mut env = TestEnv::new(
        Request::get("https://example.com/path?q=1")
            .header("x-api-key", "k1")
            .client_ip("10.0.0.9"),
    );
    let out = env
        .run::<Config>(serde_json::json!({"message": "hi"}))
        .await;
    assert_eq!(out.response.status, 200);
    assert_eq!(
        out.response.header("x-hello-from-rust"),
        Some("Rust says hi to example.com")
    );
    assert_eq!(out.upstream_request.path, "/path");
    assert!(out.unhandled_calls.is_empty());
}

#[tokio::test]
async fn the_schema_default_applies() {
    let mut env = TestEnv::new(Request::get("http://example.com:8000/"));
    let out = env.access::<Config>(serde_json::json!({})).await;
    assert_eq!(
        out.response.header("x-hello-from-rust"),
        Some("Rust says hello to example.com:8000")
    );
}
