//! `rust-hello`: greets the caller in a response header (go-pdk's `go-hello`
//! in Rust).

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// The plugin's configuration, as set in Kong.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Who sends the greeting.
    #[kong(default = "Kong!")]
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

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_test::{Request, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn greets_the_host() {
        let mut env = TestEnv::new(Request::get("https://example.com/path?q=1"));
        let out = env.run::<Config>(json!({"message": "hi"})).await;
        assert_eq!(out.response.status, 200);
        assert_eq!(
            out.response.header("x-hello-from-rust"),
            Some("Rust says hi to example.com")
        );
        assert_eq!(out.upstream_request.path, "/path");
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
    }

    #[tokio::test]
    async fn the_default_message_applies() {
        let mut env = TestEnv::new(Request::get("http://localhost:8000/"));
        let out = env.access::<Config>(json!({})).await;
        assert_eq!(
            out.response.header("x-hello-from-rust"),
            Some("Rust says Kong! to localhost:8000")
        );
    }
}
