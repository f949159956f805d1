//! The typed PDK speaks ProtoBuf messages (the call layer caches, compares
//! and snapshots them); under MsgPack:1 each call is translated at the
//! socket: the ProtoBuf arguments become the Lua function's argument list,
//! and the Lua return value comes back as the ProtoBuf answer the typed
//! function decodes. So every typed function gives the same Rust result
//! over both protocols, and the call layer sits above both.
//!
//! What Kong does with the values: `mp_rpc.lua` calls the Lua PDK function
//! with the `Args` array unpacked and sends its first return value back
//! (absent `Data` for nil; header and query tables as name → array of
//! strings, a flag as an empty array; raw bodies as msgpack bin).

use std::collections::BTreeMap;

use kong_pdk_proto::{self as pb, ValueKind, raw_body_result::Kind as BodyKind};
use prost::Message;
use rmpv::Value as Mp;

use super::map;

/// A call that cannot be translated (bad ProtoBuf from our own PDK, or a
/// method the table does not know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Untranslatable(pub(crate) String);

/// The argument message of a method, as the typed PDK encodes it (the one
/// table of them: the test kit reads it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// `google.protobuf.Empty`.
    Empty,
    /// `String`.
    Str,
    /// `Int`.
    Int,
    /// `Bool`.
    Bool,
    /// `ByteString`.
    Bytes,
    /// `KV`.
    Kv,
    /// `ListValue` (the log functions' arguments).
    List,
    /// `Struct` (header and query tables).
    Struct,
    /// `Target`.
    Target,
    /// `ExitArgs`.
    Exit,
    /// `ConsumerSpec`.
    ConsumerSpec,
    /// `AuthenticateArgs`.
    Authenticate,
}

/// The argument kind of one of Kong's 74 ProtoBuf methods.
pub fn arg_kind(method: &str) -> Option<ArgKind> {
    kinds(method).map(|(args, _)| args)
}

/// The answer message the typed PDK decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Unit,
    Str,
    Int,
    Number,
    Bool,
    Bytes,
    Value,
    MultiMap,
    RawBody,
    UriCaptures,
    Route,
    Service,
    Consumer,
    Credential,
    MemoryStats,
}

/// The 74 methods of Kong's ProtoBuf service: arguments and answer.
fn kinds(method: &str) -> Option<(ArgKind, Answer)> {
    use Answer as O;
    use ArgKind as I;
    Some(match method {
        "kong.client.get_ip"
        | "kong.client.get_forwarded_ip"
        | "kong.request.get_scheme"
        | "kong.request.get_host"
        | "kong.request.get_forwarded_scheme"
        | "kong.request.get_forwarded_host"
        | "kong.request.get_method"
        | "kong.request.get_path"
        | "kong.request.get_path_with_query"
        | "kong.request.get_raw_query"
        | "kong.response.get_source"
        | "kong.log.serialize"
        | "kong.nginx.get_tls1_version_str"
        | "kong.nginx.get_subsystem"
        | "kong.node.get_id" => (I::Empty, O::Str),
        "kong.client.get_port"
        | "kong.client.get_forwarded_port"
        | "kong.request.get_port"
        | "kong.request.get_forwarded_port"
        | "kong.response.get_status"
        | "kong.service.response.get_status" => (I::Empty, O::Int),
        "kong.request.get_http_version" | "kong.nginx.req_start_time" => (I::Empty, O::Number),
        "kong.client.get_credential" => (I::Empty, O::Credential),
        "kong.client.get_consumer" => (I::Empty, O::Consumer),
        "kong.client.load_consumer" => (I::ConsumerSpec, O::Consumer),
        "kong.client.authenticate" => (I::Authenticate, O::Unit),
        "kong.client.get_protocol" => (I::Bool, O::Str),
        "kong.ctx.shared.set" | "kong.nginx.set_ctx" => (I::Kv, O::Unit),
        "kong.ctx.shared.get" | "kong.nginx.get_ctx" => (I::Str, O::Value),
        "kong.ip.is_trusted" | "kong.service.set_upstream" => (I::Str, O::Bool),
        "kong.log.alert" | "kong.log.crit" | "kong.log.err" | "kong.log.warn"
        | "kong.log.notice" | "kong.log.info" | "kong.log.debug" => (I::List, O::Unit),
        "kong.log.set_serialize_value" => (I::Kv, O::Unit),
        "kong.nginx.get_var"
        | "kong.request.get_query_arg"
        | "kong.request.get_header"
        | "kong.response.get_header"
        | "kong.service.response.get_header" => (I::Str, O::Str),
        "kong.node.get_memory_stats" => (I::Empty, O::MemoryStats),
        "kong.request.get_query"
        | "kong.request.get_headers"
        | "kong.response.get_headers"
        | "kong.service.response.get_headers" => (I::Int, O::MultiMap),
        "kong.request.get_raw_body" => (I::Empty, O::RawBody),
        "kong.request.get_uri_captures" => (I::Empty, O::UriCaptures),
        "kong.response.set_status" => (I::Int, O::Unit),
        "kong.response.set_header"
        | "kong.response.add_header"
        | "kong.service.request.set_header"
        | "kong.service.request.add_header" => (I::Kv, O::Unit),
        "kong.response.clear_header"
        | "kong.service.request.set_scheme"
        | "kong.service.request.set_path"
        | "kong.service.request.set_raw_query"
        | "kong.service.request.set_method"
        | "kong.service.request.clear_header" => (I::Str, O::Unit),
        "kong.response.set_headers"
        | "kong.service.request.set_headers"
        | "kong.service.request.set_query" => (I::Struct, O::Unit),
        "kong.response.exit" => (I::Exit, O::Unit),
        "kong.router.get_route" => (I::Empty, O::Route),
        "kong.router.get_service" => (I::Empty, O::Service),
        "kong.service.set_target" => (I::Target, O::Unit),
        "kong.service.request.set_raw_body" => (I::Bytes, O::Unit),
        "kong.service.response.get_raw_body" => (I::Empty, O::Bytes),
        _ => return None,
    })
}

/// Kong's error for a request body nginx buffered to a file.
pub(crate) const BODY_IN_FILE: &str =
    "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'";

/// Whether a nil result means the call failed: the function returns a
/// value on success and `nil, err` on failure, and Kong 3.10's bridge keeps
/// only the nil.
pub(crate) fn nil_is_failure(method: &str) -> bool {
    method == "kong.service.set_upstream"
}

fn bad(method: &str, e: impl std::fmt::Display) -> Untranslatable {
    Untranslatable(format!("{method}: {e}"))
}

/// The Lua argument list for a call the typed PDK encoded as ProtoBuf.
pub(crate) fn args(method: &str, pb_args: &[u8]) -> Result<Vec<Mp>, Untranslatable> {
    let (kind, _) = kinds(method).ok_or_else(|| bad(method, "not a method of Kong's PDK table"))?;
    let e = |err: prost::DecodeError| bad(method, err);
    Ok(match kind {
        ArgKind::Empty => Vec::new(),
        ArgKind::Str => vec![Mp::from(pb::Str::decode(pb_args).map_err(e)?.v)],
        ArgKind::Int => {
            let v = pb::Int::decode(pb_args).map_err(e)?.v;
            // The header and query getters' `max` at its default goes as
            // no argument, so Kong applies its own default (as the Python
            // and JavaScript PDKs call them).
            if matches!(kinds(method), Some((_, Answer::MultiMap)))
                && v == i32::from(crate::pdk::DEFAULT_MAX)
            {
                Vec::new()
            } else {
                vec![Mp::from(v)]
            }
        }
        ArgKind::Bool => vec![Mp::from(pb::Bool::decode(pb_args).map_err(e)?.v)],
        ArgKind::Bytes => vec![Mp::Binary(pb::ByteString::decode(pb_args).map_err(e)?.v)],
        ArgKind::Kv => {
            let kv = pb::Kv::decode(pb_args).map_err(e)?;
            vec![Mp::from(kv.k), kv.v.map_or(Mp::Nil, value_to_mp)]
        }
        ArgKind::List => pb::ListValue::decode(pb_args)
            .map_err(e)?
            .values
            .into_iter()
            .map(value_to_mp)
            .collect(),
        ArgKind::Struct => vec![struct_to_mp(pb::Struct::decode(pb_args).map_err(e)?)],
        ArgKind::Target => {
            let t = pb::Target::decode(pb_args).map_err(e)?;
            vec![Mp::from(t.host), Mp::from(t.port)]
        }
        ArgKind::Exit => {
            let x = pb::ExitArgs::decode(pb_args).map_err(e)?;
            let headers = x.headers.map_or(Mp::Nil, struct_to_mp);
            vec![Mp::from(x.status), Mp::Binary(x.body), headers]
        }
        ArgKind::ConsumerSpec => {
            let c = pb::ConsumerSpec::decode(pb_args).map_err(e)?;
            vec![Mp::from(c.id), Mp::from(c.by_username)]
        }
        ArgKind::Authenticate => {
            let a = pb::AuthenticateArgs::decode(pb_args).map_err(e)?;
            let consumer = a.consumer.map_or(Mp::Nil, |c| {
                map([
                    ("id", Mp::from(c.id)),
                    ("created_at", Mp::from(c.created_at)),
                    ("username", Mp::from(c.username)),
                    ("custom_id", Mp::from(c.custom_id)),
                    (
                        "tags",
                        Mp::Array(c.tags.into_iter().map(Mp::from).collect()),
                    ),
                ])
            });
            let credential = a.credential.map_or(Mp::Nil, |c| {
                map([
                    ("id", Mp::from(c.id)),
                    ("consumer_id", Mp::from(c.consumer_id)),
                ])
            });
            vec![consumer, credential]
        }
    })
}

/// The ProtoBuf answer the typed PDK expects, from the `Data` of Kong's
/// step (`None` when Kong's function returned nil). Takes the value, so a
/// body moves into the answer instead of being copied.
pub(crate) fn answer(method: &str, data: Option<Mp>) -> Result<Vec<u8>, Untranslatable> {
    let (_, kind) = kinds(method).ok_or_else(|| bad(method, "not a method of Kong's PDK table"))?;
    let owned = data.filter(|d| !d.is_nil());
    let data = owned.as_ref();
    Ok(match kind {
        Answer::Unit => Vec::new(),
        Answer::Str => pb::Str {
            v: data.map(text).unwrap_or_default(),
        }
        .encode_to_vec(),
        Answer::Int => pb::Int {
            v: data.and_then(int).unwrap_or(0) as i32,
        }
        .encode_to_vec(),
        Answer::Number => pb::Number {
            v: data.and_then(Mp::as_f64).unwrap_or(0.0),
        }
        .encode_to_vec(),
        Answer::Bool => pb::Bool {
            v: data.and_then(Mp::as_bool).unwrap_or(false),
        }
        .encode_to_vec(),
        Answer::Bytes => pb::ByteString {
            v: owned.map(into_bytes).unwrap_or_default(),
        }
        .encode_to_vec(),
        Answer::Value => data
            .map_or_else(pb::Value::default, mp_to_value)
            .encode_to_vec(),
        Answer::MultiMap => multimap(data).encode_to_vec(),
        Answer::RawBody => pb::RawBodyResult {
            kind: Some(match owned {
                Some(d) => BodyKind::Content(into_bytes(d)),
                // Kong's `get_raw_body()` returns nil only for a body nginx
                // buffered to a file (its error, which the bridge drops).
                None => BodyKind::Error(BODY_IN_FILE.into()),
            }),
        }
        .encode_to_vec(),
        Answer::UriCaptures => {
            let unnamed = field(data, "unnamed")
                .and_then(Mp::as_array)
                .map(|a| a.iter().map(bytes).collect())
                .unwrap_or_default();
            let named = field(data, "named")
                .and_then(Mp::as_map)
                .map(|m| m.iter().map(|(k, v)| (text(k), bytes(v))).collect())
                .unwrap_or_default();
            pb::UriCapturesResult { unnamed, named }.encode_to_vec()
        }
        Answer::Route => pb::Route {
            id: s(data, "id"),
            created_at: i(data, "created_at"),
            updated_at: i(data, "updated_at"),
            name: s(data, "name"),
            protocols: strings(data, "protocols"),
            methods: strings(data, "methods"),
            hosts: strings(data, "hosts"),
            paths: strings(data, "paths"),
            headers: strings(data, "headers"),
            https_redirect_status_code: i(data, "https_redirect_status_code") as i32,
            regex_priority: i(data, "regex_priority") as i32,
            strip_path: b(data, "strip_path"),
            preserve_host: b(data, "preserve_host"),
            snis: strings(data, "snis"),
            sources: strings(data, "sources"),
            destinations: strings(data, "destinations"),
            tags: strings(data, "tags"),
            service: field(data, "service").map(|svc| pb::ServiceKey {
                id: s(Some(svc), "id"),
            }),
        }
        .encode_to_vec(),
        Answer::Service => pb::Service {
            id: s(data, "id"),
            created_at: i(data, "created_at"),
            updated_at: i(data, "updated_at"),
            name: s(data, "name"),
            retries: i(data, "retries") as i32,
            protocol: s(data, "protocol"),
            host: s(data, "host"),
            port: i(data, "port") as i32,
            path: s(data, "path"),
            connect_timeout: i(data, "connect_timeout") as i32,
            write_timeout: i(data, "write_timeout") as i32,
            read_timeout: i(data, "read_timeout") as i32,
            tags: strings(data, "tags"),
            client_certificate: field(data, "client_certificate").map(|c| pb::CertificateKey {
                id: s(Some(c), "id"),
            }),
        }
        .encode_to_vec(),
        Answer::Consumer => pb::Consumer {
            id: s(data, "id"),
            created_at: i(data, "created_at"),
            username: s(data, "username"),
            custom_id: s(data, "custom_id"),
            tags: strings(data, "tags"),
        }
        .encode_to_vec(),
        Answer::Credential => pb::AuthenticatedCredential {
            id: s(data, "id"),
            // A credential entity names its consumer as `consumer = {id}`;
            // the protocol's message has the id.
            consumer_id: field(data, "consumer_id")
                .map(text)
                .or_else(|| field(data, "consumer").map(|c| s(Some(c), "id")))
                .unwrap_or_default(),
        }
        .encode_to_vec(),
        Answer::MemoryStats => {
            let dict = |name: &str| {
                let d = field(field(data, "lua_shared_dicts"), name)?;
                Some(pb::memory_stats::lua_shared_dicts::DictStats {
                    allocated_slabs: i(Some(d), "allocated_slabs"),
                    capacity: i(Some(d), "capacity"),
                })
            };
            pb::MemoryStats {
                lua_shared_dicts: Some(pb::memory_stats::LuaSharedDicts {
                    kong: dict("kong"),
                    kong_db_cache: dict("kong_db_cache"),
                }),
                workers_lua_vms: field(data, "workers_lua_vms")
                    .and_then(Mp::as_array)
                    .map(|ws| {
                        ws.iter()
                            .map(|w| pb::memory_stats::WorkerLuaVm {
                                http_allocated_gc: i(Some(w), "http_allocated_gc"),
                                pid: i(Some(w), "pid"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
            .encode_to_vec()
        }
    })
}

/// `map[key]` of a msgpack map, nil counting as absent.
fn field<'a>(map: Option<&'a Mp>, key: &str) -> Option<&'a Mp> {
    super::get(map?, key).filter(|v| !v.is_nil())
}

fn s(map: Option<&Mp>, key: &str) -> String {
    field(map, key).map(text).unwrap_or_default()
}

fn i(map: Option<&Mp>, key: &str) -> i64 {
    field(map, key).and_then(int).unwrap_or(0)
}

fn b(map: Option<&Mp>, key: &str) -> bool {
    field(map, key).and_then(Mp::as_bool).unwrap_or(false)
}

fn strings(map: Option<&Mp>, key: &str) -> Vec<String> {
    field(map, key)
        .and_then(Mp::as_array)
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

/// A Lua number as an integer (Kong sends integral numbers as integers,
/// others as float64).
fn int(v: &Mp) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        .or_else(|| v.as_f64().map(|f| f as i64))
}

/// A Lua string (msgpack str or bin), a number, or `true` (a query flag)
/// as text; anything else is empty.
fn text(v: &Mp) -> String {
    match v {
        Mp::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Mp::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Mp::Integer(n) => n.to_string(),
        Mp::F32(f) => f.to_string(),
        Mp::F64(f) => f.to_string(),
        // A repeated query argument: Kong's get_query_arg takes the first.
        Mp::Array(a) => a.first().map(text).unwrap_or_default(),
        _ => String::new(),
    }
}

/// [`bytes`], moving a bin or str instead of copying it.
fn into_bytes(v: Mp) -> Vec<u8> {
    match v {
        Mp::Binary(b) => b,
        Mp::String(s) => s.into_bytes(),
        other => bytes(&other),
    }
}

fn bytes(v: &Mp) -> Vec<u8> {
    match v {
        Mp::String(s) => s.as_bytes().to_vec(),
        Mp::Binary(b) => b.clone(),
        other => text(other).into_bytes(),
    }
}

/// A header or query table: name → string, or a list for several values,
/// or `true` for a flag — the shapes Kong's ProtoBuf side sends.
fn multimap(data: Option<&Mp>) -> pb::Struct {
    let mut fields = BTreeMap::new();
    for (k, v) in data.and_then(Mp::as_map).into_iter().flatten() {
        let value = match v {
            Mp::Array(a) if a.is_empty() => ValueKind::BoolValue(true),
            Mp::Array(a) if a.len() == 1 => ValueKind::StringValue(text(&a[0])),
            Mp::Array(a) => ValueKind::ListValue(pb::ListValue {
                values: a
                    .iter()
                    .map(|v| pb::Value {
                        kind: Some(ValueKind::StringValue(text(v))),
                    })
                    .collect(),
            }),
            Mp::Boolean(true) => ValueKind::BoolValue(true),
            other => ValueKind::StringValue(text(other)),
        };
        fields.insert(text(k), pb::Value { kind: Some(value) });
    }
    pb::Struct { fields }
}

/// A ProtoBuf `Value` as the Lua value Kong would have built from it.
fn value_to_mp(v: pb::Value) -> Mp {
    match v.kind {
        None | Some(ValueKind::NullValue(_)) => Mp::Nil,
        Some(ValueKind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                Mp::from(n as i64)
            } else {
                Mp::F64(n)
            }
        }
        Some(ValueKind::StringValue(s)) => Mp::from(s),
        Some(ValueKind::BoolValue(b)) => Mp::Boolean(b),
        Some(ValueKind::StructValue(st)) => struct_to_mp(st),
        Some(ValueKind::ListValue(l)) => Mp::Array(l.values.into_iter().map(value_to_mp).collect()),
    }
}

fn struct_to_mp(st: pb::Struct) -> Mp {
    Mp::Map(
        st.fields
            .into_iter()
            .map(|(k, v)| (Mp::from(k), value_to_mp(v)))
            .collect(),
    )
}

/// A Lua value as a ProtoBuf `Value` (what Kong's ProtoBuf side sends for
/// `ctx.shared.get` and `nginx.get_ctx`).
pub(crate) fn mp_to_value(v: &Mp) -> pb::Value {
    let kind = match v {
        Mp::Nil => ValueKind::NullValue(0),
        Mp::Boolean(b) => ValueKind::BoolValue(*b),
        Mp::Integer(_) | Mp::F32(_) | Mp::F64(_) => {
            ValueKind::NumberValue(v.as_f64().unwrap_or(0.0))
        }
        Mp::String(_) | Mp::Binary(_) => ValueKind::StringValue(text(v)),
        Mp::Array(a) => ValueKind::ListValue(pb::ListValue {
            values: a.iter().map(mp_to_value).collect(),
        }),
        Mp::Map(m) => ValueKind::StructValue(pb::Struct {
            fields: m.iter().map(|(k, v)| (text(k), mp_to_value(v))).collect(),
        }),
        Mp::Ext(..) => ValueKind::NullValue(0),
    };
    pb::Value { kind: Some(kind) }
}

// ------------------------------------------------------------ Kong's side
//
// The inverse, for code that plays Kong (the test kit, kong-pdk-dev): a
// Lua call as the ProtoBuf call the same typed function would have made,
// and a ProtoBuf answer as the Lua value Kong's function returns.

/// The ProtoBuf arguments of a Lua call; `None` for a function outside
/// Kong's ProtoBuf service.
pub(crate) fn lua_args_to_pb(method: &str, args: &[Mp]) -> Option<Vec<u8>> {
    let (kind, answer) = kinds(method)?;
    let arg = |n: usize| args.get(n).filter(|v| !v.is_nil());
    let text_at = |n: usize| arg(n).map(text).unwrap_or_default();
    Some(match kind {
        ArgKind::Empty => Vec::new(),
        ArgKind::Str => pb::Str { v: text_at(0) }.encode_to_vec(),
        ArgKind::Int => {
            let default = if answer == Answer::MultiMap {
                i64::from(crate::pdk::DEFAULT_MAX)
            } else {
                0
            };
            pb::Int {
                v: arg(0).and_then(int).unwrap_or(default) as i32,
            }
            .encode_to_vec()
        }
        ArgKind::Bool => pb::Bool {
            v: arg(0).and_then(Mp::as_bool).unwrap_or(false),
        }
        .encode_to_vec(),
        ArgKind::Bytes => pb::ByteString {
            v: arg(0).map(bytes).unwrap_or_default(),
        }
        .encode_to_vec(),
        ArgKind::Kv => pb::Kv {
            k: text_at(0),
            v: Some(arg(1).map_or(pb::Value { kind: None }, mp_to_value)),
        }
        .encode_to_vec(),
        ArgKind::List => pb::ListValue {
            values: args.iter().map(mp_to_value).collect(),
        }
        .encode_to_vec(),
        ArgKind::Struct => table_to_struct(arg(0)).encode_to_vec(),
        ArgKind::Target => pb::Target {
            host: text_at(0),
            port: arg(1).and_then(int).unwrap_or(0) as i32,
        }
        .encode_to_vec(),
        ArgKind::Exit => pb::ExitArgs {
            status: arg(0).and_then(int).unwrap_or(0) as i32,
            body: arg(1).map(bytes).unwrap_or_default(),
            headers: arg(2).map(|h| table_to_struct(Some(h))),
        }
        .encode_to_vec(),
        ArgKind::ConsumerSpec => pb::ConsumerSpec {
            id: text_at(0),
            by_username: arg(1).and_then(Mp::as_bool).unwrap_or(false),
        }
        .encode_to_vec(),
        ArgKind::Authenticate => pb::AuthenticateArgs {
            consumer: arg(0).map(|c| pb::Consumer {
                id: s(Some(c), "id"),
                created_at: i(Some(c), "created_at"),
                username: s(Some(c), "username"),
                custom_id: s(Some(c), "custom_id"),
                tags: strings(Some(c), "tags"),
            }),
            credential: arg(1).map(|c| pb::AuthenticatedCredential {
                id: s(Some(c), "id"),
                consumer_id: s(Some(c), "consumer_id"),
            }),
        }
        .encode_to_vec(),
    })
}

fn table_to_struct(table: Option<&Mp>) -> pb::Struct {
    match table.map(mp_to_value).and_then(|v| v.kind) {
        Some(ValueKind::StructValue(st)) => st,
        _ => pb::Struct::default(),
    }
}

/// The Lua value Kong's function returns for a ProtoBuf answer (`None`:
/// nil); `None` too for a function outside Kong's ProtoBuf service.
pub(crate) fn pb_answer_to_lua(method: &str, answer: &[u8]) -> Option<Mp> {
    let (_, kind) = kinds(method)?;
    let a = answer;
    let list = |v: &[String]| Mp::Array(v.iter().map(|s| Mp::from(s.as_str())).collect());
    let key = |id: &str| map([("id", Mp::from(id))]);
    Some(match kind {
        Answer::Unit => return None,
        Answer::Str => Mp::from(pb::Str::decode(a).ok()?.v),
        Answer::Int => Mp::from(pb::Int::decode(a).ok()?.v),
        Answer::Number => value_to_mp(pb::Value {
            kind: Some(ValueKind::NumberValue(pb::Number::decode(a).ok()?.v)),
        }),
        Answer::Bool => Mp::Boolean(pb::Bool::decode(a).ok()?.v),
        Answer::Bytes => Mp::Binary(pb::ByteString::decode(a).ok()?.v),
        Answer::Value => match pb::Value::decode(a).ok()?.kind {
            None | Some(ValueKind::NullValue(_)) => return None,
            kind => value_to_mp(pb::Value { kind }),
        },
        Answer::MultiMap => Mp::Map(
            pb::Struct::decode(a)
                .ok()?
                .fields
                .into_iter()
                .map(|(k, v)| {
                    let values = match v.kind {
                        Some(ValueKind::ListValue(l)) => l
                            .values
                            .into_iter()
                            .map(|v| match v.kind {
                                Some(ValueKind::StringValue(s)) => Mp::from(s),
                                _ => Mp::from(""),
                            })
                            .collect(),
                        Some(ValueKind::StringValue(s)) => vec![Mp::from(s)],
                        // A flag (`true`): Kong sends an empty array.
                        _ => Vec::new(),
                    };
                    (Mp::from(k), Mp::Array(values))
                })
                .collect(),
        ),
        Answer::RawBody => match pb::RawBodyResult::decode(a).ok()?.kind {
            Some(BodyKind::Content(body)) => Mp::Binary(body),
            _ => return None,
        },
        Answer::UriCaptures => {
            let c = pb::UriCapturesResult::decode(a).ok()?;
            map([
                (
                    "unnamed",
                    Mp::Array(c.unnamed.into_iter().map(Mp::Binary).collect()),
                ),
                (
                    "named",
                    Mp::Map(
                        c.named
                            .into_iter()
                            .map(|(k, v)| (Mp::from(k), Mp::Binary(v)))
                            .collect(),
                    ),
                ),
            ])
        }
        Answer::Route => {
            let r = pb::Route::decode(a).ok()?;
            map([
                ("id", Mp::from(r.id)),
                ("created_at", Mp::from(r.created_at)),
                ("updated_at", Mp::from(r.updated_at)),
                ("name", Mp::from(r.name)),
                ("protocols", list(&r.protocols)),
                ("methods", list(&r.methods)),
                ("hosts", list(&r.hosts)),
                ("paths", list(&r.paths)),
                ("headers", list(&r.headers)),
                (
                    "https_redirect_status_code",
                    Mp::from(r.https_redirect_status_code),
                ),
                ("regex_priority", Mp::from(r.regex_priority)),
                ("strip_path", Mp::Boolean(r.strip_path)),
                ("preserve_host", Mp::Boolean(r.preserve_host)),
                ("snis", list(&r.snis)),
                ("sources", list(&r.sources)),
                ("destinations", list(&r.destinations)),
                ("tags", list(&r.tags)),
                ("service", r.service.map_or(Mp::Nil, |k| key(&k.id))),
            ])
        }
        Answer::Service => {
            let v = pb::Service::decode(a).ok()?;
            map([
                ("id", Mp::from(v.id)),
                ("created_at", Mp::from(v.created_at)),
                ("updated_at", Mp::from(v.updated_at)),
                ("name", Mp::from(v.name)),
                ("retries", Mp::from(v.retries)),
                ("protocol", Mp::from(v.protocol)),
                ("host", Mp::from(v.host)),
                ("port", Mp::from(v.port)),
                ("path", Mp::from(v.path)),
                ("connect_timeout", Mp::from(v.connect_timeout)),
                ("write_timeout", Mp::from(v.write_timeout)),
                ("read_timeout", Mp::from(v.read_timeout)),
                ("tags", list(&v.tags)),
                (
                    "client_certificate",
                    v.client_certificate.map_or(Mp::Nil, |k| key(&k.id)),
                ),
            ])
        }
        Answer::Consumer => {
            let c = pb::Consumer::decode(a).ok()?;
            if c.id.is_empty() {
                return None;
            }
            map([
                ("id", Mp::from(c.id)),
                ("created_at", Mp::from(c.created_at)),
                ("username", Mp::from(c.username)),
                ("custom_id", Mp::from(c.custom_id)),
                ("tags", list(&c.tags)),
            ])
        }
        Answer::Credential => {
            let c = pb::AuthenticatedCredential::decode(a).ok()?;
            if c.id.is_empty() {
                return None;
            }
            map([
                ("id", Mp::from(c.id)),
                ("consumer_id", Mp::from(c.consumer_id)),
            ])
        }
        Answer::MemoryStats => {
            let m = pb::MemoryStats::decode(a).ok()?;
            let dicts = m.lua_shared_dicts.unwrap_or_default();
            let dict = |d: pb::memory_stats::lua_shared_dicts::DictStats| {
                map([
                    ("allocated_slabs", Mp::from(d.allocated_slabs)),
                    ("capacity", Mp::from(d.capacity)),
                ])
            };
            let mut named = Vec::new();
            if let Some(d) = dicts.kong {
                named.push((Mp::from("kong"), dict(d)));
            }
            if let Some(d) = dicts.kong_db_cache {
                named.push((Mp::from("kong_db_cache"), dict(d)));
            }
            map([
                ("lua_shared_dicts", Mp::Map(named)),
                (
                    "workers_lua_vms",
                    Mp::Array(
                        m.workers_lua_vms
                            .into_iter()
                            .map(|w| {
                                map([
                                    ("http_allocated_gc", Mp::from(w.http_allocated_gc)),
                                    ("pid", Mp::from(w.pid)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb<M: Message>(m: M) -> Vec<u8> {
        m.encode_to_vec()
    }

    #[test]
    fn arguments_become_the_lua_argument_list() {
        assert_eq!(
            args("kong.request.get_path", &[]).unwrap(),
            Vec::<Mp>::new()
        );
        assert_eq!(
            args("kong.request.get_header", &pb(pb::Str { v: "host".into() })).unwrap(),
            [Mp::from("host")]
        );
        let kv = pb::Kv {
            k: "x".into(),
            v: Some(pb::Value {
                kind: Some(ValueKind::StringValue("1".into())),
            }),
        };
        assert_eq!(
            args("kong.response.set_header", &pb(kv)).unwrap(),
            [Mp::from("x"), Mp::from("1")]
        );
        let exit = pb::ExitArgs {
            status: 403,
            body: b"no".to_vec(),
            headers: Some(crate::value::header_struct([("X-A", "1"), ("X-A", "2")])),
        };
        assert_eq!(
            args("kong.response.exit", &pb(exit)).unwrap(),
            [
                Mp::from(403),
                Mp::Binary(b"no".to_vec()),
                map([("X-A", Mp::Array(vec![Mp::from("1"), Mp::from("2")]))])
            ]
        );
        let log = pb::ListValue {
            values: vec![
                crate::value::string("n="),
                crate::value::from_json(3.into()),
            ],
        };
        assert_eq!(
            args("kong.log.notice", &pb(log)).unwrap(),
            [Mp::from("n="), Mp::from(3)]
        );
        assert!(args("kong.request.no_such_function", &[]).is_err());
    }

    #[test]
    fn kongs_side_is_the_inverse_for_every_method() {
        // Each method's arguments and answer, from Kong's side to ours and
        // back, must come out as they went in.
        let sample_args = |method: &str| -> Vec<Mp> {
            match kinds(method).unwrap().0 {
                ArgKind::Empty => vec![],
                ArgKind::Str => vec![Mp::from("x")],
                ArgKind::Int => vec![Mp::from(7)],
                ArgKind::Bool => vec![Mp::Boolean(true)],
                ArgKind::Bytes => vec![Mp::Binary(vec![0, 0xff])],
                ArgKind::Kv => vec![Mp::from("k"), map([("a", Mp::Array(vec![Mp::from(1)]))])],
                ArgKind::List => vec![Mp::from("n="), Mp::from(3), Mp::Boolean(true)],
                ArgKind::Struct => vec![map([
                    ("a", Mp::from("1")),
                    ("b", Mp::Array(vec![Mp::from("x"), Mp::from("y")])),
                ])],
                ArgKind::Target => vec![Mp::from("h"), Mp::from(443)],
                ArgKind::Exit => vec![
                    Mp::from(403),
                    Mp::Binary(b"no".to_vec()),
                    map([("X-A", Mp::from("1"))]),
                ],
                ArgKind::ConsumerSpec => vec![Mp::from("ann"), Mp::Boolean(true)],
                ArgKind::Authenticate => vec![
                    map([
                        ("id", Mp::from("c")),
                        ("created_at", Mp::from(1)),
                        ("username", Mp::from("u")),
                        ("custom_id", Mp::from("")),
                        ("tags", Mp::Array(vec![])),
                    ]),
                    map([("id", Mp::from("k")), ("consumer_id", Mp::from("c"))]),
                ],
            }
        };
        for method in METHODS {
            let args_in = sample_args(method);
            let pb_args = lua_args_to_pb(method, &args_in).unwrap();
            assert_eq!(
                args(method, &pb_args).unwrap(),
                args_in,
                "{method} arguments"
            );
            // Answers: ours → Kong's Lua value → ours.
            let lua = pb_answer_to_lua(method, &answer(method, None).unwrap());
            let again = answer(method, lua).unwrap();
            assert_eq!(
                again,
                answer(method, None).unwrap(),
                "{method} empty answer"
            );
        }
    }

    /// The 74 methods, for the round trip.
    const METHODS: [&str; 74] = [
        "kong.client.get_ip",
        "kong.client.get_forwarded_ip",
        "kong.client.get_port",
        "kong.client.get_forwarded_port",
        "kong.client.get_credential",
        "kong.client.load_consumer",
        "kong.client.get_consumer",
        "kong.client.authenticate",
        "kong.client.get_protocol",
        "kong.ctx.shared.set",
        "kong.ctx.shared.get",
        "kong.ip.is_trusted",
        "kong.log.alert",
        "kong.log.crit",
        "kong.log.err",
        "kong.log.warn",
        "kong.log.notice",
        "kong.log.info",
        "kong.log.debug",
        "kong.log.set_serialize_value",
        "kong.log.serialize",
        "kong.nginx.get_var",
        "kong.nginx.get_tls1_version_str",
        "kong.nginx.set_ctx",
        "kong.nginx.get_ctx",
        "kong.nginx.req_start_time",
        "kong.nginx.get_subsystem",
        "kong.node.get_id",
        "kong.node.get_memory_stats",
        "kong.request.get_scheme",
        "kong.request.get_host",
        "kong.request.get_port",
        "kong.request.get_forwarded_scheme",
        "kong.request.get_forwarded_host",
        "kong.request.get_forwarded_port",
        "kong.request.get_http_version",
        "kong.request.get_method",
        "kong.request.get_path",
        "kong.request.get_path_with_query",
        "kong.request.get_raw_query",
        "kong.request.get_query_arg",
        "kong.request.get_query",
        "kong.request.get_header",
        "kong.request.get_headers",
        "kong.request.get_raw_body",
        "kong.request.get_uri_captures",
        "kong.response.get_status",
        "kong.response.get_header",
        "kong.response.get_headers",
        "kong.response.get_source",
        "kong.response.set_status",
        "kong.response.set_header",
        "kong.response.add_header",
        "kong.response.clear_header",
        "kong.response.set_headers",
        "kong.response.exit",
        "kong.router.get_route",
        "kong.router.get_service",
        "kong.service.set_upstream",
        "kong.service.set_target",
        "kong.service.request.set_scheme",
        "kong.service.request.set_path",
        "kong.service.request.set_raw_query",
        "kong.service.request.set_method",
        "kong.service.request.set_query",
        "kong.service.request.set_header",
        "kong.service.request.add_header",
        "kong.service.request.clear_header",
        "kong.service.request.set_headers",
        "kong.service.request.set_raw_body",
        "kong.service.response.get_status",
        "kong.service.response.get_header",
        "kong.service.response.get_headers",
        "kong.service.response.get_raw_body",
    ];

    #[test]
    fn answers_become_the_protobuf_the_typed_pdk_reads() {
        let s = |v: &[u8]| pb::Str::decode(v).unwrap().v;
        assert_eq!(
            s(&answer("kong.request.get_header", Some(Mp::from("h"))).unwrap()),
            "h"
        );
        assert_eq!(s(&answer("kong.request.get_header", None).unwrap()), "");
        assert_eq!(
            s(&answer("kong.request.get_query_arg", Some(Mp::from(true))).unwrap()),
            ""
        );
        let n =
            pb::Int::decode(&answer("kong.response.get_status", Some(Mp::from(403))).unwrap()[..])
                .unwrap();
        assert_eq!(n.v, 403);
        // Kong's multimap: every value an array; a flag an empty array.
        let mm = Mp::Map(vec![
            (Mp::from("a"), Mp::Array(vec![Mp::from("1"), Mp::from("2")])),
            (Mp::from("flag"), Mp::Array(vec![])),
            (Mp::from("host"), Mp::Array(vec![Mp::from("h")])),
        ]);
        let st =
            pb::Struct::decode(&answer("kong.request.get_query", Some(mm)).unwrap()[..]).unwrap();
        assert_eq!(
            st.fields["host"].kind,
            Some(ValueKind::StringValue("h".into()))
        );
        assert_eq!(st.fields["flag"].kind, Some(ValueKind::BoolValue(true)));
        assert!(
            matches!(st.fields["a"].kind, Some(ValueKind::ListValue(ref l)) if l.values.len() == 2)
        );
        let body = pb::RawBodyResult::decode(
            &answer("kong.request.get_raw_body", Some(Mp::Binary(vec![0, 0xff]))).unwrap()[..],
        )
        .unwrap();
        assert_eq!(body.kind, Some(BodyKind::Content(vec![0, 0xff])));
        let cred = map([
            ("id", Mp::from("k")),
            ("consumer", map([("id", Mp::from("c"))])),
        ]);
        let cred = pb::AuthenticatedCredential::decode(
            &answer("kong.client.get_credential", Some(cred)).unwrap()[..],
        )
        .unwrap();
        assert_eq!((cred.id.as_str(), cred.consumer_id.as_str()), ("k", "c"));
    }
}
