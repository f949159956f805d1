//! `rust-api-auth`: what an authentication plugin does on every request.
//!
//! - `access`: reads the credentials (`Authorization: Bearer <key>`, or
//!   `X-API-Key`) and the request's `X-Request-ID` and `User-Agent`; answers
//!   401 without a known key; otherwise tells the upstream who the client
//!   is (four headers) and the client which identity was used (a response
//!   header).
//! - `log`: writes one access line with the method, path, query, client
//!   address and status, read with the request getters.
//!
//! Written call by call, this is 8 PDK calls in `access` (with a bearer
//! token) and 7 in `log`; kong-pdk's call layer turns them into 4 and 5
//! round trips: one `get_headers` answers the header reads after the first,
//! the upstream headers go as one `set_headers`, and one
//! `kong.log.serialize` answers the log phase's request getters, which Kong
//! itself refuses there.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// One API key and whom it identifies.
#[derive(Debug, Deserialize, Schema)]
struct ApiKey {
    /// The secret.
    #[kong(len_min = 8, encrypted, referenceable)]
    key: String,
    /// The client it identifies.
    client: String,
    /// The client's tenant.
    #[kong(default = "default")]
    tenant: String,
}

/// The plugin's configuration.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// The accepted keys.
    keys: Vec<ApiKey>,
    /// Lets requests without a valid key through (anonymously) instead of
    /// answering 401.
    #[kong(default = false)]
    allow_anonymous: bool,
}

const REALM: (&str, &str) = ("WWW-Authenticate", r#"Bearer realm="kong""#);

impl Config {
    /// The key the request presents: a bearer token, else `X-API-Key`.
    async fn presented_key(kong: &mut Kong) -> kong_pdk::Result<String> {
        let authorization = kong.request().get_header("authorization").await?;
        if let Some(token) = authorization.strip_prefix("Bearer ") {
            return Ok(token.trim().to_owned());
        }
        kong.request().get_header("x-api-key").await
    }

    fn client_of(&self, presented: &str) -> Option<&ApiKey> {
        self.keys
            .iter()
            .find(|k| !presented.is_empty() && same_secret(&k.key, presented))
    }
}

/// Compares without stopping at the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let presented = Self::presented_key(kong).await?;
        let request_id = kong.request().get_header("x-request-id").await?;
        let agent = kong.request().get_header("user-agent").await?;
        let (client, tenant) = match self.client_of(&presented) {
            Some(k) => (k.client.as_str(), k.tenant.as_str()),
            None if self.allow_anonymous => ("anonymous", "public"),
            None => {
                let message = if presented.is_empty() {
                    "No credentials found in request"
                } else {
                    "Invalid credentials"
                };
                let body = serde_json::json!({"message": message, "request_id": request_id});
                kong.response().exit_json(401, &body, [REALM]).await?;
                return Ok(());
            }
        };
        kong.service_request()
            .set_header("X-Client-ID", client)
            .await?;
        kong.service_request()
            .set_header("X-Client-Tenant", tenant)
            .await?;
        kong.service_request()
            .set_header("X-Client-Agent", &agent)
            .await?;
        if !request_id.is_empty() {
            kong.service_request()
                .set_header("X-Request-ID", &request_id)
                .await?;
        }
        kong.response()
            .set_header("X-Authenticated-As", client)
            .await?;
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        // Kong answers these from the request it saved for the log phase…
        let presented = Self::presented_key(kong).await?;
        let path = kong.request().get_path().await?;
        let status = kong.response().get_status().await?;
        // …and refuses these there; the call layer answers them from
        // kong.log.serialize().
        let method = kong.request().get_method().await?;
        let query = kong.request().get_raw_query().await?;
        let ip = kong.client().get_forwarded_ip().await?;
        let client = self
            .client_of(&presented)
            .map_or("anonymous", |k| &k.client);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        kong.log()
            .info(format!(
                "client={client} {method} {path}{query} from {ip} -> {status}"
            ))
            .await?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 1200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk::Phase;
    use kong_pdk_test::{LogLevel, Request, TestEnv};
    use serde_json::json;

    fn config() -> serde_json::Value {
        json!({"keys": [{"key": "k-1234567", "client": "billing", "tenant": "acme"}]})
    }

    fn request() -> Request {
        Request::get("http://api.test/orders?page=2")
            .header("Authorization", "Bearer k-1234567")
            .header("X-Request-ID", "req-7")
            .header("User-Agent", "curl/8")
            .client_ip("10.0.0.5")
    }

    #[tokio::test]
    async fn a_known_key_reaches_the_upstream_with_the_client() {
        let mut env = TestEnv::new(request());
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.status, 200);
        let up = &out.upstream_request;
        assert_eq!(up.header("x-client-id"), Some("billing"));
        assert_eq!(up.header("x-client-tenant"), Some("acme"));
        assert_eq!(up.header("x-client-agent"), Some("curl/8"));
        assert_eq!(up.header("x-request-id"), Some("req-7"));
        assert_eq!(out.response.header("x-authenticated-as"), Some("billing"));
        assert_eq!(
            out.log_messages(LogLevel::Info),
            ["client=billing GET /orders?page=2 from 10.0.0.5 -> 200"]
        );
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
    }

    #[tokio::test]
    async fn the_call_layer_saves_round_trips_without_changing_the_result() {
        let mut on = TestEnv::new(request());
        let on = on.run::<Config>(config()).await;
        assert_eq!(on.round_trips_in(Phase::Access), 4, "{:?}", on.methods());
        assert_eq!(on.round_trips_in(Phase::Log), 5, "{:?}", on.methods());
        // Off, access makes every call; the log phase's method, query and
        // address are refused by Kong, so the handler fails there.
        let mut off = TestEnv::new(request()).call_layer(false);
        let off = off.run::<Config>(config()).await;
        assert_eq!(off.round_trips_in(Phase::Access), 8, "{:?}", off.methods());
        // The same upstream headers (one set_headers sets them in name order).
        let sorted = |out: &kong_pdk_test::Outcome| {
            let mut h: Vec<(String, String)> = out
                .upstream_request
                .headers
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            h.sort();
            h
        };
        assert_eq!(sorted(&off), sorted(&on));
        assert!(off.log_messages(LogLevel::Info).is_empty());
        assert_eq!(off.rejected_calls().len(), 1);
    }

    #[tokio::test]
    async fn no_or_a_wrong_key_is_401() {
        for (request, message) in [
            (
                Request::get("http://api.test/"),
                "No credentials found in request",
            ),
            (
                Request::get("http://api.test/").header("x-api-key", "wrong-key"),
                "Invalid credentials",
            ),
        ] {
            let mut env = TestEnv::new(request);
            let out = env.run::<Config>(config()).await;
            assert_eq!(out.response.status, 401);
            assert!(!out.proxied());
            assert_eq!(out.response.body_json().unwrap()["message"], message);
            assert_eq!(
                out.response.header("www-authenticate"),
                Some(r#"Bearer realm="kong""#)
            );
        }
    }

    #[tokio::test]
    async fn anonymous_requests_may_pass() {
        let mut env = TestEnv::new(Request::get("http://api.test/"));
        let out = env
            .run::<Config>(json!({"keys": [], "allow_anonymous": true}))
            .await;
        assert_eq!(out.response.status, 200);
        assert_eq!(
            out.upstream_request.header("x-client-id"),
            Some("anonymous")
        );
        assert_eq!(out.upstream_request.header("x-request-id"), None);
    }
}
