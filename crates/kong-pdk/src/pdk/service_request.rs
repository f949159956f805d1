use super::{empty, kv_str, s};
use crate::calls::HeaderTarget;
use crate::error::Result;
use crate::kong::Kong;
use crate::multimap::{Headers, Query};
use crate::value;
use kong_pdk_proto as pb;

/// `kong.service.request`: the request Kong sends upstream. `rewrite` and
/// `access` (set_scheme, set_path, set_header and set_raw_body also in
/// `balancer`, which external plugins do not get).
#[derive(Debug)]
pub struct ServiceRequest<'a> {
    kong: &'a mut Kong,
}

impl<'a> ServiceRequest<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        ServiceRequest { kong }
    }

    /// `set_scheme("http" | "https")`.
    pub async fn set_scheme(self, scheme: &str) -> Result<()> {
        empty(self.kong, "kong.service.request.set_scheme", &s(scheme)).await
    }

    /// `set_path(path)`: must start with `/`; sent as is (no query).
    pub async fn set_path(self, path: &str) -> Result<()> {
        empty(self.kong, "kong.service.request.set_path", &s(path)).await
    }

    /// `set_raw_query(query)`: the query string without `?`, sent as is.
    pub async fn set_raw_query(self, query: &str) -> Result<()> {
        empty(self.kong, "kong.service.request.set_raw_query", &s(query)).await
    }

    /// `set_method(method)`: e.g. `"POST"`.
    pub async fn set_method(self, method: &str) -> Result<()> {
        empty(self.kong, "kong.service.request.set_method", &s(method)).await
    }

    /// `set_query(args)`: replaces the query; Kong encodes it sorted by name.
    pub async fn set_query(self, query: &Query) -> Result<()> {
        let args = value::multimap_struct(query.as_map());
        empty(self.kong, "kong.service.request.set_query", &args).await
    }

    /// `set_header(name, value)`: replaces a header.
    pub async fn set_header(self, name: &str, value: &str) -> Result<()> {
        self.kong
            .set_header(HeaderTarget::ServiceRequest, name, value)
            .await
    }

    /// `add_header(name, value)`: adds a value to a header.
    pub async fn add_header(self, name: &str, value: &str) -> Result<()> {
        empty(
            self.kong,
            "kong.service.request.add_header",
            &kv_str(name, value),
        )
        .await
    }

    /// `clear_header(name)`: removes a header.
    pub async fn clear_header(self, name: &str) -> Result<()> {
        empty(self.kong, "kong.service.request.clear_header", &s(name)).await
    }

    /// `set_headers(headers)`: sets several headers.
    pub async fn set_headers(self, headers: &Headers) -> Result<()> {
        let args = value::multimap_struct(headers.as_map());
        empty(self.kong, "kong.service.request.set_headers", &args).await
    }

    /// `set_raw_body(body)`: replaces the body (any bytes) and sets
    /// `Content-Length`.
    pub async fn set_raw_body(self, body: impl AsRef<[u8]>) -> Result<()> {
        let args = pb::ByteString {
            v: body.as_ref().to_vec(),
        };
        empty(self.kong, "kong.service.request.set_raw_body", &args).await
    }

    /// `kong.service.request.set_body(args, mimetype)`: sets the body from
    /// a table, encoded by Kong for `mimetype` (`application/json`,
    /// `application/x-www-form-urlencoded`, `multipart/form-data`; `None`:
    /// the request's `Content-Type`), and sets `Content-Type` and
    /// `Content-Length`. `rewrite`, `access`. **Needs MsgPack:1**. Kong
    /// returns `true` or `nil, err` (nil over Kong 3.10): `Ok(false)`.
    pub async fn set_body<T: serde::Serialize + ?Sized>(
        self,
        body: &T,
        mimetype: Option<&str>,
    ) -> Result<bool> {
        let ok: Option<bool> = self
            .kong
            .call("kong.service.request.set_body", (body, mimetype))
            .await?;
        Ok(ok.unwrap_or(false))
    }
}
