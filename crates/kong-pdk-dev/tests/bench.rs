//! `kong-pdk-dev bench` runs end to end: the example and the minimal raw
//! server side by side, as a table and as JSON. (No timing assertions: the
//! figures go to docs/BENCHMARKS.md.)

mod common;

use std::process::Command;

const BENCH_RAW: &str = env!("CARGO_BIN_EXE_bench-raw");
const BENCH_PLUGIN: &str = env!("CARGO_BIN_EXE_bench-plugin");

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(common::GATEWAY)
        .arg("bench")
        .args(["-w", "0.1", "-d", "0.3", "-n", "300"])
        .args(args)
        .output()
        .expect("bench runs")
}

#[test]
fn compares_rust_hello_with_the_raw_server_as_json() {
    let hello = common::example("rust-hello");
    let out = bench(&[
        "-c",
        "1,4",
        "-b",
        BENCH_RAW,
        "--json",
        hello.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, conns) in rows.iter().zip([1, 4]) {
        assert_eq!(row["connections"], conns);
        for side in ["plugin", "baseline"] {
            assert!(row[side]["events"].as_u64().unwrap() > 0, "{row}");
            assert!(row[side]["peak_rss_kib"].as_u64().unwrap() > 0, "{row}");
            assert!(row[side]["threads"].as_u64().unwrap() > 0, "{row}");
            let lat = &row[side]["latency_us"];
            assert!(lat["p50"].as_u64() <= lat["p99"].as_u64(), "{row}");
        }
        assert!(row["ratio_to_baseline"]["events_per_sec"].as_f64().unwrap() > 0.0);
        // rust-hello's two calls, and bench-raw's.
        assert_eq!(row["plugin"]["round_trips_per_event"], 2.0, "{row}");
        assert_eq!(row["baseline"]["round_trips_per_event"], 2.0, "{row}");
    }
}

#[test]
fn compares_the_call_layer_on_and_off_in_one_run() {
    let auth = common::example("rust-api-auth");
    let out = bench(&[
        "-c",
        "2",
        "-b",
        "none",
        "--compare-layer",
        "-r",
        "2",
        "--config",
        r#"{"keys":[{"key":"bench-key-0001","client":"bench"}]}"#,
        "--json",
        auth.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let row = &rows[0];
    assert_eq!(row["rounds"], 2);
    // 8 calls in access; the layer makes 4 round trips of them.
    assert_eq!(row["plugin"]["round_trips_per_event"], 4.0, "{row}");
    assert_eq!(row["layer_off"]["round_trips_per_event"], 8.0, "{row}");
    assert_eq!(row["ratio_to_layer_off"]["round_trips_per_event"], 0.5);
    assert!(row.get("baseline").is_none());
}

#[test]
fn the_many_call_variant_prints_a_table() {
    let out = bench(&[
        "-c",
        "2",
        "-b",
        BENCH_RAW,
        "--config",
        r#"{"calls":10}"#,
        BENCH_PLUGIN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("server"), "{table}");
    assert!(table.contains("bench-plugin"), "{table}");
    assert!(table.contains("baseline"), "{table}");
    assert!(table.contains("x events/s"), "{table}");
    assert!(table.contains("rt/ev"), "{table}");
    // 10 calls written: get_header, one get_headers for the other eight,
    // set_header.
    let plugin_row = table
        .lines()
        .find(|l| l.starts_with("bench-plugin"))
        .unwrap();
    assert!(plugin_row.contains(" 3.00 "), "{table}");
    // The baseline replays those three calls, not the ten written.
    let baseline_row = table.lines().find(|l| l.starts_with("baseline")).unwrap();
    assert!(baseline_row.contains(" 3.00 "), "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "replaying the plugin's 3 PDK call(s) per event (kong.request.get_header, kong.request.get_headers, kong.response.set_header)"
        ),
        "{stderr}"
    );
}

#[test]
fn the_baseline_replays_the_plugins_own_calls() {
    let auth = common::example("rust-key-auth");
    let out = bench(&[
        "-c",
        "1",
        "-b",
        BENCH_RAW,
        "--config",
        r#"{"key_names":["authorization"],"keys":[{"key":"Bearer bench-key-0001","consumer":"bench"}]}"#,
        "--json",
        auth.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("kong.client.load_consumer, kong.client.authenticate"),
        "{stderr}"
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let row = &rows[0];
    assert_eq!(row["plugin"]["round_trips_per_event"], 5.0, "{row}");
    assert_eq!(row["baseline"]["round_trips_per_event"], 5.0, "{row}");
}

#[test]
fn without_config_the_schema_defaults_apply_or_the_missing_fields_are_named() {
    // rust-hello: every field has a default, so it runs as is.
    let hello = common::example("rust-hello");
    let out = bench(&["-c", "1", "-b", "none", hello.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // rust-api-auth requires `keys`.
    let api = common::example("rust-api-auth");
    let out = bench(&["-c", "1", api.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rust-api-auth needs --config with: keys (required, no default)"),
        "{stderr}"
    );

    // rust-key-auth's defaults are valid, but it answers bench's request
    // (no key) with 401: said, with the plugin's own answer.
    let key = common::example("rust-key-auth");
    let out = bench(&["-c", "1", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"ended with kong.response.exit(401, "{\"message\":\"No API key found in request\"}")"#
        ),
        "{stderr}"
    );
}

#[test]
fn compares_the_same_plugin_over_both_protocols() {
    let hello = common::example("rust-hello");
    let out = bench(&[
        "-c",
        "2",
        "-b",
        "none",
        "--compare-protocol",
        "--json",
        hello.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let row = &rows[0];
    assert_eq!(row["plugin"]["round_trips_per_event"], 2.0, "{row}");
    assert_eq!(row["other_protocol"]["round_trips_per_event"], 2.0, "{row}");
    assert!(
        row["other_protocol"]["events"].as_u64().unwrap() > 0,
        "{row}"
    );

    // A MsgPack:1 plugin: no ProtoBuf baseline, said so; it runs.
    let policy = common::example("rust-upstream-policy");
    let out = bench(&["-c", "1", "-b", BENCH_RAW, policy.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no baseline comparison: the plugin speaks MsgPack:1"),
        "{stderr}"
    );
}

#[test]
fn compares_another_executable_doing_the_same_job() {
    // rust-hello under another name: its own plugin name, same job.
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("hello-twin");
    std::os::unix::fs::symlink(common::example("rust-hello"), &twin).unwrap();
    let hello = common::example("rust-hello");
    let out = bench(&[
        "-c",
        "1",
        "-b",
        "none",
        "--compare",
        twin.to_str().unwrap(),
        "--json",
        hello.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let twin_row = &rows[0]["compare hello-twin"];
    assert_eq!(twin_row["round_trips_per_event"], 2.0, "{}", rows[0]);
    assert!(
        rows[0]["ratio_to_compare hello-twin"]["events_per_sec"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn a_debug_build_is_benchmarked_with_a_warning() {
    // The test binaries are debug builds unless built with --release.
    let hello = common::example("rust-hello");
    let out = bench(&["-c", "1", "-b", "none", hello.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.contains("looks like a debug build"),
        hello.components().any(|c| c.as_os_str() == "debug"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_exit_2() {
    let out = Command::new(common::GATEWAY)
        .args(["bench", "-c", "zero", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--connections"));
}
