//! The `-dump` document Kong reads to learn about the plugin.

use std::path::Path;

use serde::Serialize;

/// The protocol a server speaks unless its plugin chooses MsgPack:1
/// (`Protocol` in the dump).
pub const PROTOCOL: &str = crate::Protocol::ProtoBuf.as_str();

/// go-pdk's dump format, key for key.
#[derive(Debug, Serialize)]
pub(crate) struct Dump<'a> {
    #[serde(rename = "Protocol")]
    protocol: &'static str,
    #[serde(rename = "SocketPath")]
    socket_path: String,
    #[serde(rename = "Plugins")]
    plugins: [PluginInfo<'a>; 1],
}

#[derive(Debug, Serialize)]
struct PluginInfo<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Phases")]
    phases: Vec<&'static str>,
    #[serde(rename = "Version")]
    version: &'a str,
    #[serde(rename = "Priority")]
    priority: i32,
    #[serde(rename = "Schema")]
    schema: &'a serde_json::Value,
}

impl<'a> Dump<'a> {
    pub(crate) fn new(
        protocol: crate::Protocol,
        name: &'a str,
        version: &'a str,
        priority: i32,
        phases: &[crate::Phase],
        schema: &'a serde_json::Value,
        socket_path: &Path,
    ) -> Self {
        Dump {
            protocol: protocol.as_str(),
            socket_path: socket_path.display().to_string(),
            plugins: [PluginInfo {
                name,
                phases: phases.iter().map(|p| p.as_str()).collect(),
                version,
                priority,
                schema,
            }],
        }
    }
}
