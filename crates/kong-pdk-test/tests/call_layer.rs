//! kong-pdk's call layer, rule by rule, through the simulated Kong: what is
//! answered without a round trip, what a write invalidates, how writes are
//! coalesced and when they are sent. Each test also runs with the layer off
//! and checks the plugin saw the same answers.

mod common;

use common::{Probe, take_answers};
use kong_pdk::Phase;
use kong_pdk_test::{Outcome, PdkCall, Request, TestEnv, UpstreamResponse};
use serde_json::json;

fn request() -> Request {
    Request::get("http://example.com/p?a=1&a=2&b=x&flag")
        .header("x-a", "1")
        .header("x-b", "2")
        .header("x-c", "3")
        .header("x-d", "4")
        .header("x-e", "5")
}

/// Runs `phase`'s actions with the layer on and off; checks the answers are
/// the same and returns them with the layer-on outcome.
async fn run(phase: &str, actions: &[&str]) -> (Vec<String>, Outcome) {
    let mut answers = Vec::new();
    let mut outcomes = Vec::new();
    for layer in [true, false] {
        let name = format!("{phase}-{actions:?}-{layer}");
        let config = json!({"run": name, format!("on_{phase}"): actions});
        let upstream = UpstreamResponse::new(200)
            .header("x-up", "u")
            .header("x-up2", "v");
        let mut env = TestEnv::new(request())
            .upstream_response(upstream)
            .call_layer(layer);
        outcomes.push(env.run::<Probe>(config).await);
        answers.push(take_answers(&name));
    }
    assert_eq!(answers[0], answers[1], "answers differ with the layer off");
    let off = outcomes.pop().unwrap();
    let on = outcomes.pop().unwrap();
    assert_eq!(on.response.status, off.response.status);
    assert_eq!(
        on.upstream_request.headers.iter().count(),
        off.upstream_request.headers.iter().count()
    );
    (answers.swap_remove(0), on)
}

/// The methods Kong received in `phase`.
fn sent(out: &Outcome, phase: Phase) -> Vec<&str> {
    out.calls
        .iter()
        .filter(|c| c.phase == phase)
        .map(|c: &PdkCall| c.method.as_str())
        .collect()
}

#[tokio::test]
async fn a_repeated_read_is_answered_from_the_cache() {
    let (answers, out) = run(
        "access",
        &[
            "req.method",
            "req.method",
            "ctx.get|k",
            "ctx.get|k",
            "req.path",
            "req.path",
            "client.ip",
            "client.ip",
        ],
    )
    .await;
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        sent(&out, Phase::Access),
        [
            "kong.request.get_method",
            "kong.ctx.shared.get",
            "kong.request.get_path",
            "kong.client.get_ip"
        ]
    );
}

#[tokio::test]
async fn a_second_distinct_header_fetches_all_headers_once() {
    let reads = [
        "req.header|x-a",
        "req.header|X_B",
        "req.header|x-c",
        "req.header|absent",
        "req.header|x-a",
    ];
    let (answers, out) = run("access", &reads).await;
    assert_eq!(
        answers,
        [
            "req.header|x-a => 1",
            "req.header|X_B => 2",
            "req.header|x-c => 3",
            "req.header|absent => ",
            "req.header|x-a => 1"
        ]
    );
    assert_eq!(
        sent(&out, Phase::Access),
        ["kong.request.get_header", "kong.request.get_headers"]
    );
}

#[tokio::test]
async fn single_lookups_after_a_table_read_need_no_call() {
    let (_, out) = run(
        "access",
        &[
            "req.headers",
            "req.header|x-d",
            "req.query",
            "req.query_arg|a",
        ],
    )
    .await;
    assert_eq!(
        sent(&out, Phase::Access),
        ["kong.request.get_headers", "kong.request.get_query"]
    );
    let (_, out) = run(
        "access",
        &["req.query_arg|a", "req.query_arg|b", "req.query_arg|zz"],
    )
    .await;
    assert_eq!(
        sent(&out, Phase::Access),
        ["kong.request.get_query_arg", "kong.request.get_query"]
    );
    // Query names are case-sensitive: `A` after `a` is a second name.
    let (answers, out) = run("access", &["req.query_arg|a", "req.query_arg|A"]).await;
    assert_eq!(answers[1], "req.query_arg|A => ");
    assert_eq!(
        sent(&out, Phase::Access),
        ["kong.request.get_query_arg", "kong.request.get_query"]
    );
}

#[tokio::test]
async fn response_headers_are_prefetched_in_the_response_and_log_phases() {
    for phase in ["response", "log"] {
        let (answers, out) = run(
            phase,
            &["resp.header|x-up", "resp.header|X_UP2", "resp.header|none"],
        )
        .await;
        assert_eq!(answers[1], "resp.header|X_UP2 => v", "{phase}");
        assert_eq!(
            sent(&out, Phase::from_name(phase).unwrap()),
            ["kong.response.get_header", "kong.response.get_headers"],
            "{phase}"
        );
    }
}

#[tokio::test]
async fn a_write_drops_exactly_what_it_can_change() {
    // (write, read affected, read unaffected): the affected read goes to Kong
    // again and sees the new value; the unaffected one stays local.
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "access",
            "svc.set_header|x-a|new",
            "req.header|x-a",
            "req.header|x-b",
            "kong.request.get_header",
        ),
        (
            "access",
            "svc.clear_header|X-A",
            "req.header|x-a",
            "req.header|x-b",
            "kong.request.get_header",
        ),
        (
            "access",
            "svc.set_raw_query|a=9",
            "req.query_arg|a",
            "req.method",
            "kong.request.get_query_arg",
        ),
        (
            "access",
            "svc.set_method|POST",
            "req.method",
            "req.query_arg|a",
            "kong.request.get_method",
        ),
        (
            "access",
            "ctx.set|k|\"v\"",
            "ctx.get|k",
            "req.method",
            "kong.ctx.shared.get",
        ),
        (
            "access",
            "client.authenticate|c1",
            "client.consumer",
            "req.method",
            "kong.client.get_consumer",
        ),
        (
            "response",
            "resp.set_status|202",
            "resp.status",
            "resp.header|x-up",
            "kong.response.get_status",
        ),
        (
            "response",
            "resp.set_header|x-up|mine",
            "resp.header|x-up",
            "resp.header|x-up2",
            "kong.response.get_header",
        ),
    ];
    for (phase, write, affected, unaffected, method) in cases {
        // Read both (and the whole table), write, read both again.
        let table = if phase == &"response" {
            "resp.header|x-up2"
        } else {
            "req.headers"
        };
        let actions = [table, affected, unaffected, write, affected, unaffected];
        let (answers, out) = run(phase, &actions).await;
        let calls = sent(&out, Phase::from_name(phase).unwrap());
        // The affected read went to Kong after the write; the unaffected
        // one after it did not.
        assert_eq!(calls.last(), Some(method), "{write}: {calls:?}");
        assert_ne!(answers[1], answers[4], "{write} changed {affected}");
        assert_eq!(answers[2], answers[5], "{write}");
    }
}

#[tokio::test]
async fn a_write_to_nginx_ctx_drops_everything() {
    let (_, out) = run(
        "access",
        &["req.method", "ngx.set|x|1", "req.method", "req.path"],
    )
    .await;
    assert_eq!(
        sent(&out, Phase::Access),
        [
            "kong.request.get_method",
            "kong.nginx.set_ctx",
            "kong.request.get_method",
            "kong.request.get_path"
        ]
    );
}

#[tokio::test]
async fn consecutive_set_header_calls_become_one_set_headers() {
    let writes = [
        "resp.set_header|x-1|a",
        "resp.set_header|x-2|b",
        "svc.set_header|x-up-1|c",
        "resp.set_header|x-3|d",
        "svc.set_header|x-up-2|e",
        "resp.set_header|x-1|last",
    ];
    let (_, out) = run("access", &writes).await;
    // x-1 again: a name already waiting sends what waits first.
    assert_eq!(
        sent(&out, Phase::Access),
        [
            "kong.response.set_headers",
            "kong.service.request.set_headers",
            "kong.response.set_header"
        ]
    );
    assert_eq!(out.response.header("x-1"), Some("last"));
    assert_eq!(out.response.header("x-3"), Some("d"));
    assert_eq!(out.upstream_request.header("x-up-2"), Some("e"));
}

#[tokio::test]
async fn one_waiting_write_is_sent_as_written() {
    let (_, out) = run("access", &["resp.set_header|x-1|a"]).await;
    assert_eq!(sent(&out, Phase::Access), ["kong.response.set_header"]);
}

#[tokio::test]
async fn waiting_writes_go_before_any_other_call() {
    let (answers, out) = run(
        "access",
        &[
            "svc.set_header|x-a|new",
            "svc.set_header|x-z|z",
            "req.header|x-a",
            "resp.set_header|x-1|a",
            "resp.add_header|x-1|b",
        ],
    )
    .await;
    assert_eq!(answers[2], "req.header|x-a => new");
    assert_eq!(
        sent(&out, Phase::Access),
        [
            "kong.service.request.set_headers",
            "kong.request.get_header",
            "kong.response.set_header",
            "kong.response.add_header"
        ]
    );
    assert_eq!(out.response.headers.get_all("x-1"), ["a", "b"]);
}

#[tokio::test]
async fn waiting_writes_go_before_exit_and_before_the_error_answer() {
    let (_, out) = run(
        "access",
        &[
            "resp.set_header|x-1|a",
            "resp.set_header|x-2|b",
            "exit|403|no",
        ],
    )
    .await;
    assert_eq!(
        sent(&out, Phase::Access),
        ["kong.response.set_headers", "kong.response.exit"]
    );
    assert_eq!(out.response.status, 403);
    assert_eq!(out.response.header("x-2"), Some("b"));

    let (_, out) = run(
        "access",
        &[
            "resp.set_header|x-1|a",
            "resp.set_header|x-2|b",
            "fail|broken",
        ],
    )
    .await;
    assert_eq!(
        sent(&out, Phase::Access),
        [
            "kong.response.set_headers",
            "kong.log.err",
            "kong.response.exit"
        ]
    );
    assert_eq!(out.response.status, 500);
    assert_eq!(out.response.header("x-1"), Some("a"));
}

#[tokio::test]
async fn writes_kong_could_refuse_are_sent_at_once() {
    // A control character in the value, a name that is not a token, another
    // spelling of a waiting name: each goes to Kong as written, in order.
    let (_, out) = run(
        "access",
        &[
            "resp.set_header|x-1|a",
            "resp.set_header|x-bad|a\u{1}b",
            "resp.set_header|x 2|b",
            "resp.set_header|x-3|c",
            "resp.set_header|X_3|d",
        ],
    )
    .await;
    assert_eq!(
        sent(&out, Phase::Access),
        [
            "kong.response.set_header",
            "kong.response.set_header",
            "kong.response.set_header",
            "kong.response.set_header",
            "kong.response.set_header"
        ]
    );
}

#[tokio::test]
async fn five_headers_read_and_five_set_take_three_round_trips() {
    let actions = [
        "req.header|x-a",
        "req.header|x-b",
        "req.header|x-c",
        "req.header|x-d",
        "req.header|x-e",
        "resp.set_header|x-r1|1",
        "resp.set_header|x-r2|2",
        "resp.set_header|x-r3|3",
        "resp.set_header|x-r4|4",
        "resp.set_header|x-r5|5",
    ];
    let mut outs = Vec::new();
    for layer in [true, false] {
        let name = format!("five-{layer}");
        let mut env = TestEnv::new(request()).call_layer(layer);
        outs.push(
            env.access::<Probe>(json!({"run": name, "on_access": actions}))
                .await,
        );
        take_answers(&name);
    }
    let (on, off) = (&outs[0], &outs[1]);
    assert_eq!(off.round_trips(), 10);
    assert!(on.round_trips() <= 3, "{:?}", on.methods());
    let mut headers_on: Vec<_> = on.response.headers.iter().collect();
    let mut headers_off: Vec<_> = off.response.headers.iter().collect();
    headers_on.sort();
    headers_off.sort();
    assert_eq!(headers_on, headers_off);
}

#[tokio::test]
async fn turned_off_every_call_reaches_kong() {
    let name = "off";
    let mut env = TestEnv::new(request()).call_layer(false);
    let out = env
        .access::<Probe>(json!({
            "run": name,
            "on_access": ["req.method", "req.method", "resp.set_header|a|1", "resp.set_header|b|2"]
        }))
        .await;
    take_answers(name);
    assert_eq!(
        out.methods(),
        [
            "kong.request.get_method",
            "kong.request.get_method",
            "kong.response.set_header",
            "kong.response.set_header"
        ]
    );
}
