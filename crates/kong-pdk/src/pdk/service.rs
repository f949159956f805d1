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
    /// (load-balanced targets). Returns whether Kong found it (Kong's error
    /// text is not passed on). `access` only.
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
}
