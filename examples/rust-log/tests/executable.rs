//! The built `rust-log` executable, driven over its socket like Kong does.

use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, EventEnd, PluginProcess, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_rust-log");

fn config(path: &std::path::Path, reopen: bool, seq: i64) -> String {
    serde_json::json!({
        "__key__": "plugins:rust-log:::::ws",
        "path": path,
        "reopen": reopen,
        "__seq__": seq,
        "__plugin_id": "p",
        "__ws_id": "ws",
        "route_id": null,
    })
    .to_string()
}

async fn log_event(conn: &mut Connection, id: i32, record: &str) {
    let result = conn
        .handle_event(id, "log", |call| {
            assert_eq!(call.method, "kong.log.serialize");
            assert!(call.args.is_empty());
            Reply::message(&pb::Str { v: record.into() })
        })
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(result.methods(), ["kong.log.serialize"]);
}

#[tokio::test]
async fn appends_one_json_line_per_request() {
    let server = PluginProcess::start(EXE).unwrap();
    let out = server.prefix().join("requests.log");
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let status = conn
        .start_instance("rust-log", &config(&out, false, 1))
        .await
        .unwrap()
        .expect("started");
    log_event(
        &mut conn,
        status.instance_id,
        r#"{"request":{"method":"GET"}}"#,
    )
    .await;
    log_event(
        &mut conn,
        status.instance_id,
        r#"{"request":{"method":"POST"}}"#,
    )
    .await;
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text,
        "{\"request\":{\"method\":\"GET\"}}\n{\"request\":{\"method\":\"POST\"}}\n"
    );
}

#[tokio::test]
async fn reopen_follows_log_rotation() {
    let server = PluginProcess::start(EXE).unwrap();
    let out = server.prefix().join("rotated.log");
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let id = conn
        .start_instance("rust-log", &config(&out, true, 2))
        .await
        .unwrap()
        .unwrap()
        .instance_id;
    log_event(&mut conn, id, "{\"n\":1}").await;
    let rotated = server.prefix().join("rotated.log.1");
    std::fs::rename(&out, &rotated).unwrap();
    log_event(&mut conn, id, "{\"n\":2}").await;
    assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "{\"n\":1}\n");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"n\":2}\n");
}

#[tokio::test]
async fn unopenable_path_fails_the_instance_start_with_a_clear_log() {
    let server = PluginProcess::start(EXE).unwrap();
    let bad = server.prefix().join("no-such-dir/x.log");
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let refused = conn
        .start_instance("rust-log", &config(&bad, false, 1))
        .await
        .unwrap();
    assert!(refused.is_none(), "start fails: connection closed");
    let log = server
        .wait_for_stderr("cannot open log file", std::time::Duration::from_secs(10))
        .unwrap();
    assert!(log.contains("no-such-dir/x.log"), "{log}");
}

#[tokio::test]
async fn missing_required_path_fails_the_start() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let refused = conn
        .start_instance("rust-log", r#"{"__seq__":1,"reopen":false,"path":null}"#)
        .await
        .unwrap();
    assert!(refused.is_none());
    server
        .wait_for_stderr("missing field `path`", std::time::Duration::from_secs(10))
        .unwrap();
}
