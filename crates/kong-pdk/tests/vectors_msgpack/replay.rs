//! Replays a recorded Kong ⇄ Python-PDK exchange (MsgPack:1) against our
//! server: Kong's messages are written as recorded, and every message the
//! recording shows the plugin sending is read from our server and compared
//! after decoding, since msgpack maps are unordered and encodings of equal
//! values vary (str8 vs str16, str vs bin for Lua strings).
//!
//! What may differ, and why: the instance `Id` and `EventId` are the
//! server's choice (Kong echoes them; ours are mapped and substituted into
//! Kong's later messages), `StartTime` is a clock, and the value of an
//! `x-python-pid` header is a pid.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rmpv::Value as Mp;
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::recordings::hex;

/// The recordings: `KONG_MSGPACK_VECTORS_DIR` if set, else the copy beside
/// this file (from the team's `shared/kong/vectors-msgpack`; its README
/// says how they were captured).
pub(crate) fn load(scenario: &str) -> Json {
    let dir = crate::recordings::dir("KONG_MSGPACK_VECTORS_DIR", "vectors_msgpack/recordings");
    crate::recordings::load(&dir, scenario)
}

fn decode(bytes: &[u8]) -> Mp {
    rmpv::decode::read_value(&mut &bytes[..]).expect("one msgpack value")
}

fn encode(v: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

/// Ids the recording's server chose → ours, learned from the replies.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    instance: BTreeMap<u64, u64>,
    event: BTreeMap<u64, u64>,
}

/// Replays every connection of `scenario`; returns the connections, still
/// open, for the caller to go on with.
pub(crate) async fn replay(socket: &Path, scenario: &str, ids: &mut Ids) -> Vec<UnixStream> {
    let recording = load(scenario);
    let mut open = Vec::new();
    for (index, entries) in recording["connections"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let mut conn = UnixStream::connect(socket).await.expect("connect");
        let mut buf = Vec::new();
        for (n, entry) in entries.as_array().unwrap().iter().enumerate() {
            let at = format!("{scenario} connection {index} entry {n}");
            let Some(bytes) = entry["hex"].as_str().map(hex) else {
                continue; // a close
            };
            if entry["dir"] == "kong_to_plugin" {
                conn.write_all(&kong_message(&bytes, ids)).await.unwrap();
            } else {
                let ours = read(&mut conn, &mut buf, &at).await;
                let recorded = decode(&bytes);
                learn(&recorded, &ours, ids);
                if let Err(diff) = same(&ours, &recorded, "") {
                    panic!("{at}: {diff}\n ours:     {ours}\n recorded: {recorded}");
                }
            }
        }
        open.push(conn);
    }
    open
}

/// Kong's message as recorded, with the ids it echoes replaced by ours.
fn kong_message(bytes: &[u8], ids: &Ids) -> Vec<u8> {
    let mut message = decode(bytes);
    let mut changed = false;
    let params = match &mut message {
        Mp::Array(m) => match m.get_mut(3) {
            Some(Mp::Array(p)) => p.get_mut(0),
            _ => None,
        },
        _ => None,
    };
    if let Some(Mp::Map(params)) = params {
        for (k, v) in params.iter_mut() {
            let table = match k.as_str() {
                Some("InstanceId") => &ids.instance,
                Some("EventId") => &ids.event,
                _ => continue,
            };
            if let Some(ours) = v.as_u64().and_then(|r| table.get(&r)) {
                if v.as_u64() != Some(*ours) {
                    *v = Mp::from(*ours);
                    changed = true;
                }
            }
        }
    }
    // Unchanged messages go byte for byte.
    if changed {
        encode(&message)
    } else {
        bytes.to_vec()
    }
}

fn result_of(reply: &Mp) -> Option<&Mp> {
    reply.as_array()?.get(3)
}

fn get<'a>(map: &'a Mp, key: &str) -> Option<&'a Mp> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn learn(recorded: &Mp, ours: &Mp, ids: &mut Ids) {
    let (Some(r), Some(o)) = (result_of(recorded), result_of(ours)) else {
        return;
    };
    for (key, table) in [("Id", &mut ids.instance), ("EventId", &mut ids.event)] {
        if let (Some(r), Some(o)) = (
            get(r, key).and_then(Mp::as_u64),
            get(o, key).and_then(Mp::as_u64),
        ) {
            table.insert(r, o);
        }
    }
}

/// Reads one whole message from our server (5 s at most).
pub(crate) async fn read(conn: &mut UnixStream, buf: &mut Vec<u8>, at: &str) -> Mp {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if !buf.is_empty() {
            let mut slice = &buf[..];
            if let Ok(v) = rmpv::decode::read_value(&mut slice) {
                let used = buf.len() - slice.len();
                buf.drain(..used);
                return v;
            }
        }
        let mut chunk = [0u8; 65536];
        let n = tokio::time::timeout_at(deadline, conn.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{at}: no message from our server within 5 s"))
            .expect("read");
        assert!(n > 0, "{at}: our server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether our message equals the recorded one, up to what may differ.
fn same(ours: &Mp, recorded: &Mp, path: &str) -> Result<(), String> {
    let bytes = |v: &Mp| match v {
        Mp::String(s) => Some(s.as_bytes().to_vec()),
        Mp::Binary(b) => Some(b.clone()),
        _ => None,
    };
    match (ours, recorded) {
        (Mp::Map(o), Mp::Map(r)) => {
            let keys = |m: &Vec<(Mp, Mp)>| {
                let mut k: Vec<String> = m
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .filter(|k| k != "\"StartTime\"")
                    .collect();
                k.sort();
                k
            };
            if keys(o) != keys(r) {
                return Err(format!("{path}: keys {:?} vs {:?}", keys(o), keys(r)));
            }
            for (k, rv) in r {
                let name = k.as_str().unwrap_or_default();
                if matches!(name, "StartTime" | "Id" | "EventId") {
                    continue; // clocks and the server's ids (mapped)
                }
                let ov = &o.iter().find(|(ok, _)| ok == k).unwrap().1;
                same(ov, rv, &format!("{path}.{name}"))?;
            }
            Ok(())
        }
        (Mp::Array(o), Mp::Array(r)) => {
            if o.len() != r.len() {
                return Err(format!("{path}: {} elements vs {}", o.len(), r.len()));
            }
            // A pid in a header value.
            if let [Mp::String(name), _] = r.as_slice() {
                if name.as_str() == Some("x-python-pid") {
                    return same(&o[0], &r[0], path);
                }
            }
            for (i, (ov, rv)) in o.iter().zip(r).enumerate() {
                same(ov, rv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => match (bytes(ours), bytes(recorded)) {
            (Some(a), Some(b)) if a == b => Ok(()),
            (Some(_), Some(_)) => Err(format!("{path}: {ours} vs {recorded}")),
            _ if ours.as_f64().is_some() && ours.as_f64() == recorded.as_f64() => Ok(()),
            _ if ours == recorded => Ok(()),
            _ => Err(format!("{path}: {ours} vs {recorded}")),
        },
    }
}
