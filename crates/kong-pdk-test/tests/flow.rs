//! The request flow: phase order, exits, the upstream, buffering, state
//! across phases, single-phase runs, configs.

mod common;

use common::{Probe, Unbuffered, probe, seen};
use kong_pdk::{Kong, Phase, PhaseResult, Plugin, Schema};
use kong_pdk_test::{
    ERROR_BODY, HarnessError, LogLevel, PhaseEnd, Request, ResponseSource, Scope, TestEnv,
    UpstreamResponse, pb,
};
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[tokio::test]
async fn phases_run_in_kongs_order_and_certificate_only_with_tls() {
    let mut env = TestEnv::new(Request::get("https://example.com/"));
    let out = env.run::<Probe>(json!({})).await;
    assert_eq!(
        out.ran(),
        [
            Phase::Certificate,
            Phase::Rewrite,
            Phase::Access,
            Phase::Response,
            Phase::Log
        ]
    );
    assert!(out.phases.iter().all(|p| p.end == PhaseEnd::Returned));
    assert!(out.proxied());

    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Probe>(json!({})).await;
    assert_eq!(
        out.ran(),
        [Phase::Rewrite, Phase::Access, Phase::Response, Phase::Log]
    );
}

#[tokio::test]
async fn response_phase_runs_only_when_declared() {
    let config = probe(&[("log", &["resp.status"])]);
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Unbuffered>(config).await;
    assert_eq!(out.ran(), [Phase::Rewrite, Phase::Access, Phase::Log]);
    assert_eq!(seen(&out, "resp.status"), "200");
}

#[tokio::test]
async fn exit_in_access_skips_the_upstream_and_response_but_not_log() {
    let config = probe(&[
        (
            "access",
            &["resp.set_header|x-early|1", "exit|403|denied|x-why=policy"],
        ),
        ("response", &["log.err|never"]),
        ("log", &["resp.status", "resp.source", "resp.header|x-why"]),
    ]);
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Probe>(config).await;
    assert_eq!(out.ran(), [Phase::Rewrite, Phase::Access, Phase::Log]);
    assert_eq!(
        out.phase_end(Phase::Access),
        Some(&PhaseEnd::Exit { status: 403 })
    );
    assert!(!out.proxied());
    assert_eq!(out.response.status, 403);
    assert_eq!(out.response.body_text(), "denied");
    assert_eq!(out.response.source, ResponseSource::Exit);
    // Exit headers are merged over the ones set before.
    assert_eq!(out.response.header("x-why"), Some("policy"));
    assert_eq!(out.response.header("x-early"), Some("1"));
    assert_eq!(seen(&out, "resp.status"), "403");
    assert_eq!(seen(&out, "resp.source"), "exit");
    assert_eq!(seen(&out, "resp.header|x-why"), "policy");
    // The exit is recorded; nothing ran after it in access.
    assert_eq!(out.calls_to("kong.response.exit").len(), 1);
    assert!(
        out.log_messages(LogLevel::Info)
            .iter()
            .all(|m| !m.starts_with("exit|"))
    );
}

#[tokio::test]
async fn exit_in_rewrite_skips_access() {
    let config = probe(&[
        ("rewrite", &["exit|429|slow down|retry-after=1"]),
        ("access", &["log.err|never"]),
    ]);
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Probe>(config).await;
    assert_eq!(out.ran(), [Phase::Rewrite, Phase::Log]);
    assert_eq!(out.response.status, 429);
    assert_eq!(out.response.header("retry-after"), Some("1"));
    assert!(out.log_messages(LogLevel::Err).is_empty());
}

#[tokio::test]
async fn exit_in_response_replaces_the_upstream_answer() {
    let config = probe(&[(
        "response",
        &["exit|502|bad gateway|content-type=text/plain"],
    )]);
    let upstream = UpstreamResponse::new(200)
        .header("content-type", "application/json")
        .header("x-upstream", "yes")
        .body("{}");
    let mut env = TestEnv::new(Request::get("http://example.com/")).upstream_response(upstream);
    let out = env.run::<Probe>(config).await;
    assert_eq!(out.response.status, 502);
    assert_eq!(out.response.body_text(), "bad gateway");
    assert_eq!(out.response.headers.get_all("content-type"), ["text/plain"]);
    assert_eq!(out.response.header("x-upstream"), Some("yes"));
    assert_eq!(out.phase_end(Phase::Log), Some(&PhaseEnd::Returned));
}

#[tokio::test]
async fn the_echo_upstream_sees_every_service_request_change() {
    let config = probe(&[
        ("rewrite", &["svc.set_method|PUT"]),
        (
            "access",
            &[
                "svc.set_path|/v2/items",
                "svc.set_query|b=2,a=1,a=x y",
                "svc.set_header|x-set|1",
                "svc.add_header|x-add|1",
                "svc.add_header|x-add|2",
                "svc.clear_header|x-drop",
                "svc.set_headers|x-many=m",
                "svc.set_body|new body",
                "svc.set_scheme|https",
                "svc.set_target|10.1.1.1|8443",
                // Kong changes nginx's request in place.
                "req.method",
                "req.header|x-set",
                "req.raw_query",
            ],
        ),
        ("response", &["svc_resp.body"]),
    ]);
    let request = Request::post("http://example.com/items?old=1", "old body")
        .header("x-drop", "gone")
        .header("accept", "*/*");
    let mut env = TestEnv::new(request);
    let out = env.run::<Probe>(config).await;
    let up = &out.upstream_request;
    assert_eq!(up.method, "PUT");
    assert_eq!(up.scheme, "https");
    assert_eq!((up.host.as_str(), up.port), ("10.1.1.1", 8443));
    assert_eq!(up.path, "/v2/items");
    assert_eq!(up.query, "a=1&a=x%20y&b=2");
    assert_eq!(up.query_arg("a").as_deref(), Some("1"));
    assert_eq!(up.header("x-set"), Some("1"));
    assert_eq!(up.headers.get_all("x-add"), ["1", "2"]);
    assert_eq!(up.header("x-drop"), None);
    assert_eq!(up.header("x-many"), Some("m"));
    assert_eq!(up.header("accept"), Some("*/*"));
    assert_eq!(up.header("host"), Some("10.1.1.1:8443"));
    assert_eq!(up.body, b"new body");
    assert_eq!(up.header("content-length"), Some("8"));
    assert_eq!(seen(&out, "req.method"), "PUT");
    assert_eq!(seen(&out, "req.header|x-set"), "1");
    assert_eq!(seen(&out, "req.raw_query"), "a=1&a=x%20y&b=2");

    // The echo upstream describes what it received.
    let echo = out.response.body_json().unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/v2/items");
    assert_eq!(echo["query"], "a=1&a=x%20y&b=2");
    assert_eq!(echo["args"]["a"], json!(["1", "x y"]));
    assert_eq!(echo["headers"]["x-add"], json!(["1", "2"]));
    assert_eq!(echo["body"], "new body");
    let buffered: Json = serde_json::from_str(seen(&out, "svc_resp.body")).unwrap();
    assert_eq!(buffered, echo);
}

#[tokio::test]
async fn routes_strip_their_path_onto_the_service_path() {
    let route = pb::Route {
        id: "r".into(),
        paths: vec!["/api".into()],
        strip_path: true,
        ..Default::default()
    };
    let service = pb::Service {
        id: "s".into(),
        protocol: "http".into(),
        host: "users.internal".into(),
        port: 8080,
        path: "/v1".into(),
        ..Default::default()
    };
    let request = Request::get("http://example.com/api/users?x=1")
        .route(route)
        .service(service);
    let mut env = TestEnv::new(request);
    let out = env.run::<Probe>(json!({})).await;
    assert_eq!(out.upstream_request.path, "/v1/users");
    assert_eq!(out.upstream_request.host, "users.internal");
    assert_eq!(
        out.upstream_request.header("host"),
        Some("users.internal:8080")
    );
    assert_eq!(out.upstream_request.path_with_query(), "/v1/users?x=1");
}

#[tokio::test]
async fn a_scripted_upstream_answers_the_client_and_the_response_phase() {
    let config = probe(&[
        ("access", &["resp.set_header|x-plugin|added"]),
        (
            "response",
            &[
                "svc_resp.status",
                "svc_resp.header|x-up",
                "svc_resp.body",
                "resp.status",
            ],
        ),
    ]);
    let upstream = UpstreamResponse::new(201)
        .header("x-up", "u")
        .body("created");
    let mut env = TestEnv::new(Request::get("http://example.com/")).upstream_response(upstream);
    let out = env.run::<Probe>(config).await;
    assert_eq!(seen(&out, "svc_resp.status"), "201");
    assert_eq!(seen(&out, "svc_resp.header|x-up"), "u");
    assert_eq!(seen(&out, "svc_resp.body"), "created");
    assert_eq!(seen(&out, "resp.status"), "201");
    assert_eq!(out.response.status, 201);
    assert_eq!(out.response.body, b"created");
    assert_eq!(out.response.header("x-up"), Some("u"));
    assert_eq!(out.response.header("x-plugin"), Some("added"));
    assert_eq!(out.upstream_response.as_ref().unwrap().status, 201);
}

#[tokio::test]
async fn an_upstream_function_sees_the_request() {
    let mut env = TestEnv::new(Request::get("http://example.com/")).upstream_with(|req| {
        UpstreamResponse::new(200).body(format!("you asked for {}", req.path))
    });
    let config = probe(&[("access", &["svc.set_path|/other"])]);
    let out = env.run::<Probe>(config).await;
    assert_eq!(out.response.body_text(), "you asked for /other");
}

#[tokio::test]
async fn ctx_shared_survives_every_phase_including_log() {
    let config = probe(&[
        ("certificate", &["ctx.set|seen|[\"certificate\"]"]),
        ("rewrite", &["ctx.get|seen", "ctx.set|n|1"]),
        (
            "access",
            &["ctx.get|n", "ctx.set|obj|{\"a\":[1,null,\"x\"]}"],
        ),
        ("response", &["ctx.get|obj"]),
        ("log", &["ctx.get|n", "ctx.get|absent", "ctx.set|n|null"]),
    ]);
    let mut env = TestEnv::new(Request::get("https://example.com/"));
    let out = env.run::<Probe>(config).await;
    assert_eq!(
        seen(&out, "ctx.get|seen"),
        r#"Some(Array [String("certificate")])"#
    );
    assert_eq!(seen(&out, "ctx.get|n"), "Some(Number(1))");
    assert_eq!(
        seen(&out, "ctx.get|obj"),
        r#"Some(Object {"a": Array [Number(1), Null, String("x")]})"#
    );
    assert_eq!(seen(&out, "ctx.get|absent"), "None");
    assert_eq!(
        Json::Object(out.ctx_shared.clone()),
        json!({"seen": ["certificate"], "obj": {"a": [1, null, "x"]}})
    );
}

#[tokio::test]
async fn single_phase_runs_keep_the_flow_around_one_handler() {
    let config = probe(&[
        ("access", &["svc.set_path|/from-access"]),
        ("log", &["resp.status"]),
    ]);
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.access::<Probe>(config.clone()).await;
    assert_eq!(out.ran(), [Phase::Access]);
    assert!(out.proxied());
    assert_eq!(out.upstream_request.path, "/from-access");

    let out = env.log::<Probe>(config.clone()).await;
    assert_eq!(out.ran(), [Phase::Log]);
    assert_eq!(seen(&out, "resp.status"), "200");
    assert_eq!(out.upstream_request.path, "/", "access did not run");

    let out = env.phase::<Probe>(Phase::Rewrite, json!({})).await;
    assert_eq!(out.ran(), [Phase::Rewrite]);

    let err = env
        .try_phase::<Unbuffered>(Phase::Response, json!({}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not handle the response phase"),
        "{err}"
    );
    let err = env
        .try_phase::<Probe>(Phase::Certificate, json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[tokio::test]
async fn scoped_plugins_skip_rewrite_and_certificate() {
    let mut env = TestEnv::new(Request::get("https://example.com/")).scope(Scope::Route);
    let out = env.run::<Probe>(json!({})).await;
    assert_eq!(out.ran(), [Phase::Access, Phase::Response, Phase::Log]);
    let err = env
        .try_phase::<Probe>(Phase::Rewrite, json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, HarnessError::Phase(_)), "{err}");
}

#[derive(Debug, Deserialize, Schema)]
struct Limits {
    #[kong(default = 10)]
    per_minute: u32,
    header: Option<String>,
    nested: Nested,
}

#[derive(Debug, Deserialize, Schema)]
struct Nested {
    #[kong(default = "local")]
    policy: String,
}

#[kong_pdk::plugin]
impl Plugin for Limits {
    async fn init(&mut self) -> Result<(), kong_pdk::BoxError> {
        if self.per_minute == 0 {
            return Err("per_minute must be positive".into());
        }
        Ok(())
    }

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let seen = format!(
            "{} {:?} {}",
            self.per_minute, self.header, self.nested.policy
        );
        kong.response().set_header("x-config", &seen).await?;
        Ok(())
    }
}

#[tokio::test]
async fn configs_take_kongs_shape_with_defaults() {
    let json = kong_pdk_test::kong_config::<Limits>("limits", json!({})).unwrap();
    assert_eq!(json["per_minute"], 10);
    assert_eq!(json["header"], Json::Null);
    assert_eq!(json["nested"], json!({"policy": "local"}));
    for key in ["__seq__", "__plugin_id", "__key__", "__ws_id"] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }

    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Limits>(json!({"header": "x-id"})).await;
    assert_eq!(
        out.response.header("x-config"),
        Some(r#"10 Some("x-id") local"#)
    );
}

#[tokio::test]
async fn bad_configs_are_clear_errors() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let err = env
        .try_run::<Limits>(json!({"nested": {"polcy": "x"}}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid plugin config: config.nested.polcy: unknown field"
    );
    // Kong's own validation refuses a wrong type before any instance starts.
    let err = env
        .try_run::<Limits>(json!({"per_minute": "ten"}))
        .await
        .unwrap_err();
    assert!(matches!(err, HarnessError::Config(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid plugin config: config.per_minute: expected an integer"
    );
    // A config the schema accepts but the plugin's init refuses.
    let err = env
        .try_run::<Limits>(json!({"per_minute": 0}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("per_minute must be positive"),
        "{err}"
    );
}

#[tokio::test]
#[should_panic(expected = "unknown field")]
async fn run_panics_with_the_error() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    env.run::<Limits>(json!({"typo": 1})).await;
}

#[tokio::test]
async fn a_failing_handler_gets_the_servers_500() {
    let config = probe(&[("access", &["fail|the plugin says no"])]);
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Probe>(config).await;
    assert_eq!(
        out.phase_end(Phase::Access),
        Some(&PhaseEnd::Exit { status: 500 })
    );
    assert_eq!(out.response.status, 500);
    assert_eq!(out.response.body_text(), ERROR_BODY);
    assert_eq!(
        out.log_messages(LogLevel::Err),
        ["access handler failed: the plugin says no"]
    );
    assert!(!out.proxied());
    assert_eq!(out.ran(), [Phase::Rewrite, Phase::Access, Phase::Log]);
}

#[tokio::test]
async fn each_run_is_a_new_request_with_a_new_seq() {
    let config = probe(&[("access", &["ctx.get|n", "ctx.set|n|1"])]);
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    for _ in 0..2 {
        let out = env.run::<Probe>(config.clone()).await;
        assert_eq!(seen(&out, "ctx.get|n"), "None");
    }
}
