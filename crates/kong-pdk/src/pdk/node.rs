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
}
