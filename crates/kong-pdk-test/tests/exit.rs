//! `kong.response.exit` in each of the forms a handler writes: no headers,
//! an array of pairs, a `Vec` of owned strings, a `Headers` map, and the JSON
//! shortcut with and without its own `Content-Type`.

use kong_pdk::{Headers, Kong, PhaseResult, Plugin, Schema};
use kong_pdk_test::{Request, TestEnv};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Schema)]
struct Exits {
    form: String,
}

#[kong_pdk::plugin]
impl Plugin for Exits {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let body = json!({"message": "API rate limit exceeded"});
        let wait = 7.to_string();
        match self.form.as_str() {
            "none" => kong.response().exit(403, "forbidden\n", []).await?,
            "array" => {
                kong.response()
                    .exit(429, "slow down\n", [("Retry-After", wait.as_str())])
                    .await?
            }
            "vec" => {
                let headers = vec![
                    ("X-Many".to_owned(), wait.clone()),
                    ("X-Many".into(), "8".into()),
                ];
                kong.response().exit(429, "", headers).await?
            }
            "map" => {
                let mut headers = Headers::new();
                headers.insert("X-From-Map", "yes");
                kong.response().exit(503, "", &headers).await?
            }
            "json" => kong.response().exit_json(429, &body, []).await?,
            "json-typed" => {
                kong.response()
                    .exit_json(429, &body, [("Content-Type", "application/problem+json")])
                    .await?
            }
            other => return Err(format!("unknown form {other}").into()),
        }
        Ok(())
    }
}

async fn run(form: &str) -> kong_pdk_test::Outcome {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Exits>(json!({ "form": form })).await;
    assert!(!out.proxied(), "{form}: exit must skip the upstream");
    assert!(out.unhandled_calls.is_empty());
    out
}

#[tokio::test]
async fn exit_without_headers() {
    let out = run("none").await;
    assert_eq!(out.response.status, 403);
    assert_eq!(out.response.body, b"forbidden\n");
    assert_eq!(out.response.header("content-type"), None);
}

#[tokio::test]
async fn exit_with_an_array_a_vec_or_a_map_of_headers() {
    let out = run("array").await;
    assert_eq!(out.response.header("retry-after"), Some("7"));

    let out = run("vec").await;
    assert_eq!(out.response.headers.get_all("x-many"), ["7", "8"]);

    let out = run("map").await;
    assert_eq!(out.response.status, 503);
    assert_eq!(out.response.header("x-from-map"), Some("yes"));
}

#[tokio::test]
async fn exit_json_without_headers_is_json() {
    let out = run("json").await;
    assert_eq!(out.response.status, 429);
    assert_eq!(
        out.response.header("content-type"),
        Some("application/json")
    );
    let body: serde_json::Value = serde_json::from_slice(&out.response.body).unwrap();
    assert_eq!(body, json!({"message": "API rate limit exceeded"}));

    let out = run("json-typed").await;
    assert_eq!(
        out.response.headers.get_all("content-type"),
        ["application/problem+json"]
    );
}
