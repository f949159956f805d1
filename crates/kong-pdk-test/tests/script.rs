//! Scripted mode: exact call sequences, and every way to depart from one.

use kong_pdk::{Kong, Phase, PhaseResult, Plugin, Schema};
use kong_pdk_test::{CallOutcome, EventEnd, Script, ScriptError, pb};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Schema)]
struct Greeter {}

#[kong_pdk::plugin]
impl Plugin for Greeter {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        kong.response().set_header("x-host", &host).await?;
        if host == "blocked.example" {
            kong.response()
                .exit(403, "no", [("x-why", "blocked")])
                .await?;
        }
        Ok(())
    }
}

fn s(v: &str) -> pb::Str {
    pb::Str { v: v.into() }
}

fn kv(k: &str, v: &str) -> pb::Kv {
    pb::Kv {
        k: k.into(),
        v: Some(pb::Value {
            kind: Some(pb::ValueKind::StringValue(v.into())),
        }),
    }
}

#[tokio::test]
async fn a_matching_sequence_passes() {
    let report = Script::new()
        .expect("kong.request.get_header", s("host"))
        .returns(s("example.com"))
        .expect("kong.response.set_header", kv("x-host", "example.com"))
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap();
    assert_eq!(report.end, EventEnd::Returned);
    let methods: Vec<&str> = report.calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        methods,
        ["kong.request.get_header", "kong.response.set_header"]
    );
    assert_eq!(
        report.calls[1].args,
        json!({"k": "x-host", "v": "example.com"})
    );
}

#[tokio::test]
async fn an_expected_exit_passes() {
    let headers = pb::Struct {
        fields: [(
            "x-why".to_owned(),
            pb::Value {
                kind: Some(pb::ValueKind::StringValue("blocked".into())),
            },
        )]
        .into_iter()
        .collect(),
    };
    let report = Script::new()
        .expect("kong.request.get_header", s("host"))
        .returns(s("blocked.example"))
        .expect("kong.response.set_header", kv("x-host", "blocked.example"))
        .expect_exit(pb::ExitArgs {
            status: 403,
            body: b"no".to_vec(),
            headers: Some(headers),
        })
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap();
    assert!(matches!(report.end, EventEnd::Exit(ref e) if e.status == 403));
    assert_eq!(report.calls.last().unwrap().outcome, CallOutcome::Exit);
}

#[tokio::test]
async fn a_different_method_fails() {
    let err = Script::new()
        .expect("kong.request.get_method", ())
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ScriptError::WrongMethod { step: 0, expected, got, .. }
            if expected == "kong.request.get_method" && got == "kong.request.get_header"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        r#"script step 0: expected a call to kong.request.get_method, but the plugin called kong.request.get_header with "host""#
    );
}

#[tokio::test]
async fn different_arguments_fail() {
    let err = Script::new()
        .expect("kong.request.get_header", s("Host"))
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "script step 0: kong.request.get_header called with other arguments\n  expected: Str { v: \"Host\" }\n       got: Str { v: \"host\" }"
    );
}

#[tokio::test]
async fn a_call_after_the_last_step_fails() {
    let err = Script::new()
        .expect("kong.request.get_header", s("host"))
        .returns(s("h"))
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ScriptError::Unexpected { steps: 1, method, .. } if method == "kong.response.set_header"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("after the script's last step"),
        "{err}"
    );
}

#[tokio::test]
async fn steps_left_at_the_end_fail() {
    let err = Script::new()
        .expect("kong.request.get_header", s("host"))
        .returns(s("h"))
        .expect("kong.response.set_header", kv("x-host", "h"))
        .expect("kong.log.notice", pb::ListValue::default())
        .expect("kong.response.exit", pb::ExitArgs::default())
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ScriptError::Unconsumed { made: 2, remaining }
            if remaining == &["kong.log.notice", "kong.response.exit"]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the event ended after 2 step(s); expected calls not made: kong.log.notice, kong.response.exit"
    );
}

#[tokio::test]
async fn an_unexpected_exit_fails() {
    let err = Script::new()
        .expect("kong.request.get_header", s("host"))
        .returns(s("blocked.example"))
        .expect("kong.response.set_header", kv("x-host", "blocked.example"))
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ScriptError::Unexpected { method, .. } if method == "kong.response.exit"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_scripted_rejection_closes_the_connection() {
    let report = Script::new()
        .expect("kong.request.get_header", s("host"))
        .rejects()
        .run::<Greeter>(Phase::Access, json!({}))
        .await
        .unwrap();
    assert_eq!(
        report.end,
        EventEnd::Rejected("kong.request.get_header".into())
    );
}

#[tokio::test]
async fn a_bad_config_is_a_harness_error() {
    let err = Script::new()
        .run::<Greeter>(Phase::Access, json!({"unknown": true}))
        .await
        .unwrap_err();
    assert!(matches!(err, ScriptError::Harness(_)), "{err:?}");
}
