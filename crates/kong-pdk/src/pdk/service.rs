use kong_pdk_proto as pb;

use super::{empty, s};
use crate::error::Result;
use crate::kong::Kong;

/// `kong.service`: where the request is proxied.
#[derive(Debug)]
pub struct Service<'a> {
    kong: &'a mut Kong,
}

impl<'a> Service<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Service { kong }
    }

    /// `kong.service.set_upstream(name)`: proxy to the Kong upstream `name`
    /// (load-balanced targets). `access` only.
    ///
    /// Over ProtoBuf:1 it returns whether Kong found it (Kong's error text
    /// is not passed on). Over MsgPack:1 Kong 3.10 turns the Lua
    /// `nil, err` of an unknown upstream into a bare nil, so that is
    /// [`Error::Kong`](crate::Error::Kong) saying Kong gave no result.
    pub async fn set_upstream(self, name: &str) -> Result<bool> {
        let reply: pb::Bool = self
            .kong
            .pdk_call("kong.service.set_upstream", &s(name))
            .await?;
        Ok(reply.v)
    }

    /// `kong.service.set_target(host, port)`: proxy to this host and port,
    /// bypassing load balancing. `rewrite`, `access`, `preread`.
    pub async fn set_target(self, host: &str, port: u16) -> Result<()> {
        let args = pb::Target {
            host: host.to_owned(),
            port: port.into(),
        };
        empty(self.kong, "kong.service.set_target", &args).await
    }

    /// `kong.service.set_timeouts(connect, write, read)`: the upstream
    /// timeouts of this request, in milliseconds (each 1..=2^31-2).
    /// `access`. **Needs MsgPack:1** (not in Kong's ProtoBuf service).
    pub async fn set_timeouts(self, connect_ms: u32, write_ms: u32, read_ms: u32) -> Result<()> {
        self.kong
            .call("kong.service.set_timeouts", (connect_ms, write_ms, read_ms))
            .await
    }

    /// `kong.service.set_retries(n)`: how often Kong retries a failed
    /// upstream connection for this request (0..=32767). `access`.
    /// **Needs MsgPack:1**.
    pub async fn set_retries(self, retries: u16) -> Result<()> {
        self.kong.call("kong.service.set_retries", (retries,)).await
    }

    /// `kong.service.set_tls_verify(on)`: whether Kong verifies the
    /// upstream's TLS certificate for this request. `rewrite`, `access`,
    /// `balancer`, `preread`. **Needs MsgPack:1**; Kong returns `true` or
    /// `nil, err`, which Kong 3.10 sends as nil: `Ok(false)` here.
    pub async fn set_tls_verify(self, on: bool) -> Result<bool> {
        let ok: Option<bool> = self.kong.call("kong.service.set_tls_verify", (on,)).await?;
        Ok(ok.unwrap_or(false))
    }

    /// `kong.service.set_tls_verify_depth(depth)`: the maximum depth of the
    /// upstream certificate chain Kong accepts. **Needs MsgPack:1**.
    pub async fn set_tls_verify_depth(self, depth: u32) -> Result<bool> {
        let ok: Option<bool> = self
            .kong
            .call("kong.service.set_tls_verify_depth", (depth,))
            .await?;
        Ok(ok.unwrap_or(false))
    }
}
