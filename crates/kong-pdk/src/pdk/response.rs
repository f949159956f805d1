use kong_pdk_proto as pb;

use super::{DEFAULT_MAX, check_max, empty, kv_str, s, string, u16_of};
use crate::calls::{HeaderTarget, TableKind};
use crate::error::{Error, Result};
use crate::kong::Kong;
use crate::multimap::Headers;
use crate::value;

/// `kong.response`: the response sent to the client.
#[derive(Debug)]
pub struct Response<'a> {
    kong: &'a mut Kong,
}

impl<'a> Response<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Response { kong }
    }

    /// `kong.response.get_status()`: the status sent to the client.
    /// `response` and `log` (saved status); Kong rejects it in `access`.
    pub async fn get_status(self) -> Result<u16> {
        u16_of(self.kong, "kong.response.get_status", &()).await
    }

    /// `kong.response.get_header(name)`: the first value of a response
    /// header; `""` when missing. `response` and `log` (saved headers).
    pub async fn get_header(self, name: &str) -> Result<String> {
        self.kong
            .single_lookup(TableKind::ResponseHeaders, name)
            .await
    }

    /// `kong.response.get_headers()`: up to 100 response headers.
    /// `response` and `log`.
    pub async fn get_headers(self) -> Result<Headers> {
        self.get_headers_max(DEFAULT_MAX).await
    }

    /// `kong.response.get_headers(max)`: up to `max` (1..=1000) headers.
    pub async fn get_headers_max(self, max: u16) -> Result<Headers> {
        const METHOD: &str = "kong.response.get_headers";
        let args = check_max(METHOD, max)?;
        let st: pb::Struct = self.kong.call(METHOD, &args).await?;
        Ok(value::struct_multimap(st).into())
    }

    /// `kong.response.get_source()`: `"service"` (the upstream answered),
    /// `"exit"` (a plugin called `exit`) or `"error"`. `response` and `log`.
    pub async fn get_source(self) -> Result<String> {
        string(self.kong, "kong.response.get_source", &()).await
    }

    /// `kong.response.set_status(status)`: 100..=599. `rewrite`, `access`,
    /// `response`.
    pub async fn set_status(self, status: u16) -> Result<()> {
        let args = pb::Int { v: status.into() };
        empty(self.kong, "kong.response.set_status", &args).await
    }

    /// `kong.response.set_header(name, value)`: replaces a header.
    /// `rewrite`, `access`, `response`.
    pub async fn set_header(self, name: &str, value: &str) -> Result<()> {
        self.kong
            .set_header(HeaderTarget::Response, name, value)
            .await
    }

    /// `kong.response.add_header(name, value)`: adds a value to a header.
    /// `rewrite`, `access`, `response`.
    pub async fn add_header(self, name: &str, value: &str) -> Result<()> {
        empty(self.kong, "kong.response.add_header", &kv_str(name, value)).await
    }

    /// `kong.response.clear_header(name)`: removes a header. `rewrite`,
    /// `access`, `response`.
    pub async fn clear_header(self, name: &str) -> Result<()> {
        empty(self.kong, "kong.response.clear_header", &s(name)).await
    }

    /// `kong.response.set_headers(headers)`: sets several headers; a name
    /// with no values clears it. `rewrite`, `access`, `response`.
    pub async fn set_headers(self, headers: &Headers) -> Result<()> {
        let args = value::multimap_struct(headers.as_map());
        empty(self.kong, "kong.response.set_headers", &args).await
    }

    /// `kong.response.exit(status, body, headers)`: answers the client now
    /// and skips the rest of the request (later plugins and the upstream;
    /// `log` still runs).
    ///
    /// This call is terminal, as in Kong: Kong never answers it, so the
    /// handler stops here. Code after the `.await` does not run (values are
    /// still dropped). It only returns when sending failed. Repeated header
    /// names become multi-valued headers; Kong adds no `Content-Type` of its
    /// own. `rewrite`, `access`, `response`; Kong rejects it in `log`.
    pub async fn exit<K, V>(
        self,
        status: u16,
        body: impl AsRef<[u8]>,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let args = pb::ExitArgs {
            status: status.into(),
            body: body.as_ref().to_vec(),
            headers: Some(value::header_struct(headers)),
        };
        self.kong.call_terminal("kong.response.exit", &args).await
    }

    /// `kong.response.exit(status)` without body or headers.
    pub async fn exit_status(self, status: u16) -> Result<()> {
        self.exit(status, b"", std::iter::empty::<(&str, &str)>())
            .await
    }

    /// `kong.response.exit` with a JSON body and `Content-Type:
    /// application/json`, plus `headers`.
    pub async fn exit_json<T, K, V>(
        self,
        status: u16,
        body: &T,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()>
    where
        T: serde::Serialize + ?Sized,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let json = serde_json::to_vec(body).map_err(|e| Error::Value {
            method: "kong.response.exit",
            message: format!("cannot serialize the JSON body: {e}"),
        })?;
        let mut all: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        if !all
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            all.push(("Content-Type".into(), "application/json".into()));
        }
        self.exit(status, json, all).await
    }
}
