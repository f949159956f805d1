use kong_pdk_proto as pb;

use super::string;
use crate::entities::MemoryStats;
use crate::error::Result;
use crate::kong::Kong;

/// `kong.node`: the Kong node.
#[derive(Debug)]
pub struct Node<'a> {
    kong: &'a mut Kong,
}

impl<'a> Node<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Node { kong }
    }

    /// `kong.node.get_id()`: the node's UUID. Every phase.
    pub async fn get_id(self) -> Result<String> {
        string(self.kong, "kong.node.get_id", &()).await
    }

    /// `kong.node.get_memory_stats()`: bytes used by the `kong` and
    /// `kong_db_cache` shared dictionaries and by each worker's Lua VM.
    /// Every phase.
    pub async fn get_memory_stats(self) -> Result<MemoryStats> {
        let m: pb::MemoryStats = self
            .kong
            .pdk_call("kong.node.get_memory_stats", &())
            .await?;
        Ok(m.into())
    }

    /// `kong.node.get_memory_stats(unit, scale)`: the same figures as text
    /// in `unit` (`"b"`, `"k"`, `"m"`, `"g"`) with `scale` decimals, e.g.
    /// `"40.00 KiB"`, for every shared dictionary (not only the two the
    /// ProtoBuf message carries). **Needs MsgPack:1**.
    pub async fn get_memory_stats_scaled(self, unit: &str, scale: u8) -> Result<ScaledMemoryStats> {
        let stats: Option<ScaledMemoryStats> = self
            .kong
            .call("kong.node.get_memory_stats", (unit, scale))
            .await?;
        Ok(stats.unwrap_or_default())
    }

    /// `kong.node.get_hostname()`: the node's host name. **Needs MsgPack:1**.
    pub async fn get_hostname(self) -> Result<String> {
        let name: Option<String> = self.kong.call("kong.node.get_hostname", ()).await?;
        Ok(name.unwrap_or_default())
    }
}

/// [`Node::get_memory_stats_scaled`]: Kong's memory figures as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ScaledMemoryStats {
    /// Every shared dictionary by name.
    pub lua_shared_dicts: std::collections::BTreeMap<String, ScaledDictStats>,
    /// Per worker.
    pub workers_lua_vms: Vec<ScaledWorkerMemory>,
}

/// One shared dictionary's use, as text (`"40.0 KiB"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ScaledDictStats {
    /// Allocated.
    pub allocated_slabs: String,
    /// Capacity.
    pub capacity: String,
}

/// One worker's Lua VM, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ScaledWorkerMemory {
    /// Allocated by the Lua GC.
    pub http_allocated_gc: String,
    /// The worker's pid.
    pub pid: i64,
}
