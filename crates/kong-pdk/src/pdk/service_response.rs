use kong_pdk_proto as pb;

use super::{DEFAULT_MAX, check_max, s, string, u16_of};
use crate::error::Result;
use crate::kong::Kong;
use crate::multimap::Headers;
use crate::value;

/// `kong.service.response`: the upstream's response. `response` (where the
/// whole response is buffered) and `log`.
#[derive(Debug)]
pub struct ServiceResponse<'a> {
    kong: &'a mut Kong,
}

impl<'a> ServiceResponse<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        ServiceResponse { kong }
    }

    /// `get_status()`: the upstream's status; `0` when there was none.
    pub async fn get_status(self) -> Result<u16> {
        u16_of(self.kong, "kong.service.response.get_status", &()).await
    }

    /// `get_header(name)`: the first value of an upstream header; `""` when
    /// missing.
    pub async fn get_header(self, name: &str) -> Result<String> {
        string(self.kong, "kong.service.response.get_header", &s(name)).await
    }

    /// `get_headers()`: up to 100 upstream headers.
    ///
    /// **Empty in the `response` phase**: when Kong buffers the response
    /// (which a `response` handler makes it do), its headers table is an
    /// empty Lua table whose `__index` looks names up, so the ProtoBuf
    /// bridge, which walks it with `pairs`, sends `{}`
    /// (`kong/pdk/service/response.lua`). Read single headers with
    /// [`get_header`](Self::get_header) there.
    pub async fn get_headers(self) -> Result<Headers> {
        self.get_headers_max(DEFAULT_MAX).await
    }

    /// `get_headers(max)`: up to `max` (1..=1000) upstream headers.
    pub async fn get_headers_max(self, max: u16) -> Result<Headers> {
        const METHOD: &str = "kong.service.response.get_headers";
        let args = check_max(METHOD, max)?;
        let st: pb::Struct = self.kong.pdk_call(METHOD, &args).await?;
        Ok(value::struct_multimap(st).into())
    }

    /// `get_raw_body()`: the whole buffered upstream body as bytes. Kong
    /// rejects it unless the response was buffered, which a plugin with a
    /// `response` handler on the route causes.
    pub async fn get_raw_body(self) -> Result<Vec<u8>> {
        let b: pb::ByteString = self
            .kong
            .pdk_call("kong.service.response.get_raw_body", &())
            .await?;
        Ok(b.v)
    }
}
