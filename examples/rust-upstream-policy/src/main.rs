//! `rust-upstream-policy`: a per-route upstream policy — timeouts, retries
//! and a credential resolved from a Kong vault — and a note of it in the
//! log record. None of these is in Kong's ProtoBuf service, so the plugin
//! speaks MsgPack:1, which reaches the whole Lua PDK.

use kong_pdk::pdk::SerializeMode;
use kong_pdk::{Kong, PhaseResult, Plugin, Protocol, Schema};
use serde::Deserialize;
use serde_json::json;

/// The plugin's configuration, as set in Kong.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Upstream connect timeout, in milliseconds.
    #[kong(default = 2000, between = [1, 600000])]
    connect_timeout: u32,
    /// Upstream write timeout, in milliseconds.
    #[kong(default = 10000, between = [1, 600000])]
    write_timeout: u32,
    /// Upstream read timeout, in milliseconds.
    #[kong(default = 10000, between = [1, 600000])]
    read_timeout: u32,
    /// How often Kong retries a failed upstream connection.
    #[kong(default = 1, between = [0, 32767])]
    retries: u16,
    /// A vault reference to the credential sent upstream, e.g.
    /// `{vault://env/upstream-token}`; none sends no credential.
    token_reference: Option<String>,
    /// The request header that carries the credential upstream.
    #[kong(default = "authorization")]
    token_header: String,
}

#[kong_pdk::plugin]
impl Plugin for Config {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        kong.service()
            .set_timeouts(self.connect_timeout, self.write_timeout, self.read_timeout)
            .await?;
        kong.service().set_retries(self.retries).await?;
        if let Some(reference) = &self.token_reference {
            let Some(token) = kong.vault().get(reference).await? else {
                kong.log()
                    .err(format!(
                        "cannot resolve {reference}: no credential for the upstream"
                    ))
                    .await?;
                let body = json!({"message": "upstream credential unavailable"});
                kong.response().exit_json(503, &body, []).await?;
                return Ok(());
            };
            kong.service_request()
                .set_header(&self.token_header, &format!("Bearer {token}"))
                .await?;
        }
        // Logging plugins see the policy; "add" keeps a value set earlier.
        let policy = json!({
            "timeouts": [self.connect_timeout, self.write_timeout, self.read_timeout],
            "retries": self.retries,
        });
        kong.log()
            .set_serialize_value_with_mode("upstream_policy", &policy, SerializeMode::Add)
            .await?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 900)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_test::{Request, TestEnv};

    #[tokio::test]
    async fn sets_the_policy_and_sends_the_vault_credential_upstream() {
        // SAFETY: nextest runs each test in its own process; nothing else
        // reads the environment concurrently.
        unsafe { std::env::set_var("POLICY_TEST_TOKEN", "t0ken") };
        let mut env = TestEnv::new(Request::get("http://example.com/orders"));
        let out = env
            .run::<Config>(json!({
                "retries": 3,
                "token_reference": "{vault://env/policy-test-token}",
            }))
            .await;
        assert_eq!(out.response.status, 200);
        assert_eq!(
            out.upstream_request.header("authorization"),
            Some("Bearer t0ken")
        );
        assert_eq!(
            &out.methods()[..4],
            [
                "kong.service.set_timeouts",
                "kong.service.set_retries",
                "kong.vault.get",
                "kong.service.request.set_header"
            ]
        );
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
    }

    #[tokio::test]
    async fn an_unresolvable_credential_stops_the_request() {
        let mut env = TestEnv::new(Request::get("http://example.com/orders"));
        let out = env
            .run::<Config>(json!({"token_reference": "{vault://env/policy-test-absent}"}))
            .await;
        assert_eq!(out.response.status, 503);
        assert!(!out.proxied());
        let body: serde_json::Value = serde_json::from_slice(&out.response.body).unwrap();
        assert_eq!(body, json!({"message": "upstream credential unavailable"}));
    }
}
