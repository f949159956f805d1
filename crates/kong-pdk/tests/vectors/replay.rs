//! Replays a recorded Kong ⇄ plugin-server exchange against our server.
//!
//! [`replay`] (call layer off): Kong's frames are written exactly as
//! recorded; each frame the recording shows the plugin sending is read from
//! our server and compared: method and end frames byte for byte, messages
//! after decoding (maps are unordered, `InstanceStatus.started_at` is
//! ignored).
//!
//! [`replay_semantic`] (call layer on): the server may make fewer calls, so
//! during an event the recording plays Kong as an oracle: each read is
//! answered with Kong's recorded answer to the same call, a read the
//! recording does not hold fails the test, and the event must end the same
//! way (same `RpcReturn`, same exit, same refused call) with the same
//! writes: header writes folded into the final header tables, every other
//! write in the same order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kong_pdk::Plugin;
use kong_pdk::server::Server;
use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, TestServer};
use prost::Message;
use serde_json::Value as Json;

use crate::recordings::hex;

/// Where the recordings live: `KONG_VECTORS_DIR` if set, else the copy
/// kept beside this file (`recordings/`, from the team's
/// `shared/kong/vectors`; its README says how they were captured).
pub(crate) fn vectors_dir() -> PathBuf {
    crate::recordings::dir("KONG_VECTORS_DIR", "vectors/recordings")
}

pub(crate) fn load(scenario: &str) -> Json {
    crate::recordings::load(&vectors_dir(), scenario)
}

/// Starts plugin `P` in-process under `name`, as the recording's server,
/// with the call layer on or off.
pub(crate) async fn start<P: Plugin>(
    name: &str,
    version: &str,
    priority: i32,
    call_layer: bool,
) -> TestServer {
    TestServer::start(
        Server::<P>::new(version, priority)
            .name(name)
            .call_layer(call_layer),
    )
    .await
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

/// One PDK call of a recorded event: Kong's answer, or `None` when Kong
/// answered nothing (an exit, or a call Kong refused by closing).
struct RecordedCall {
    method: String,
    args: Vec<u8>,
    reply: Option<Vec<u8>>,
    used: bool,
}

/// A recorded event: its calls, then how it ended.
struct RecordedEvent {
    calls: Vec<RecordedCall>,
    /// The plugin's `RpcReturn` frame, when the event ended normally.
    end: Option<Vec<u8>>,
    /// The plugin server closed the connection (e.g. an unknown instance).
    server_closed: bool,
}

/// Replays `scenario` with the call layer on (see the module docs).
pub(crate) async fn replay_semantic(server: &TestServer, scenario: &str) {
    let recording = load(scenario);
    let connections = recording["connections"].as_array().expect("connections");
    for (index, entries) in connections.iter().enumerate() {
        let entries = entries.as_array().unwrap();
        if entries.iter().all(|e| e.get("event").is_some()) {
            continue;
        }
        let mut conn = server.connect().await;
        let mut n = 0;
        while n < entries.len() {
            let entry = &entries[n];
            let at = format!("{scenario} connection {} entry {n} (semantic)", index + 1);
            let is_event = entry["decoded"]["value"].get("cmd_handle_event").is_some();
            if !is_event {
                step(&mut conn, entry, &at).await;
                n += 1;
                continue;
            }
            conn.write_frame(&hex(entry["hex"].as_str().unwrap()))
                .await
                .unwrap();
            let (event, next) = recorded_event(entries, n + 1);
            let closed = play_event(&mut conn, event, &at).await;
            n = next;
            if closed {
                // Kong closed the connection (exit or refusal): the rest of
                // the recording for it is that close.
                break;
            }
        }
    }
}

/// The PDK calls and the end of the event whose `RpcCall` is at `from - 1`;
/// also the index after the event.
fn recorded_event(entries: &[Json], from: usize) -> (RecordedEvent, usize) {
    let mut calls: Vec<RecordedCall> = Vec::new();
    let mut n = from;
    let mut end = None;
    let mut server_closed = false;
    while n < entries.len() {
        let e = &entries[n];
        n += 1;
        if e.get("event").is_some() {
            server_closed = e["dir"] == "plugin_to_kong";
            break;
        }
        let bytes = hex(e["hex"].as_str().unwrap());
        match e["decoded"]["kind"].as_str().unwrap() {
            "pdk_method" => calls.push(RecordedCall {
                method: String::from_utf8(bytes).unwrap(),
                args: Vec::new(),
                reply: None,
                used: false,
            }),
            "pdk_args" => calls.last_mut().unwrap().args = bytes,
            "pdk_reply" => calls.last_mut().unwrap().reply = Some(bytes),
            "pdk_end" => {}
            "rpc_return" => {
                end = Some(bytes);
                break;
            }
            other => panic!("unexpected {other} inside an event"),
        }
    }
    (
        RecordedEvent {
            calls,
            end,
            server_closed,
        },
        n,
    )
}

fn is_read(method: &str) -> bool {
    let function = method.rsplit('.').next().unwrap_or_default();
    function.starts_with("get_")
        || matches!(
            function,
            "serialize" | "is_trusted" | "req_start_time" | "load_consumer"
        )
}

/// Plays Kong for one event; returns whether the connection was closed.
async fn play_event(conn: &mut Connection, mut event: RecordedEvent, at: &str) -> bool {
    let wait = Duration::from_secs(5);
    let mut ours: Vec<(String, Vec<u8>)> = Vec::new();
    let recorded: Vec<(String, Vec<u8>)> = event
        .calls
        .iter()
        .filter(|c| !is_read(&c.method) && c.method != "kong.response.exit")
        .map(|c| (c.method.clone(), c.args.clone()))
        .collect();
    let closed = loop {
        let read = tokio::time::timeout(wait, conn.read_frame())
            .await
            .unwrap_or_else(|_| panic!("{at}: no frame from the server"));
        let Some(method) = read.unwrap() else {
            assert!(event.server_closed, "{at}: the server closed mid-event");
            break true;
        };
        if method.is_empty() {
            let ours_end = conn.read_frame().await.unwrap().unwrap();
            let want = event
                .end
                .as_deref()
                .unwrap_or_else(|| panic!("{at}: our event ended, the recorded one did not"));
            compare_message("kong_plugin_protocol.RpcReturn", want, &ours_end, at);
            break false;
        }
        let method = String::from_utf8(method).unwrap();
        let args = conn.read_frame().await.unwrap().unwrap();
        let at = format!("{at}: {method}");
        if method == "kong.response.exit" {
            let exit = event
                .calls
                .iter()
                .find(|c| c.method == method)
                .unwrap_or_else(|| panic!("{at}: exit not in the recording"));
            compare_message("kong_plugin_protocol.ExitArgs", &exit.args, &args, &at);
            conn.close();
            break true;
        }
        let same = |c: &&mut RecordedCall| c.method == method && c.args == args;
        let found = match event.calls.iter_mut().find(|c| !c.used && same(c)) {
            Some(c) => Some(c),
            None => event.calls.iter_mut().rev().find(same),
        };
        let reply = match found {
            Some(call) => {
                call.used = true;
                call.reply.clone()
            }
            None if is_read(&method) => panic!("{at}: a read the recording cannot answer"),
            // A coalesced write: Kong answers writes with nothing.
            None => Some(Vec::new()),
        };
        if !is_read(&method) {
            ours.push((method.clone(), args));
        }
        match reply {
            Some(bytes) => conn.write_frame(&bytes).await.unwrap(),
            None => {
                // Kong refused this call: it closes the connection.
                conn.close();
                break true;
            }
        }
    };
    assert_eq!(
        WriteState::of(&ours),
        WriteState::of(&recorded),
        "{at}: the writes reach a different state"
    );
    closed
}

/// What the writes of an event leave behind: the final header tables, and
/// every other write in order.
#[derive(Debug, Default, PartialEq)]
struct WriteState {
    response_headers: BTreeMap<String, Vec<String>>,
    upstream_headers: BTreeMap<String, Vec<String>>,
    others: Vec<(String, Vec<u8>)>,
}

impl WriteState {
    fn of(writes: &[(String, Vec<u8>)]) -> WriteState {
        let mut state = WriteState::default();
        for (method, args) in writes {
            let (table, function) = match method.rsplit_once('.') {
                Some(("kong.response", f)) => (&mut state.response_headers, f),
                Some(("kong.service.request", f)) => (&mut state.upstream_headers, f),
                _ => {
                    state.others.push((method.clone(), args.clone()));
                    continue;
                }
            };
            match function {
                "set_header" => {
                    let kv: pb::Kv = decode(args, method);
                    table.insert(kv.k.to_ascii_lowercase(), header_values(kv.v));
                }
                "set_headers" => {
                    let st: pb::Struct = decode(args, method);
                    for (k, v) in st.fields {
                        table.insert(k.to_ascii_lowercase(), header_values(Some(v)));
                    }
                }
                _ => state.others.push((method.clone(), args.clone())),
            }
        }
        state
    }
}

fn header_values(v: Option<pb::Value>) -> Vec<String> {
    match v.and_then(|v| v.kind) {
        Some(pb::ValueKind::StringValue(s)) => vec![s],
        Some(pb::ValueKind::ListValue(l)) => l
            .values
            .into_iter()
            .filter_map(|v| match v.kind {
                Some(pb::ValueKind::StringValue(s)) => Some(s),
                _ => None,
            })
            .collect(),
        other => panic!("a header value that is not text: {other:?}"),
    }
}
