//! The built `rust-hello` executable, run the way Kong runs it.

use std::process::{Command, Output};

use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, EventEnd, PluginProcess, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_rust-hello");

fn run(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn dump_prints_one_json_document_and_nothing_else() {
    for flag in ["-dump", "--dump", "-dump=true"] {
        let out = run(&[flag, "-kong-prefix", "/kong/prefix"]);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = stdout(&out);
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        let dump: serde_json::Value = serde_json::from_str(&text).expect("stdout is JSON");
        assert_eq!(dump["SocketPath"], "/kong/prefix/rust-hello.socket");
        assert!(stderr(&out).is_empty(), "no log noise: {}", stderr(&out));
    }
}

#[test]
fn dump_matches_the_snapshot() {
    let out = run(&["-dump"]);
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/dump.json");
    let pretty = serde_json::to_string_pretty(&dump).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &pretty).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("snapshot exists");
    assert_eq!(pretty, want, "rerun with UPDATE_SNAPSHOTS=1 to accept");
    // Key order is go-pdk's, which some tools compare textually.
    let raw = stdout(&out);
    let keys = [
        "\"Protocol\"",
        "\"SocketPath\"",
        "\"Plugins\"",
        "\"Name\"",
        "\"Phases\"",
        "\"Version\"",
        "\"Priority\"",
        "\"Schema\"",
    ];
    let positions: Vec<usize> = keys.iter().map(|k| raw.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");
}

#[test]
fn help_flags_print_usage_and_succeed() {
    for flag in ["-h", "-help", "--help"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}");
        assert!(stdout(&out).is_empty(), "usage goes to stderr");
        let usage = stderr(&out);
        assert!(usage.contains("Usage of rust-hello:"), "{usage}");
        assert!(usage.contains("-dump\n    \tDump info about plugins"));
        assert!(usage.contains("-help\n    \tShow usage info"));
        assert!(usage.contains("-kong-prefix string"));
        assert!(usage.contains("(default \"/usr/local/kong\")"));
    }
}

#[test]
fn unknown_flag_is_an_error_with_usage_and_exit_2() {
    for args in [&["-verbose"][..], &["-kong-prefix"], &["stray"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("Usage of rust-hello:"), "{err}");
        assert!(stdout(&out).is_empty());
    }
    let out = run(&["-verbose"]);
    assert!(stderr(&out).starts_with("flag provided but not defined: -verbose"));
}

#[test]
fn missing_prefix_is_a_clear_error() {
    let out = run(&["-kong-prefix", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("/definitely/not/here does not exist"), "{err}");
}

#[test]
fn unwritable_prefix_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = run(&["-kong-prefix", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
}

#[tokio::test]
async fn serves_kong_over_its_socket() {
    let mut server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.set_sequence(2);
    // What Kong sends after filling the schema default.
    let config = r#"{"__key__":"plugins:rust-hello:::::ws","message":"Kong!","__seq__":1,"__plugin_id":"p","__ws_id":"ws","route_id":null,"service_id":null,"consumer_id":null}"#;
    let status = conn
        .start_instance("rust-hello", config)
        .await
        .unwrap()
        .expect("started");
    assert_eq!(status.instance_id, 1);
    let result = conn
        .handle_event(1, "access", |call| match call.method.as_str() {
            "kong.request.get_header" => Reply::message(&pb::Str {
                v: "example.com".into(),
            }),
            _ => Reply::empty(),
        })
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    // Exactly go-hello's two calls: the call layer has nothing to save here
    // and sends the one waiting set_header as written.
    assert_eq!(
        result.methods(),
        ["kong.request.get_header", "kong.response.set_header"]
    );
    assert_eq!(result.calls[0].decode::<pb::Str>().v, "host");
    let kv = result.calls[1].decode::<pb::Kv>();
    assert_eq!(kv.k, "x-hello-from-rust");
    assert_eq!(
        kv.v.unwrap().kind,
        Some(pb::ValueKind::StringValue(
            "Rust says Kong! to example.com".into()
        ))
    );
    assert!(
        server.stderr().contains("Listening on socket:"),
        "{}",
        server.stderr()
    );

    let status = server.terminate().unwrap();
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
    assert!(!server.socket().exists(), "socket removed");
}

#[tokio::test]
async fn a_second_server_on_the_same_socket_refuses_to_start() {
    let first = PluginProcess::start(EXE).unwrap();
    let out = Command::new(EXE)
        .args(["-kong-prefix", first.prefix().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already listening"),
        "{}",
        stderr(&out)
    );
    // The first one still serves.
    let mut conn = Connection::connect(first.socket()).await.unwrap();
    let config = r#"{"message":"hi","__seq__":3}"#;
    assert!(
        conn.start_instance("rust-hello", config)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rust-hello.socket"), "stale").unwrap();
    let mut child = tokio::process::Command::new(EXE)
        .args(["-kong-prefix", dir.path().to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.path().join("rust-hello.socket");
    let mut connected = None;
    for _ in 0..500 {
        if let Ok(c) = Connection::connect(&socket).await {
            connected = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut conn = connected.expect("server replaced the stale file");
    let ret = conn
        .start_instance("rust-hello", r#"{"message":"x","__seq__":1}"#)
        .await
        .unwrap();
    assert!(ret.is_some());
    child.kill().await.unwrap();
}

#[test]
fn a_symlinked_binary_answers_to_the_link_name() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("my-hello");
    std::os::unix::fs::symlink(EXE, &link).unwrap();
    let out = Command::new(&link)
        .args(["-dump", "-kong-prefix", "/p"])
        .output()
        .unwrap();
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dump["Plugins"][0]["Name"], "my-hello");
    assert_eq!(dump["Plugins"][0]["Schema"]["name"], "my-hello");
    assert_eq!(dump["SocketPath"], "/p/my-hello.socket");
}

#[test]
fn the_server_exits_when_its_parent_dies() {
    // A shell starts the server in the background and exits shortly after,
    // as a crashed Kong worker would leave it behind. (The shell lives long
    // enough for the server to see it as its parent; one that is gone before
    // the server starts looks like init, which the server does not watch.)
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{EXE}' -kong-prefix '{}' >/dev/null 2>&1 & echo $!; sleep 3",
            dir.path().display()
        ))
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let socket = dir.path().join("rust-hello.socket");
    let gone = |pid: u32| !std::path::Path::new(&format!("/proc/{pid}")).exists();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !gone(pid) || socket.exists() {
        if std::time::Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("server {pid} still running (or its socket left) after its parent died");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn an_unknown_kong_pdk_log_level_is_reported_not_ignored() {
    let server = PluginProcess::start_with_env(EXE, &[("KONG_PDK_LOG", "verbose")]).unwrap();
    let stderr = server
        .wait_for_stderr("KONG_PDK_LOG", std::time::Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stderr.contains(r#"KONG_PDK_LOG="verbose" is not a level (trace, debug, info, warn, error): logging at info"#),
        "{stderr}"
    );
    // At info, the server still announces its socket.
    server
        .wait_for_stderr("Listening on socket", std::time::Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `KONG_PDK_PROTOCOL` switches a ProtoBuf plugin to MsgPack:1 (for
/// benchmarks): the dump says so and the socket speaks it.
#[tokio::test]
async fn kong_pdk_protocol_switches_the_dump_and_the_socket() {
    let out = Command::new(EXE)
        .arg("-dump")
        .env("KONG_PDK_PROTOCOL", "msgpack")
        .output()
        .unwrap();
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dump["Protocol"], "MsgPack:1");

    let server = PluginProcess::start_with_env(EXE, &[("KONG_PDK_PROTOCOL", "MsgPack:1")]).unwrap();
    let mut conn = kong_pdk_test::MsgPackConnection::connect(server.socket())
        .await
        .unwrap();
    let id = conn
        .start_instance("rust-hello", r#"{"message":"mp","__seq__":1}"#)
        .await
        .unwrap()
        .unwrap();
    let result = conn
        .handle_event(id, "access", |_| {
            kong_pdk_test::MpReply::Value(Some(kong_pdk_test::rmpv::Value::from("h")))
        })
        .await
        .unwrap();
    assert_eq!(result.end, kong_pdk_test::MpEnd::Returned);
    assert_eq!(
        result.calls[1].args,
        [
            kong_pdk_test::rmpv::Value::from("x-hello-from-rust"),
            kong_pdk_test::rmpv::Value::from("Rust says mp to h")
        ]
    );
}
