//! Kong's rules: phase limits, the log timer, nil ≡ empty, buffering,
//! argument checks, unmodelled calls.

mod common;

use std::sync::Mutex;

use common::{Probe, Unbuffered, probe, seen};
use kong_pdk::{Kong, Phase, PhaseResult, Plugin, Schema};
use kong_pdk_test::{
    CallOutcome, ERROR_BODY, LogLevel, PhaseEnd, Request, ResponseSource, TestEnv, pb,
};
use serde::Deserialize;
use serde_json::{Value as Json, json};

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Deserialize, Schema)]
struct Forbidden {}

#[kong_pdk::plugin]
impl Plugin for Forbidden {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        // Kong allows kong.response.get_status only from the response phase on.
        let err = kong.response().get_status().await.unwrap_err();
        SEEN.lock().unwrap().push(format!("{err:?}"));
        Err(err.into())
    }
}

#[tokio::test]
async fn a_call_kong_forbids_closes_the_connection_and_fails_with_500() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Forbidden>(json!({})).await;
    assert_eq!(
        SEEN.lock().unwrap().as_slice(),
        [r#"ConnectionClosed { method: "kong.response.get_status", phase: Access }"#]
    );
    let reason = "kong.response.get_status cannot be called in the access phase (Kong allows it in: response, log)";
    assert_eq!(
        out.phase_end(Phase::Access),
        Some(&PhaseEnd::Failed {
            reason: reason.into()
        })
    );
    assert_eq!(out.response.status, 500);
    assert_eq!(out.response.body_text(), ERROR_BODY);
    assert_eq!(out.response.source, ResponseSource::Error);
    assert!(!out.proxied());
    assert_eq!(out.kong_errors, [format!("[access] {reason}")]);
    let rejected = out.rejected_calls();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].outcome, CallOutcome::Rejected(reason.into()));
}

#[tokio::test]
async fn forbidden_calls_fail_rewrite_and_response_too() {
    for (phase, action) in [
        ("rewrite", "router.route"),
        ("rewrite", "client.consumer"),
        ("response", "svc.set_path|/x"),
        ("response", "svc.set_target|h|1"),
        ("access", "svc_resp.status"),
        ("access", "log.serialize"),
        ("certificate", "req.method"),
        ("certificate", "client.ip"),
    ] {
        let mut env = TestEnv::new(Request::get("https://example.com/"));
        let out = env.run::<Probe>(probe(&[(phase, &[action])])).await;
        let phase: Phase = Phase::from_name(phase).unwrap();
        assert!(
            matches!(out.phase_end(phase), Some(PhaseEnd::Failed { reason })
                if reason.contains(&format!("in the {phase} phase"))),
            "{action} in {phase}: {:?}",
            out.phases
        );
        if phase == Phase::Certificate {
            // A failed certificate phase is a failed TLS handshake.
            assert_eq!(out.response.status, 0);
            assert_eq!(out.response.source, ResponseSource::None);
            assert_eq!(out.ran(), [Phase::Certificate]);
        } else {
            assert_eq!(out.response.status, 500, "{action} in {phase}");
            assert_eq!(out.ran().last(), Some(&Phase::Log), "log still runs");
        }
    }
}

#[tokio::test]
async fn the_log_phase_cannot_read_the_live_request() {
    for action in [
        "req.method",
        "req.raw_query",
        "req.query_arg|a",
        "req.body",
        "client.ip",
        "ngx.var|request_uri",
        "exit|200|x",
    ] {
        let mut env = TestEnv::new(Request::get("http://example.com/?a=1")).call_layer(false);
        let out = env.run::<Probe>(probe(&[("log", &[action])])).await;
        let end = out.phase_end(Phase::Log).unwrap();
        assert!(matches!(end, PhaseEnd::Failed { .. }), "{action}: {end:?}");
        // Kong refused the call itself.
        assert_eq!(out.rejected_calls().len(), 1, "{action}");
        // Only logged: the client already had its response.
        assert_eq!(out.response.status, 200, "{action}");
        assert_eq!(out.response.source, ResponseSource::Service);
    }
}

#[tokio::test]
async fn the_log_phase_reads_path_scheme_and_host_from_the_saved_ctx() {
    let mut env = TestEnv::new(Request::get("https://Example.com:8443/a/b?x=1")).call_layer(false);
    let actions = ["req.path", "req.path_with_query", "req.scheme", "req.host"];
    let out = env.run::<Probe>(probe(&[("log", &actions)])).await;
    assert_eq!(out.phase_end(Phase::Log), Some(&PhaseEnd::Returned));
    assert_eq!(seen(&out, "req.path"), "/a/b");
    assert_eq!(seen(&out, "req.path_with_query"), "/a/b?x=1");
    assert_eq!(seen(&out, "req.scheme"), "https");
    assert_eq!(seen(&out, "req.host"), "example.com");
}

#[tokio::test]
async fn with_the_call_layer_the_log_phase_answers_from_the_log_record() {
    let request =
        Request::post("http://example.com:8000/p?a=1&a=2&flag", "body").client_ip("10.1.2.3");
    let actions = [
        "req.method",
        "req.raw_query",
        "req.query_arg|a",
        "req.query",
        "client.ip",
        "client.forwarded_ip",
    ];
    let mut env = TestEnv::new(request);
    let out = env.run::<Probe>(probe(&[("log", &actions)])).await;
    assert_eq!(out.phase_end(Phase::Log), Some(&PhaseEnd::Returned));
    assert_eq!(seen(&out, "req.method"), "POST");
    assert_eq!(seen(&out, "req.raw_query"), "a=1&a=2&flag");
    assert_eq!(seen(&out, "req.query_arg|a"), "1");
    assert!(seen(&out, "req.query").contains(r#""a": ["1", "2"]"#));
    assert_eq!(seen(&out, "client.ip"), "10.1.2.3");
    assert_eq!(seen(&out, "client.forwarded_ip"), "10.1.2.3");
    // One kong.log.serialize answered all six, and nothing was refused.
    assert_eq!(out.calls_to("kong.log.serialize").len(), 1);
    assert!(out.rejected_calls().is_empty());
    assert!(out.kong_errors.is_empty());
}

#[tokio::test]
async fn with_the_call_layer_a_getter_the_record_lacks_fails_without_losing_the_connection() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Probe>(probe(&[("log", &["req.body"])])).await;
    // get_raw_body failed at once, before any round trip: Kong refused
    // nothing, and the connection stayed usable for the server to log the
    // handler's failure through Kong.
    assert_eq!(out.phase_end(Phase::Log), Some(&PhaseEnd::Returned));
    assert!(out.rejected_calls().is_empty());
    assert!(out.calls_to("kong.request.get_raw_body").is_empty());
    let errors = out.log_messages(LogLevel::Err);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("kong.request.get_raw_body"),
        "{errors:?}"
    );
    assert!(errors[0].contains("kong.ctx().set_shared"), "{errors:?}");
}

#[tokio::test]
async fn the_log_phase_reads_saved_data() {
    let request = Request::get("http://example.com/")
        .header("x-id", "42")
        .consumer(pb::Consumer {
            id: "c1".into(),
            username: "ann".into(),
            ..Default::default()
        })
        .ctx("from_lua", "v")
        .uri_captures(["all"], [("name", "x")]);
    let config = probe(&[
        ("access", &["svc.set_header|x-added|yes"]),
        (
            "log",
            &[
                "req.header|x-id",
                "req.header|x-added",
                "resp.status",
                "resp.header|content-type",
                "resp.source",
                "router.route",
                "client.consumer",
                "ngx.get|from_lua",
                "svc_resp.status",
                "log.serialize",
            ],
        ),
    ]);
    let mut env = TestEnv::new(request);
    let out = env.run::<Probe>(config).await;
    assert_eq!(
        out.phase_end(Phase::Log),
        Some(&PhaseEnd::Returned),
        "{:?}",
        out.kong_errors
    );
    assert_eq!(seen(&out, "req.header|x-id"), "42");
    assert_eq!(seen(&out, "req.header|x-added"), "yes");
    assert_eq!(seen(&out, "resp.status"), "200");
    assert_eq!(seen(&out, "resp.header|content-type"), "application/json");
    assert_eq!(seen(&out, "resp.source"), "service");
    assert_eq!(seen(&out, "router.route"), kong_pdk_test::DEFAULT_ROUTE_ID);
    assert!(seen(&out, "client.consumer").contains(r#"username: "ann""#));
    assert_eq!(seen(&out, "ngx.get|from_lua"), r#"Some(String("v"))"#);
    // Buffered (Probe has a response phase): the upstream status was saved.
    assert_eq!(seen(&out, "svc_resp.status"), "200");
    let record: Json = serde_json::from_str(seen(&out, "log.serialize")).unwrap();
    assert_eq!(record["request"]["headers"]["x-id"], "42");
    assert_eq!(record["response"]["status"], 200);
    assert_eq!(record["consumer"]["username"], "ann");
    assert_eq!(record["upstream_uri"], "/");

    // Unbuffered: the upstream response is not saved for the log timer.
    let config = probe(&[("log", &["svc_resp.status"])]);
    let out = env.run::<Unbuffered>(config).await;
    assert!(matches!(
        out.phase_end(Phase::Log),
        Some(PhaseEnd::Failed { .. })
    ));
}

#[tokio::test]
async fn the_upstream_body_needs_buffering() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env
        .run::<Unbuffered>(probe(&[("log", &["svc_resp.body"])]))
        .await;
    let Some(PhaseEnd::Failed { reason }) = out.phase_end(Phase::Log) else {
        panic!("{:?}", out.phases);
    };
    assert!(reason.contains("buffered proxying"), "{reason}");

    let out = env
        .run::<Probe>(probe(&[
            ("response", &["svc_resp.body"]),
            ("log", &["svc_resp.body"]),
        ]))
        .await;
    assert!(seen(&out, "svc_resp.body").contains(r#""method":"GET""#));
    assert!(
        out.phases.iter().all(|p| p.end == PhaseEnd::Returned),
        "{:?}",
        out.phases
    );
}

#[tokio::test]
async fn nil_is_empty() {
    let config = probe(&[(
        "access",
        &[
            "req.header|x-absent",
            "req.query_arg|absent",
            "req.query_arg|empty",
            "client.consumer",
            "client.credential",
            "ctx.get|absent",
            "ngx.get|absent",
            "svc.set_upstream|not-declared",
        ],
    )]);
    let mut env = TestEnv::new(Request::get("http://example.com/?empty="));
    let out = env.run::<Probe>(config).await;
    assert_eq!(seen(&out, "req.header|x-absent"), "");
    assert_eq!(seen(&out, "req.query_arg|absent"), "");
    assert_eq!(seen(&out, "req.query_arg|empty"), "");
    assert!(seen(&out, "client.consumer").starts_with(r#"Consumer { id: """#));
    assert!(seen(&out, "client.credential").starts_with(r#"AuthenticatedCredential { id: """#));
    assert_eq!(seen(&out, "ctx.get|absent"), "None");
    assert_eq!(seen(&out, "ngx.get|absent"), "None");
    // Kong's (nil, err) loses the error: the plugin reads false.
    assert_eq!(seen(&out, "svc.set_upstream|not-declared"), "false");
    // The empty answers are frames of zero bytes, as Kong sends nil.
    assert!(out.unhandled_calls.is_empty());
}

#[tokio::test]
async fn kong_rejects_bad_arguments() {
    for action in [
        "req.query_arg|flag",
        "svc.set_path|no-slash",
        "svc.set_method|FETCH",
        "svc.set_scheme|ftp",
        "resp.set_status|99",
        "exit|600|x",
    ] {
        let mut env = TestEnv::new(Request::get("http://example.com/?flag"));
        let out = env.run::<Probe>(probe(&[("access", &[action])])).await;
        assert!(
            matches!(out.phase_end(Phase::Access), Some(PhaseEnd::Failed { .. })),
            "{action}: {:?}",
            out.phases
        );
        assert_eq!(out.response.status, 500, "{action}");
    }
}

#[tokio::test]
async fn unmodelled_calls_are_recorded_and_answered_with_nil() {
    let config = probe(&[(
        "access",
        &[
            "ngx.var|request_uri",
            "ngx.var|http_x_custom",
            "ngx.var|some_module_var",
            "ngx.get|KONG_ACCESS_START",
        ],
    )]);
    let mut env = TestEnv::new(Request::get("http://example.com/a?b=1").header("X-Custom", "c"));
    let out = env.run::<Probe>(config).await;
    assert_eq!(seen(&out, "ngx.var|request_uri"), "/a?b=1");
    assert_eq!(seen(&out, "ngx.var|http_x_custom"), "c");
    assert_eq!(seen(&out, "ngx.var|some_module_var"), "");
    assert_eq!(seen(&out, "ngx.get|KONG_ACCESS_START"), "None");
    let unhandled: Vec<(&str, &Json)> = out
        .unhandled_calls
        .iter()
        .map(|c| (c.method.as_str(), &c.args))
        .collect();
    assert_eq!(
        unhandled,
        [
            ("kong.nginx.get_var", &json!("some_module_var")),
            ("kong.nginx.get_ctx", &json!("KONG_ACCESS_START")),
        ]
    );
    // An nginx variable the test provides is answered.
    let mut env = TestEnv::new(Request::get("http://example.com/").var("some_module_var", "v"));
    let out = env
        .run::<Probe>(probe(&[("access", &["ngx.var|some_module_var"])]))
        .await;
    assert_eq!(seen(&out, "ngx.var|some_module_var"), "v");
    assert!(out.unhandled_calls.is_empty());
}

#[tokio::test]
async fn large_bodies_arrive_as_a_file() {
    let body = vec![b'x'; 9000];
    let mut env = TestEnv::new(Request::post("http://example.com/", body.clone()));
    let out = env.run::<Probe>(probe(&[("access", &["req.body"])])).await;
    assert!(
        seen(&out, "req.body").starts_with("File("),
        "{}",
        seen(&out, "req.body")
    );
    let mut env = TestEnv::new(Request::post("http://example.com/", body).body_buffer_size(16384));
    let out = env.run::<Probe>(probe(&[("access", &["req.body"])])).await;
    assert!(seen(&out, "req.body").starts_with("InMemory("));
}

#[tokio::test]
async fn forwarded_values_need_a_trusted_client() {
    let request = Request::get("http://example.com/")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "public.example:8443")
        .header("x-real-ip", "203.0.113.7")
        .client_ip("10.0.0.2");
    let config = probe(&[(
        "access",
        &[
            "req.forwarded",
            "client.forwarded_ip",
            "client.ip",
            "client.protocol|true",
        ],
    )]);
    let mut env = TestEnv::new(request.clone());
    let out = env.run::<Probe>(config.clone()).await;
    assert_eq!(seen(&out, "req.forwarded"), "http example.com 80");
    assert_eq!(seen(&out, "client.forwarded_ip"), "10.0.0.2");
    assert_eq!(seen(&out, "client.protocol|true"), "http");

    let mut env = TestEnv::new(request.trusted_ips(["10.0.0.0/8"]));
    let out = env.run::<Probe>(config).await;
    assert_eq!(seen(&out, "req.forwarded"), "https public.example 8443");
    assert_eq!(seen(&out, "client.forwarded_ip"), "203.0.113.7");
    assert_eq!(seen(&out, "client.ip"), "10.0.0.2");
    assert_eq!(seen(&out, "client.protocol|true"), "https");
}

#[derive(Deserialize, Schema)]
struct Logger {}

#[kong_pdk::plugin]
impl Plugin for Logger {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        kong.log()
            .err(("status=", 403, " ok=", true, " ratio=", 0.25))
            .await?;
        kong.log().warn(format!("{}-{}", "a", 1)).await?;
        kong.log()
            .set_serialize_value("request.tenant", "blue")
            .await?;
        kong.log()
            .set_serialize_value("custom", &json!({"n": 1}))
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_concatenate_like_kong_and_serialize_values_land_in_the_record() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<Logger>(json!({})).await;
    assert_eq!(
        out.log_messages(LogLevel::Err),
        ["status=403 ok=true ratio=0.25"]
    );
    assert_eq!(out.log_messages(LogLevel::Warn), ["a-1"]);
    assert_eq!(out.logs[0].phase, Phase::Access);
    assert_eq!(out.log_record["request"]["tenant"], "blue");
    assert_eq!(out.log_record["request"]["method"], "GET");
    assert_eq!(out.log_record["custom"], json!({"n": 1}));
    assert_eq!(
        out.serialize_values,
        [
            ("request.tenant".to_owned(), json!("blue")),
            ("custom".to_owned(), json!({"n": 1}))
        ]
    );
}

#[tokio::test]
async fn request_headers_read_like_nginx_variables_outside_the_log_phase() {
    let request = Request::get("http://example.com/")
        .header("Cookie", "a=1")
        .header("Cookie", "b=2")
        .header("X-Multi", "one")
        .header("X-Multi", "two")
        .header("X-Comma", "p, q");
    let reads = [
        "req.header|cookie",
        "req.header|x_multi",
        "req.header|X-Comma",
    ];
    let mut env = TestEnv::new(request).call_layer(false);
    let out = env
        .run::<Probe>(probe(&[("access", &reads), ("log", &reads)]))
        .await;
    // access: $http_cookie joins the lines with "; "; other joined values
    // hold ", ", so Kong reads the header table's first value instead.
    let access: Vec<&str> = out.log_messages(LogLevel::Info);
    assert_eq!(
        access,
        [
            "req.header|cookie => a=1; b=2",
            "req.header|x_multi => one",
            "req.header|X-Comma => p, q",
            // log: the saved header table, first values.
            "req.header|cookie => a=1",
            "req.header|x_multi => one",
            "req.header|X-Comma => p, q",
        ]
    );
}
