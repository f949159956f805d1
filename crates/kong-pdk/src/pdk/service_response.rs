use kong_pdk_proto as pb;

use super::content_encoding::{ContentEncoding, DEFAULT_MAX_DECODED, DecodedBody};
use super::{DEFAULT_MAX, check_max, s, string, u16_of};
use crate::error::Result;
use crate::kong::Kong;
use crate::multimap::Headers;
use crate::value;

/// The call whose result [`DecodedBody`] decodes (errors name it).
pub(super) const GET_RAW_BODY: &str = "kong.service.response.get_raw_body";

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

    /// The buffered upstream body with its `Content-Encoding` undone
    /// (identity, `gzip`, `deflate`, `br`, or a list of them), at most
    /// [`DEFAULT_MAX_DECODED`] bytes once decoded. Two round trips:
    /// `get_header("Content-Encoding")` and `get_raw_body()`.
    ///
    /// Edit [`DecodedBody::data`] and hand it to
    /// [`Response::replace_body`](super::Response::replace_body), which
    /// sends it back in the upstream's coding with headers that match.
    /// An unknown coding, corrupt data or a body over the limit is
    /// [`Error::ContentEncoding`](crate::Error::ContentEncoding), which names
    /// the coding or the limit; the event goes on and Kong still holds the
    /// upstream's response.
    ///
    /// ```no_run
    /// # async fn response(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// let status = kong.service_response().get_status().await?;
    /// let mut body = kong.service_response().get_decoded_body().await?;
    /// body.data = String::from_utf8_lossy(&body.data)
    ///     .replace("internal.example", "api.example")
    ///     .into_bytes();
    /// kong.response().replace_body(status, body, []).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_decoded_body(self) -> Result<DecodedBody> {
        self.get_decoded_body_max(DEFAULT_MAX_DECODED).await
    }

    /// [`get_decoded_body`](Self::get_decoded_body) with a limit of `max`
    /// decoded bytes.
    pub async fn get_decoded_body_max(self, max: usize) -> Result<DecodedBody> {
        let header = string(
            self.kong,
            "kong.service.response.get_header",
            &s("Content-Encoding"),
        )
        .await?;
        let encoding = ContentEncoding::parse(&header)?;
        let raw = ServiceResponse::new(self.kong).get_raw_body().await?;
        let data = encoding.decode(raw, max)?;
        Ok(DecodedBody::new(data, encoding))
    }
}
