//! Replays a recorded Kong ⇄ plugin-server exchange against our server.
//!
//! Kong's frames are written exactly as recorded; each frame the recording
//! shows the plugin sending is read from our server and compared: method and
//! end frames byte for byte, messages after decoding (maps are unordered,
//! `InstanceStatus.started_at` is ignored).

use std::path::{Path, PathBuf};
use std::time::Duration;

use kong_pdk::Plugin;
use kong_pdk::server::Server;
use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, TestServer};
use prost::Message;
use serde_json::Value as Json;

/// Where the recordings live: `KONG_VECTORS_DIR` if set, else the copy
/// kept beside this file (`recordings/`, from the team's
/// `shared/kong/vectors`; its README says how they were captured).
pub(crate) fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KONG_VECTORS_DIR") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/recordings")
}

pub(crate) fn load(scenario: &str) -> Json {
    let path = vectors_dir().join(format!("{scenario}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("recording is JSON")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Starts plugin `P` in-process under `name`, as the recording's server.
pub(crate) async fn start<P: Plugin>(name: &str, version: &str, priority: i32) -> TestServer {
    TestServer::start(Server::<P>::new(version, priority).name(name)).await
}

/// Replays every connection of `scenario` against `server`.
pub(crate) async fn replay(server: &TestServer, scenario: &str) {
    let recording = load(scenario);
    let connections = recording["connections"].as_array().expect("connections");
    for (index, entries) in connections.iter().enumerate() {
        let entries = entries.as_array().unwrap();
        if entries.iter().all(|e| e.get("event").is_some()) {
            continue; // only a close: a connection of a previous server
        }
        let mut conn = server.connect().await;
        for (n, entry) in entries.iter().enumerate() {
            let at = format!("{scenario} connection {} entry {n}", index + 1);
            step(&mut conn, entry, &at).await;
        }
    }
}

async fn step(conn: &mut Connection, entry: &Json, at: &str) {
    let dir = entry["dir"].as_str().unwrap();
    let wait = Duration::from_secs(5);
    if entry.get("event").is_some() {
        if dir == "kong_to_plugin" {
            conn.close();
        } else {
            let read = tokio::time::timeout(wait, conn.read_frame())
                .await
                .unwrap_or_else(|_| panic!("{at}: server did not close"));
            assert!(
                matches!(read, Ok(None)),
                "{at}: expected the server to close, got {read:?}"
            );
        }
        return;
    }
    let bytes = hex(entry["hex"].as_str().unwrap());
    if dir == "kong_to_plugin" {
        conn.write_frame(&bytes).await.unwrap();
        return;
    }
    let ours = tokio::time::timeout(wait, conn.read_frame())
        .await
        .unwrap_or_else(|_| panic!("{at}: no frame from the server ({})", entry["decoded"]))
        .unwrap_or_else(|e| panic!("{at}: {e}"))
        .unwrap_or_else(|| panic!("{at}: server closed, expected {}", entry["decoded"]));
    let decoded = &entry["decoded"];
    let kind = decoded["kind"].as_str().unwrap();
    let ty = decoded["type"].as_str().unwrap_or("");
    match kind {
        "pdk_method" | "pdk_end" => assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&bytes),
            "{at}: {kind}"
        ),
        _ => compare_message(ty, &bytes, &ours, at),
    }
}

fn decode<M: Message + Default>(bytes: &[u8], at: &str) -> M {
    M::decode(bytes).unwrap_or_else(|e| panic!("{at}: cannot decode: {e}"))
}

fn compare_message(ty: &str, recorded: &[u8], ours: &[u8], at: &str) {
    macro_rules! same {
        ($t:ty) => {{
            let want: $t = decode(recorded, at);
            let got: $t = decode(ours, at);
            assert_eq!(got, want, "{at}: {ty}");
        }};
    }
    match ty {
        "google.protobuf.Empty" => assert!(ours.is_empty(), "{at}: Empty args carry bytes"),
        "kong_plugin_protocol.RpcReturn" => {
            let mut want: pb::RpcReturn = decode(recorded, at);
            let mut got: pb::RpcReturn = decode(ours, at);
            for ret in [&mut want, &mut got] {
                if let Some(pb::rpc_return::Return::InstanceStatus(s)) = &mut ret.r#return {
                    s.started_at = 0;
                }
            }
            assert_eq!(got, want, "{at}: RpcReturn");
        }
        "kong_plugin_protocol.ExitArgs" => {
            let want = normalize_exit(decode(recorded, at));
            let got = normalize_exit(decode(ours, at));
            assert_eq!(got.status, want.status, "{at}: exit status");
            assert_eq!(got.headers, want.headers, "{at}: exit headers");
            match (
                serde_json::from_slice::<Json>(&want.body),
                serde_json::from_slice::<Json>(&got.body),
            ) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{at}: exit JSON body"),
                _ => assert_eq!(
                    String::from_utf8_lossy(&got.body),
                    String::from_utf8_lossy(&want.body),
                    "{at}: exit body"
                ),
            }
        }
        "kong_plugin_protocol.KV" => same!(pb::Kv),
        "kong_plugin_protocol.String" => same!(pb::Str),
        "kong_plugin_protocol.Int" => same!(pb::Int),
        "kong_plugin_protocol.Bool" => same!(pb::Bool),
        "kong_plugin_protocol.ByteString" => same!(pb::ByteString),
        "google.protobuf.ListValue" => same!(pb::ListValue),
        other => panic!("{at}: no comparison for {other}"),
    }
}

/// Kong treats a header value `["v"]` like `"v"`; go-pdk always sends lists.
fn normalize_exit(mut exit: pb::ExitArgs) -> pb::ExitArgs {
    if let Some(headers) = &mut exit.headers {
        for v in headers.fields.values_mut() {
            if let Some(pb::ValueKind::ListValue(list)) = &v.kind {
                if let [one] = list.values.as_slice() {
                    *v = one.clone();
                }
            }
        }
    }
    exit
}
