//! `rust-key-auth`: API-key authentication. Reads the key from a header,
//! maps it to a consumer, authenticates the consumer with Kong, and answers
//! `401` with a JSON body when the key is missing or unknown.

use kong_pdk::entities::AuthenticatedCredential;
use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// One accepted key.
#[derive(Debug, Deserialize, Schema)]
struct ApiKey {
    /// The secret the client sends.
    #[kong(len_min = 8, encrypted, referenceable)]
    key: String,
    /// The username of the Kong consumer the key belongs to.
    consumer: String,
}

/// The plugin's configuration.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Request headers searched for the key, in order.
    #[kong(default = ["apikey", "x-api-key"], len_min = 1)]
    key_names: Vec<String>,
    /// The accepted keys.
    #[serde(default)]
    keys: Vec<ApiKey>,
    /// Remove the key header before proxying.
    #[kong(default = true)]
    #[serde(default)]
    hide_credentials: bool,
}

const REALM: (&str, &str) = ("WWW-Authenticate", r#"Key realm="kong""#);

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
        let mut found = None;
        for name in &self.key_names {
            let value = kong.request().get_header(name).await?;
            if !value.is_empty() {
                found = Some((name, value));
                break;
            }
        }
        let Some((header, presented)) = found else {
            let body = serde_json::json!({"message": "No API key found in request"});
            kong.response().exit_json(401, &body, [REALM]).await?;
            return Ok(());
        };
        let Some(entry) = self.keys.iter().find(|k| same_secret(&k.key, &presented)) else {
            let body = serde_json::json!({"message": "Invalid authentication credentials"});
            kong.response().exit_json(401, &body, [REALM]).await?;
            return Ok(());
        };
        let consumer = kong.client().load_consumer(&entry.consumer, true).await?;
        if consumer.id.is_empty() {
            return Err(format!("key of unknown consumer {:?}", entry.consumer).into());
        }
        let credential = AuthenticatedCredential::new(
            format!("rust-key-auth:{}", entry.consumer),
            consumer.id.clone(),
        );
        kong.client()
            .authenticate(Some(&consumer), Some(&credential))
            .await?;
        kong.service_request()
            .set_header("X-Consumer-ID", &consumer.id)
            .await?;
        kong.service_request()
            .set_header("X-Consumer-Username", &consumer.username)
            .await?;
        if self.hide_credentials {
            kong.service_request().clear_header(header).await?;
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 1250)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_pdk_proto as pb;
    use kong_pdk_test::{Request, TestEnv};
    use serde_json::json;

    fn config() -> serde_json::Value {
        json!({"keys": [{"key": "secret-key-1", "consumer": "ann"}]})
    }

    fn env(request: Request) -> TestEnv {
        TestEnv::new(request).known_consumer(pb::Consumer {
            id: "c-ann".into(),
            username: "ann".into(),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn a_valid_key_authenticates_and_is_hidden_upstream() {
        let mut env =
            env(Request::get("http://api.test/orders").header("x-api-key", "secret-key-1"));
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.status, 200);
        assert!(out.proxied());
        assert_eq!(out.consumer.as_ref().map(|c| c.id.as_str()), Some("c-ann"));
        assert_eq!(
            out.credential.as_ref().map(|c| c.consumer_id.as_str()),
            Some("c-ann")
        );
        assert_eq!(
            out.upstream_request.header("x-consumer-username"),
            Some("ann")
        );
        assert_eq!(out.upstream_request.header("x-api-key"), None);
        assert!(out.unhandled_calls.is_empty(), "{:?}", out.unhandled_calls);
    }

    #[tokio::test]
    async fn no_key_is_401_and_never_reaches_the_upstream() {
        let mut env = env(Request::get("http://api.test/orders"));
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.status, 401);
        assert!(!out.proxied());
        assert_eq!(
            out.response.body_json().unwrap(),
            json!({"message": "No API key found in request"})
        );
        assert_eq!(
            out.response.header("www-authenticate"),
            Some(r#"Key realm="kong""#)
        );
        assert_eq!(
            out.response.header("content-type"),
            Some("application/json")
        );
    }

    #[tokio::test]
    async fn a_wrong_key_is_401() {
        let mut env = env(Request::get("http://api.test/").header("apikey", "secret-key-2"));
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.status, 401);
        assert_eq!(
            out.response.body_json().unwrap()["message"],
            "Invalid authentication credentials"
        );
    }

    #[tokio::test]
    async fn a_key_of_an_unknown_consumer_is_a_500() {
        let mut env =
            TestEnv::new(Request::get("http://api.test/").header("x-api-key", "secret-key-1"));
        let out = env.run::<Config>(config()).await;
        assert_eq!(out.response.status, 500);
        assert!(
            out.log_messages(kong_pdk_test::LogLevel::Err)
                .iter()
                .any(|m| m.contains("unknown consumer")),
            "{:?}",
            out.logs
        );
    }
}
