//! `rust-tenant-audit`: decides in `access` which tenant a request belongs
//! to, hands that to the `log` phase through `kong.ctx.shared`, and writes
//! an audit line (and a field in Kong's log record) after the response.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::{Deserialize, Serialize};

/// The plugin's configuration.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// The request header naming the tenant.
    #[kong(default = "x-tenant")]
    tenant_header: String,
    /// The tenant of requests without the header.
    #[kong(default = "public")]
    default_tenant: String,
}

/// What `access` leaves for `log`.
#[derive(Debug, Serialize, Deserialize)]
struct Audit {
    tenant: String,
    method: String,
    path: String,
}

const KEY: &str = "rust-tenant-audit";

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let mut tenant = kong.request().get_header(&self.tenant_header).await?;
        if tenant.is_empty() {
            tenant.clone_from(&self.default_tenant);
        }
        // The request's method and path are gone in the log phase: save them.
        let audit = Audit {
            method: kong.request().get_method().await?,
            path: kong.request().get_path().await?,
            tenant,
        };
        kong.service_request()
            .set_header("X-Tenant", &audit.tenant)
            .await?;
        kong.ctx().set_shared(KEY, &audit).await?;
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        // `None` when access never ran (e.g. an earlier plugin exited).
        let Some(audit) = kong.ctx().get_shared::<Option<Audit>>(KEY).await? else {
            return Ok(());
        };
        let status = kong.response().get_status().await?;
        kong.log()
            .set_serialize_value("tenant", &audit.tenant)
            .await?;
        kong.log()
            .notice(format!(
                "tenant={} {} {} -> {status}",
                audit.tenant, audit.method, audit.path
            ))
            .await?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_test::{LogLevel, Request, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn access_hands_the_tenant_to_log() {
        let mut env =
            TestEnv::new(Request::delete("http://api.test/orders/7").header("x-tenant", "acme"));
        let out = env.run::<Config>(json!({})).await;
        assert_eq!(out.upstream_request.header("x-tenant"), Some("acme"));
        assert_eq!(out.ctx_shared[KEY]["tenant"], "acme");
        assert_eq!(
            out.log_messages(LogLevel::Notice),
            ["tenant=acme DELETE /orders/7 -> 200"]
        );
        assert_eq!(out.serialize_values, [("tenant".to_owned(), json!("acme"))]);
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
    }

    #[tokio::test]
    async fn requests_without_the_header_get_the_default_tenant() {
        let mut env = TestEnv::new(Request::get("http://api.test/"));
        let out = env.run::<Config>(json!({"default_tenant": "guests"})).await;
        assert_eq!(out.upstream_request.header("x-tenant"), Some("guests"));
    }
}
