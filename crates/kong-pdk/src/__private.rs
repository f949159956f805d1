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
