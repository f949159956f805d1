use kong_pdk_proto as pb;

use crate::entities::{Route, Service};
use crate::error::Result;
use crate::kong::Kong;

/// `kong.router`: what the request matched.
#[derive(Debug)]
pub struct Router<'a> {
    kong: &'a mut Kong,
}

impl<'a> Router<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Router { kong }
    }

    /// `kong.router.get_route()`: the matched route; an empty `id` when none.
    /// `access`, `response`, `log`.
    pub async fn get_route(self) -> Result<Route> {
        let r: pb::Route = self.kong.pdk_call("kong.router.get_route", &()).await?;
        Ok(r.into())
    }

    /// `kong.router.get_service()`: the matched service; an empty `id` when
    /// none. `access`, `response`, `log`.
    pub async fn get_service(self) -> Result<Service> {
        let s: pb::Service = self.kong.pdk_call("kong.router.get_service", &()).await?;
        Ok(s.into())
    }
}
