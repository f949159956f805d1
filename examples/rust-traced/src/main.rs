//! `rust-traced`: a plugin whose work shows up in the request's trace.
//!
//! Built with kong-pdk's `otel` feature. With `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set (say `http://otel-collector:4318`), every event is a span named
//! `rust-traced access`, a child of the span Kong propagated in
//! `traceparent` (or B3), and the plugin's own `tracing` spans (`classify`,
//! `forward`) are its children: Kong's spans and the plugin's appear in one
//! trace. Without the variable nothing is exported and nothing costs.
//!
//! `access` reads the user header, classifies the user into a tier and
//! sends the tier upstream; the client gets the trace id in
//! `X-Plugin-Trace-Id`.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;
use tracing::Instrument;

/// The plugin's configuration.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// The request header naming the user.
    #[kong(default = "x-user")]
    user_header: String,
    /// Users in the gold tier; everyone else is `standard`.
    #[serde(default)]
    gold: Vec<String>,
}

impl Config {
    fn tier(&self, user: &str) -> &'static str {
        if self.gold.iter().any(|g| g == user) {
            "gold"
        } else {
            "standard"
        }
    }
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        // One get_headers; the header read below is answered from it.
        let trace = kong.request().get_trace_context().await?;
        if let Some(trace) = &trace {
            trace.adopt();
        }
        let user = kong.request().get_header(&self.user_header).await?;
        let tier = tracing::info_span!("classify", user = %user).in_scope(|| self.tier(&user));
        async {
            kong.service_request()
                .set_header("X-User-Tier", tier)
                .await?;
            if let Some(trace) = &trace {
                kong.response()
                    .set_header("X-Plugin-Trace-Id", &trace.trace_id)
                    .await?;
            }
            Ok::<(), kong_pdk::Error>(())
        }
        .instrument(tracing::info_span!("forward", tier))
        .await?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_test::{Request, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn sends_the_tier_and_returns_the_trace_id() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut env = TestEnv::new(
            Request::get("http://api.test/")
                .header("traceparent", tp)
                .header("x-user", "ann"),
        );
        let out = env.run::<Config>(json!({"gold": ["ann"]})).await;
        assert_eq!(
            out.upstream_request.headers.get("x-user-tier"),
            Some("gold")
        );
        assert_eq!(
            out.response.header("x-plugin-trace-id"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let methods: Vec<&str> = out.calls.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(
            methods,
            [
                "kong.request.get_headers",
                "kong.service.request.set_header",
                "kong.response.set_header",
            ],
            "the user header comes from the headers already read"
        );
    }
}
