//! Kong's plugin-server wire messages (protocol `ProtoBuf:1`), declared by hand.
//!
//! Kong decodes and encodes these messages with the schema it ships as
//! `kong/include/kong/pluginsocket.proto` (package `kong_plugin_protocol`).
//! Only the wire facts matter: message names (for documentation), field
//! names, numbers and types are Kong's; everything else here is ours.
//!
//! `google.protobuf.Empty` is `()`; `Value`, `Struct` and `ListValue` come
//! from [`prost_types`]. Kong writes `null_value = 1` for a nil `Value`, so
//! readers must not assume the canonical `NULL_VALUE = 0`; prost keeps the
//! raw number, which is what we want.

#![allow(missing_docs)]

pub use prost;
pub use prost_types::{ListValue, Struct, Value, value::Kind as ValueKind};

// ---------------------------------------------------------------- RPC layer

/// `CmdGetPluginNames {}`
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct CmdGetPluginNames {}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CmdGetPluginInfo {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CmdStartInstance {
    #[prost(string, tag = "1")]
    pub name: String,
    /// The plugin's config as JSON (with Kong's extra `__seq__`, `__plugin_id`, … keys).
    #[prost(bytes = "vec", tag = "2")]
    pub config: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct CmdGetInstanceStatus {
    #[prost(int32, tag = "1")]
    pub instance_id: i32,
}

#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct CmdCloseInstance {
    #[prost(int32, tag = "1")]
    pub instance_id: i32,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CmdHandleEvent {
    #[prost(int32, tag = "1")]
    pub instance_id: i32,
    #[prost(string, tag = "2")]
    pub event_name: String,
}

/// What Kong sends to start each RPC.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RpcCall {
    #[prost(int64, tag = "1")]
    pub sequence: i64,
    #[prost(oneof = "rpc_call::Call", tags = "31, 32, 33, 34, 35, 36")]
    pub call: Option<rpc_call::Call>,
}

pub mod rpc_call {
    /// The `call` oneof of `RpcCall`.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Call {
        #[prost(message, tag = "31")]
        CmdGetPluginNames(super::CmdGetPluginNames),
        #[prost(message, tag = "32")]
        CmdGetPluginInfo(super::CmdGetPluginInfo),
        #[prost(message, tag = "33")]
        CmdStartInstance(super::CmdStartInstance),
        #[prost(message, tag = "34")]
        CmdGetInstanceStatus(super::CmdGetInstanceStatus),
        #[prost(message, tag = "35")]
        CmdCloseInstance(super::CmdCloseInstance),
        #[prost(message, tag = "36")]
        CmdHandleEvent(super::CmdHandleEvent),
    }
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct PluginNames {
    #[prost(string, repeated, tag = "1")]
    pub names: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct PluginInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int64, tag = "2")]
    pub updated_at: i64,
    #[prost(int64, tag = "3")]
    pub loaded_at: i64,
    #[prost(string, repeated, tag = "4")]
    pub phases: Vec<String>,
    #[prost(string, tag = "5")]
    pub version: String,
    #[prost(int32, tag = "6")]
    pub priority: i32,
    /// The plugin's Kong schema as JSON.
    #[prost(string, tag = "7")]
    pub schema: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InstanceStatus {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub instance_id: i32,
    #[prost(message, optional, tag = "3")]
    pub config: Option<Value>,
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "4")]
    pub started_at: i64,
}

/// The server's answer that ends each RPC.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RpcReturn {
    #[prost(int64, tag = "1")]
    pub sequence: i64,
    #[prost(oneof = "rpc_return::Return", tags = "31, 32, 33")]
    pub r#return: Option<rpc_return::Return>,
}

pub mod rpc_return {
    /// The `return` oneof of `RpcReturn`.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Return {
        #[prost(message, tag = "31")]
        PluginNames(super::PluginNames),
        #[prost(message, tag = "32")]
        PluginInfo(super::PluginInfo),
        #[prost(message, tag = "33")]
        InstanceStatus(super::InstanceStatus),
    }
}

// ---------------------------------------------------------------- PDK layer

/// A key and a JSON-like value (`set_header`, `ctx.shared.set`, …).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Kv {
    #[prost(string, tag = "1")]
    pub k: String,
    #[prost(message, optional, tag = "2")]
    pub v: Option<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct Bool {
    #[prost(bool, tag = "1")]
    pub v: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct Int {
    #[prost(int32, tag = "1")]
    pub v: i32,
}

#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct Number {
    #[prost(double, tag = "1")]
    pub v: f64,
}

/// Named `String` in Kong's schema.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Str {
    #[prost(string, tag = "1")]
    pub v: String,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ByteString {
    #[prost(bytes = "vec", tag = "1")]
    pub v: Vec<u8>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ExitArgs {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub body: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub headers: Option<Struct>,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ServiceKey {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct CertificateKey {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct RawBodyResult {
    #[prost(oneof = "raw_body_result::Kind", tags = "1, 2, 3")]
    pub kind: Option<raw_body_result::Kind>,
}

pub mod raw_body_result {
    /// The `kind` oneof of `RawBodyResult`.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum Kind {
        #[prost(bytes = "vec", tag = "1")]
        Content(Vec<u8>),
        #[prost(string, tag = "2")]
        BodyFilepath(String),
        #[prost(string, tag = "3")]
        Error(String),
    }
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct UriCapturesResult {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub unnamed: Vec<Vec<u8>>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    pub named: std::collections::BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Route {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int64, tag = "2")]
    pub created_at: i64,
    #[prost(int64, tag = "3")]
    pub updated_at: i64,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, repeated, tag = "5")]
    pub protocols: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub methods: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub hosts: Vec<String>,
    #[prost(string, repeated, tag = "8")]
    pub paths: Vec<String>,
    #[prost(string, repeated, tag = "9")]
    pub headers: Vec<String>,
    #[prost(int32, tag = "10")]
    pub https_redirect_status_code: i32,
    #[prost(int32, tag = "11")]
    pub regex_priority: i32,
    #[prost(bool, tag = "12")]
    pub strip_path: bool,
    #[prost(bool, tag = "13")]
    pub preserve_host: bool,
    #[prost(string, repeated, tag = "14")]
    pub snis: Vec<String>,
    #[prost(string, repeated, tag = "15")]
    pub sources: Vec<String>,
    #[prost(string, repeated, tag = "16")]
    pub destinations: Vec<String>,
    #[prost(string, repeated, tag = "17")]
    pub tags: Vec<String>,
    #[prost(message, optional, tag = "18")]
    pub service: Option<ServiceKey>,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Service {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int64, tag = "2")]
    pub created_at: i64,
    #[prost(int64, tag = "3")]
    pub updated_at: i64,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(int32, tag = "5")]
    pub retries: i32,
    #[prost(string, tag = "6")]
    pub protocol: String,
    #[prost(string, tag = "7")]
    pub host: String,
    #[prost(int32, tag = "8")]
    pub port: i32,
    #[prost(string, tag = "9")]
    pub path: String,
    #[prost(int32, tag = "10")]
    pub connect_timeout: i32,
    #[prost(int32, tag = "11")]
    pub write_timeout: i32,
    #[prost(int32, tag = "12")]
    pub read_timeout: i32,
    #[prost(string, repeated, tag = "13")]
    pub tags: Vec<String>,
    #[prost(message, optional, tag = "14")]
    pub client_certificate: Option<CertificateKey>,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Target {
    #[prost(string, tag = "1")]
    pub host: String,
    #[prost(int32, tag = "2")]
    pub port: i32,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ConsumerSpec {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(bool, tag = "2")]
    pub by_username: bool,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Consumer {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int64, tag = "2")]
    pub created_at: i64,
    #[prost(string, tag = "3")]
    pub username: String,
    #[prost(string, tag = "4")]
    pub custom_id: String,
    #[prost(string, repeated, tag = "5")]
    pub tags: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthenticatedCredential {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub consumer_id: String,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct AuthenticateArgs {
    #[prost(message, optional, tag = "1")]
    pub consumer: Option<Consumer>,
    #[prost(message, optional, tag = "2")]
    pub credential: Option<AuthenticatedCredential>,
}

#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct MemoryStats {
    #[prost(message, optional, tag = "1")]
    pub lua_shared_dicts: Option<memory_stats::LuaSharedDicts>,
    #[prost(message, repeated, tag = "2")]
    pub workers_lua_vms: Vec<memory_stats::WorkerLuaVm>,
}

pub mod memory_stats {
    #[derive(Clone, PartialEq, Eq, ::prost::Message)]
    pub struct LuaSharedDicts {
        #[prost(message, optional, tag = "1")]
        pub kong: Option<lua_shared_dicts::DictStats>,
        #[prost(message, optional, tag = "2")]
        pub kong_db_cache: Option<lua_shared_dicts::DictStats>,
    }

    pub mod lua_shared_dicts {
        #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
        pub struct DictStats {
            #[prost(int64, tag = "1")]
            pub allocated_slabs: i64,
            #[prost(int64, tag = "2")]
            pub capacity: i64,
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
    pub struct WorkerLuaVm {
        #[prost(int64, tag = "1")]
        pub http_allocated_gc: i64,
        #[prost(int64, tag = "2")]
        pub pid: i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_kong_start_instance_in_either_field_order() {
        // RpcCall{sequence=2, cmd_start_instance{name="x", config="{}"}} with
        // the oneof written before and after the sequence, as Kong does.
        let inner = CmdStartInstance {
            name: "x".into(),
            config: b"{}".to_vec(),
        }
        .encode_to_vec();
        let mut call_first = vec![0x8a, 0x02, inner.len() as u8];
        call_first.extend(&inner);
        call_first.extend([0x08, 0x02]);
        let decoded = RpcCall::decode(&call_first[..]).unwrap();
        assert_eq!(decoded.sequence, 2);
        match decoded.call {
            Some(rpc_call::Call::CmdStartInstance(s)) => {
                assert_eq!(s.name, "x");
                assert_eq!(s.config, b"{}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rpc_return_with_sequence_only_matches_kong_bytes() {
        let bytes = RpcReturn {
            sequence: 3,
            r#return: None,
        }
        .encode_to_vec();
        assert_eq!(bytes, hex("0803"));
    }

    #[test]
    fn nil_value_with_kong_null_value_one_decodes() {
        let v = Value::decode(&hex("0801")[..]).unwrap();
        assert_eq!(v.kind, Some(ValueKind::NullValue(1)));
    }
}
