use kong_pdk_proto as pb;

use super::s;
use crate::error::Result;
use crate::kong::Kong;

/// `kong.ip`: Kong's trusted-IP configuration.
#[derive(Debug)]
pub struct Ip<'a> {
    kong: &'a mut Kong,
}

impl<'a> Ip<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Ip { kong }
    }

    /// `kong.ip.is_trusted(address)`: whether `address` is in Kong's
    /// `trusted_ips`. Every phase, including `log`.
    pub async fn is_trusted(self, address: &str) -> Result<bool> {
        let reply: pb::Bool = self
            .kong
            .pdk_call("kong.ip.is_trusted", &s(address))
            .await?;
        Ok(reply.v)
    }
}
