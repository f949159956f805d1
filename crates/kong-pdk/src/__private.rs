//! Internals exposed for the fuzz targets and benchmarks. Not a public API:
//! anything here may change without notice.

use tokio::net::UnixStream;

use crate::plugin::Plugin;
use crate::server::Server;

use kong_pdk_proto::Value;

/// JSON → Kong's `Value`.
pub fn value_from_json(json: serde_json::Value) -> Value {
    crate::value::from_json(json)
}

/// Kong's `Value` → JSON.
pub fn value_to_json(value: Value) -> serde_json::Value {
    crate::value::to_json(value)
}

/// Decodes Kong's instance config JSON the way `cmd_start_instance` does.
pub fn decode_config<P: Plugin>(server: Server<P>, config: &[u8]) -> Result<(i64, P), String> {
    server.shared().decode_config(config)
}

/// Serves one already-connected Kong connection until it ends.
pub async fn serve_connection<P: Plugin>(server: Server<P>, stream: UnixStream) {
    server.serve_connection(stream).await;
}

/// Under MsgPack:1, the ProtoBuf arguments the typed PDK would have sent
/// for a Lua call (`None`: not one of Kong's 74 ProtoBuf methods).
pub fn msgpack_args_to_pb(method: &str, args: &[rmpv::Value]) -> Option<Vec<u8>> {
    crate::msgpack::translate::lua_args_to_pb(method, args)
}

/// Under MsgPack:1, the Lua value Kong's function returns for a ProtoBuf
/// answer (`None`: nil, or not one of the 74 methods).
pub fn pb_answer_to_msgpack(method: &str, answer: &[u8]) -> Option<rmpv::Value> {
    crate::msgpack::translate::pb_answer_to_lua(method, answer)
}

/// The argument message of a ProtoBuf method, by method name.
pub use crate::msgpack::translate::{ArgKind, arg_kind};
