//! `kong-pdk-dev check` on every example, and on broken plugins.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn check(exe: &Path, extra: &[&str]) -> Output {
    Command::new(common::GATEWAY)
        .arg("check")
        .args(extra)
        .arg(exe)
        .output()
        .expect("kong-pdk-dev runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn row<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| {
            l.get(8..)
                .is_some_and(|rest| rest.starts_with(&format!("{name} ")))
        })
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{out}"))
}

#[test]
fn every_example_passes() {
    for name in common::EXAMPLES {
        let out = check(&common::example(name), &[]);
        let report = text(&out);
        assert!(out.status.success(), "{name}:\n{report}");
        assert!(report.contains("result: PASS"), "{report}");
        for r in [
            "-h",
            "-dump",
            "schema",
            "start",
            "start instance",
            "unknown instance",
            "close instance",
            "SIGTERM",
        ] {
            assert!(
                row(&report, r).starts_with("  PASS"),
                "{name}: {r}:\n{report}"
            );
        }
    }
    // Every declared phase ran.
    let report = text(&check(&common::example("rust-tenant-audit"), &[]));
    assert!(
        row(&report, "phase access").starts_with("  PASS"),
        "{report}"
    );
    assert!(row(&report, "phase log").starts_with("  PASS"), "{report}");
    let report = text(&check(&common::example("rust-key-auth"), &[]));
    assert!(
        row(&report, "phase access").contains("kong.response.exit(401)"),
        "{report}"
    );
    let report = text(&check(&common::example("rust-response-transformer"), &[]));
    assert!(
        row(&report, "phase response").starts_with("  PASS"),
        "{report}"
    );
}

#[test]
fn a_given_config_is_validated_and_used() {
    let exe = common::example("rust-key-auth");
    let out = check(
        &exe,
        &["--config", r#"{"keys":[{"key":"short","consumer":"a"}]}"#],
    );
    let report = text(&out);
    // Kong would refuse this config: the check fails, saying why.
    assert!(row(&report, "config").starts_with("  FAIL"), "{report}");
    assert!(report.contains("length must be at least 8"), "{report}");
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("result: FAIL"), "{report}");
    let out = check(
        &exe,
        &[
            "--config",
            r#"{"keys":[{"key":"secret-key-1","consumer":"a"}]}"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// A fake plugin: a shell script.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn broken_plugins_fail_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    // Log noise on stdout before the JSON.
    let noisy = script(
        dir.path(),
        "noisy",
        r#"case "$1" in -dump) echo "starting"; echo '{"Protocol":"ProtoBuf:1","Plugins":[]}';; *) echo "usage: -dump -kong-prefix" >&2;; esac"#,
    );
    let out = check(&noisy, &[]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(row(&report, "-dump").starts_with("  FAIL"), "{report}");
    assert!(report.contains("failed decoding plugin info"), "{report}");
    assert!(report.contains("result: FAIL"), "{report}");

    // A dump with a float priority, a bad version and an unknown phase.
    let bad = script(
        dir.path(),
        "bad-info",
        r#"echo '{"Protocol":"ProtoBuf:1","Plugins":[{"Name":"bad-info","Priority":1.5,"Version":"v1","Phases":["header_filter"],"Schema":{"name":"bad-info","fields":[{"config":{"type":"record","fields":[]}}]}}]}'"#,
    );
    let report = text(&check(&bad, &[]));
    assert!(
        report.contains("PRIORITY field is not a valid integer number"),
        "{report}"
    );
    assert!(report.contains("\"x.y.z\" format"), "{report}");
    assert!(report.contains("header_filter"), "{report}");

    // A valid dump, but the server never creates its socket.
    let mute = script(
        dir.path(),
        "mute",
        r#"case "$1" in -dump) echo '{"Protocol":"ProtoBuf:1","Plugins":[{"Name":"mute","Priority":1,"Version":"1.0.0","Phases":["access"],"Schema":{"name":"mute","fields":[{"config":{"type":"record","fields":[]}}]}}]}';; -h) echo "-dump -kong-prefix" >&2;; *) exit 3;; esac"#,
    );
    let report = text(&check(&mute, &[]));
    assert!(
        row(&report, "plugin info").starts_with("  PASS"),
        "{report}"
    );
    assert!(row(&report, "start").starts_with("  FAIL"), "{report}");
    assert!(
        report.contains("exited with exit status: 3 before serving"),
        "{report}"
    );

    // Not executable at all.
    let out = check(&dir.path().join("missing"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is not an executable file"));
}

#[test]
fn a_msgpack_plugin_is_checked_in_its_protocol() {
    let out = check(&common::example("rust-upstream-policy"), &[]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(
        row(&report, "unknown instance").contains("answered \"no plugin instance\""),
        "{report}"
    );
    assert!(
        row(&report, "phase access").contains("returned (3 PDK calls)"),
        "{report}"
    );
}
