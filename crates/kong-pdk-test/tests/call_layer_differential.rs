//! kong-pdk's call layer, proven differentially: random sequences of PDK
//! operations run with the layer on and off against the simulated Kong must
//! give the handler the same answers and leave Kong in the same state.
//!
//! The sequences come from fixed seeds (reproducible; a failure names its
//! seed). Operations are drawn only where Kong allows them, except the log
//! phase's live-request getters, which the layer answers on purpose where
//! Kong would refuse them (tested in `rules.rs`).

mod common;

use common::{Probe, take_answers};
use kong_pdk_test::{HeaderList, Outcome, Request, TestEnv, UpstreamResponse};
use serde_json::json;

const NAMES: &[&str] = &[
    "x-a",
    "X-A",
    "x_a",
    "x-b",
    "host",
    "cookie",
    "x-multi",
    "x-comma",
    "content-length",
    "x-absent",
];
const VALUES: &[&str] = &["1", "two", "", "p, q", "a=1"];
const QUERY_NAMES: &[&str] = &["a", "b", "A", "absent", "flag"];
const KEYS: &[&str] = &["k1", "k2"];

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// One random action allowed in `phase` (rewrite, access, response, log),
/// on header names from `names`.
fn action(rng: &mut fastrand::Rng, phase: &str, names: &[&str]) -> String {
    let name = pick(rng, names);
    let value = pick(rng, VALUES);
    let key = pick(rng, KEYS);
    let mut reads = vec![
        format!("req.header|{name}"),
        format!("req.header|{name}"),
        "req.headers".to_owned(),
        format!("ctx.get|{key}"),
        format!("ngx.get|{key}"),
    ];
    let mut writes = vec![
        format!("ctx.set|{key}|\"{value}\""),
        format!("log.err|{value}"),
    ];
    if phase != "log" {
        reads.extend([
            format!("req.query_arg|{}", pick(rng, QUERY_NAMES)),
            format!("req.query_arg|{}", pick(rng, QUERY_NAMES)),
            "req.query".to_owned(),
            "req.raw_query".to_owned(),
            "req.method".to_owned(),
            "req.host".to_owned(),
            "req.path_with_query".to_owned(),
            "req.forwarded".to_owned(),
            "client.ip".to_owned(),
        ]);
        writes.extend([
            format!("resp.set_header|{name}|{value}"),
            format!("resp.set_header|{name}|{value}"),
            format!("resp.set_header|{}|{value}", pick(rng, names)),
            format!("resp.add_header|{name}|{value}"),
            format!("resp.clear_header|{name}"),
            format!("resp.set_status|{}", 200 + rng.u16(..3)),
            format!("ngx.set|{key}|\"{value}\""),
            format!("log.set|{key}|\"{value}\""),
        ]);
    }
    if phase == "rewrite" || phase == "access" {
        writes.extend([
            format!("svc.set_header|{name}|{value}"),
            format!("svc.set_header|{name}|{value}"),
            format!("svc.set_header|{}|{value}", pick(rng, names)),
            format!("svc.add_header|{name}|{value}"),
            format!("svc.clear_header|{name}"),
            format!("svc.set_headers|{name}={value},x-b={value}"),
            format!("svc.set_raw_query|a={value}&b"),
            format!("svc.set_query|a={value}"),
            "svc.set_method|POST".to_owned(),
            format!("svc.set_body|{value}"),
        ]);
    }
    if phase == "response" || phase == "log" {
        reads.extend([
            "resp.status".to_owned(),
            format!("resp.header|{name}"),
            format!("resp.header|{}", pick(rng, names)),
            "svc_resp.status".to_owned(),
            format!("svc_resp.header|{name}"),
        ]);
    }
    if rng.bool() {
        reads.swap_remove(rng.usize(..reads.len()))
    } else {
        writes.swap_remove(rng.usize(..writes.len()))
    }
}

fn actions(rng: &mut fastrand::Rng, phase: &str, names: &[&str]) -> Vec<String> {
    let n = rng.usize(0..16);
    let mut out: Vec<String> = (0..n).map(|_| action(rng, phase, names)).collect();
    if phase != "log" && rng.u8(..10) == 0 {
        out.push("exit|403|no|x-exit=1".into());
    }
    out
}

fn request() -> Request {
    Request::get("http://Example.com:8000/p?a=1&a=2&b=&flag&A=up")
        .header("x-a", "1")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("x-comma", "p, q")
        .client_ip("10.0.0.1")
}

/// Header lines compared by name (lower case), in order within a name:
/// HTTP leaves the order of different names insignificant, and a coalesced
/// `set_headers` sets them in name order.
fn lines(headers: &HeaderList) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Everything a plugin leaves behind in Kong, except the calls themselves.
fn state(out: &Outcome) -> String {
    format!(
        "response: {} {:?} {:?} {:?}\nupstream: {} {} {} {:?} {:?}\nphases: {:?}\nlogs: {:?}\n\
         errors: {:?}\nctx: {:?}\nngx: {:?}\nserialize: {:?}\nrecord: {}",
        out.response.status,
        lines(&out.response.headers),
        out.response.body_text(),
        out.response.source,
        out.upstream_request.method,
        out.upstream_request.path,
        out.upstream_request.query,
        lines(&out.upstream_request.headers),
        out.upstream_request.body,
        out.phases,
        out.logs,
        out.kong_errors,
        out.ctx_shared,
        out.nginx_ctx,
        out.serialize_values,
        out.log_record,
    )
}

/// The calls that fetch a whole table (the layer's prefetch uses them).
const TABLES: [&str; 3] = [
    "kong.request.get_headers",
    "kong.response.get_headers",
    "kong.request.get_query",
];

async fn run(config: &serde_json::Value, layer: bool) -> (Vec<String>, String, usize, usize) {
    let run = config["run"].as_str().unwrap().to_owned();
    let upstream = UpstreamResponse::new(201)
        .header("x-a", "up")
        .header("x-multi", "u1")
        .header("x-multi", "u2")
        .body("upstream body");
    let mut env = TestEnv::new(request())
        .upstream_response(upstream)
        .call_layer(layer);
    let out = env.run::<Probe>(config.clone()).await;
    let answers = take_answers(&run);
    let tables = TABLES.iter().map(|m| out.calls_to(m).len()).sum();
    (answers, state(&out), out.round_trips(), tables)
}

#[tokio::test]
async fn random_pdk_sequences_behave_the_same_with_and_without_the_call_layer() {
    let (mut calls_on, mut calls_off) = (0, 0);
    for seed in 0..400u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        // A few names per sequence, so that reads and writes meet.
        let mut names = NAMES.to_vec();
        rng.shuffle(&mut names);
        names.truncate(rng.usize(2..=4));
        let config = json!({
            "run": format!("seed-{seed}"),
            "on_rewrite": actions(&mut rng, "rewrite", &names),
            "on_access": actions(&mut rng, "access", &names),
            "on_response": actions(&mut rng, "response", &names),
            "on_log": actions(&mut rng, "log", &names),
        });
        let (answers_off, state_off, off, tables_off) = run(&config, false).await;
        let mut config_on = config.clone();
        config_on["run"] = json!(format!("seed-{seed}-on"));
        let (answers_on, state_on, on, tables_on) = run(&config_on, true).await;
        assert_eq!(
            answers_on, answers_off,
            "seed {seed}: the handler saw different answers\nconfig: {config:#}"
        );
        assert_eq!(
            state_on, state_off,
            "seed {seed}: Kong ended in a different state\nconfig: {config:#}"
        );
        // Only a prefetch can cost a call: when the name that triggered it
        // cannot be answered from the table (a query flag, two Cookie lines).
        let prefetches = tables_on.saturating_sub(tables_off);
        assert!(
            on <= off + prefetches,
            "seed {seed}: the layer made more round trips ({on} > {off} + {prefetches})\n\
             config: {config:#}\n{answers_on:#?}"
        );
        calls_on += on;
        calls_off += off;
    }
    // The sequences are random, so the saving is modest; it must be there.
    assert!(calls_on < calls_off, "{calls_on} vs {calls_off}");
    println!("round trips: {calls_on} with the call layer, {calls_off} without");
}
