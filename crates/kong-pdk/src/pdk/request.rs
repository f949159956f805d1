use std::collections::BTreeMap;
use std::path::PathBuf;

use kong_pdk_proto::{self as pb, raw_body_result::Kind};

use super::body::BodyType;
use super::{DEFAULT_MAX, check_max, number, string, u16_of};
use crate::calls::TableKind;
use crate::error::{Error, Result};
use crate::kong::Kong;
use crate::multimap::{Headers, Query};
use crate::value;

/// The client's request body, as `kong.request.get_raw_body` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawBody {
    /// The body, read into memory by nginx (empty when there is none).
    InMemory(Vec<u8>),
    /// The body was larger than nginx's `client_body_buffer_size` (8 KiB by
    /// default) and was buffered to this file on Kong's machine. Read it only
    /// if the plugin server shares Kong's filesystem and may read nginx's
    /// temp files; raising `client_body_buffer_size` (or
    /// `nginx_http_client_body_buffer_size`) keeps bodies in memory.
    File(PathBuf),
}

impl RawBody {
    /// The body's bytes: in memory as is, or read from nginx's temp file
    /// (refusing files larger than `max_file_size` bytes). Reading the file
    /// only works where the plugin server shares Kong's filesystem and may
    /// read nginx's `client_body_temp` files; the error says which file
    /// could not be read.
    pub async fn into_bytes(self, max_file_size: u64) -> std::io::Result<Vec<u8>> {
        match self {
            RawBody::InMemory(bytes) => Ok(bytes),
            RawBody::File(path) => {
                let path_text = path.display().to_string();
                let with_path = move |e: std::io::Error| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot read the request body buffered to {path_text}: {e}"),
                    )
                };
                let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                    use std::io::Read;
                    let file = std::fs::File::open(&path)?;
                    let len = file.metadata()?.len();
                    if len > max_file_size {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{len} bytes exceed the limit of {max_file_size}"),
                        ));
                    }
                    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                    file.take(max_file_size).read_to_end(&mut bytes)?;
                    Ok(bytes)
                })
                .await
                .map_err(std::io::Error::other)?;
                read.map_err(with_path)
            }
        }
    }
}

/// Kong's arguments to `kong.request.get_body` ([`Request::get_body_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyOptions {
    /// Parse as this content type instead of the `Content-Type` header.
    pub mimetype: Option<String>,
    /// Forms: how many pairs to read (1..=1000; default 100, Kong's
    /// `lua_max_post_args`).
    pub max_args: Option<u16>,
    /// JSON and multipart bodies nginx buffered to a file: the largest file
    /// to read (`0`: any); `None` refuses them, as Kong does by default.
    pub max_file_size: Option<u64>,
}

/// Captures of a regex route (`kong.request.get_uri_captures`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UriCaptures {
    /// Positional captures, in order.
    pub unnamed: Vec<Vec<u8>>,
    /// Named captures.
    pub named: BTreeMap<String, Vec<u8>>,
}

/// `kong.request`: the client's request as Kong received it.
///
/// Allowed in `rewrite`, `access` and `response` (and `log` where noted:
/// the `log` phase runs after the request is finished, so only the saved
/// headers can still be read there).
#[derive(Debug)]
pub struct Request<'a> {
    kong: &'a mut Kong,
}

impl<'a> Request<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Request { kong }
    }

    /// `kong.request.get_scheme()`: `"http"` or `"https"`. Works in `log`
    /// (Kong reads the saved `ngx.ctx`).
    pub async fn get_scheme(self) -> Result<String> {
        string(self.kong, "kong.request.get_scheme", &()).await
    }

    /// `kong.request.get_host()`: the host the client asked for, without
    /// port. Works in `log` (Kong reads the saved `ngx.ctx`).
    pub async fn get_host(self) -> Result<String> {
        string(self.kong, "kong.request.get_host", &()).await
    }

    /// `kong.request.get_port()`: the port the client connected to. In `log`, where Kong refuses it, the call layer answers from
    /// `kong.log.serialize()`: the port of `request.url`, which is the `port_maps`
    /// mapping when one applies.
    pub async fn get_port(self) -> Result<u16> {
        const METHOD: &str = "kong.request.get_port";
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return record.port(METHOD);
        }
        u16_of(self.kong, METHOD, &()).await
    }

    /// `kong.request.get_forwarded_scheme()`: `X-Forwarded-Proto` when the
    /// client is trusted, else the scheme. Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_forwarded_scheme(self) -> Result<String> {
        const METHOD: &str = "kong.request.get_forwarded_scheme";
        string(self.kong, METHOD, &()).await
    }

    /// `kong.request.get_forwarded_host()`: `X-Forwarded-Host` when the
    /// client is trusted, else the host. Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_forwarded_host(self) -> Result<String> {
        const METHOD: &str = "kong.request.get_forwarded_host";
        string(self.kong, METHOD, &()).await
    }

    /// `kong.request.get_forwarded_port()`: `X-Forwarded-Port` when the
    /// client is trusted, else the port. Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_forwarded_port(self) -> Result<u16> {
        const METHOD: &str = "kong.request.get_forwarded_port";
        u16_of(self.kong, METHOD, &()).await
    }

    /// `kong.request.get_http_version()`: `1.0`, `1.1`, `2.0`; `0.0` when
    /// unknown. Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_http_version(self) -> Result<f64> {
        const METHOD: &str = "kong.request.get_http_version";
        number(self.kong, METHOD, &()).await
    }

    /// `kong.request.get_method()`: e.g. `"GET"`. In `log`, where Kong refuses it, the call layer answers from
    /// `kong.log.serialize()`: `request.method`, the same
    /// value.
    pub async fn get_method(self) -> Result<String> {
        const METHOD: &str = "kong.request.get_method";
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return record.method(METHOD);
        }
        string(self.kong, METHOD, &()).await
    }

    /// `kong.request.get_path()`: the normalized path, without the query.
    /// Works in `log` (Kong reads the saved `ngx.ctx`).
    pub async fn get_path(self) -> Result<String> {
        string(self.kong, "kong.request.get_path", &()).await
    }

    /// `kong.request.get_path_with_query()`: path and query as sent. Works in
    /// `log` (Kong reads the saved `ngx.ctx`).
    pub async fn get_path_with_query(self) -> Result<String> {
        string(self.kong, "kong.request.get_path_with_query", &()).await
    }

    /// `kong.request.get_raw_query()`: the query string without `?`; `""`
    /// when none. In `log`, where Kong refuses it, the call layer answers from
    /// `kong.log.serialize()`: the query of `request.uri`, i.e. as the client sent
    /// it (changes made with `set_raw_query`/`set_query` are not in it).
    pub async fn get_raw_query(self) -> Result<String> {
        const METHOD: &str = "kong.request.get_raw_query";
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return record.raw_query(METHOD);
        }
        string(self.kong, METHOD, &()).await
    }

    /// `kong.request.get_query_arg(name)`: the first value of a query
    /// argument; `""` when missing or empty. A flag without `=` (`?debug`)
    /// makes Kong fail the call: use [`get_query`](Self::get_query) for
    /// those. In `log`, where Kong refuses it, the call layer answers from
    /// `kong.log.serialize()`: `request.querystring[name]`, the same value.
    pub async fn get_query_arg(self, name: &str) -> Result<String> {
        const METHOD: &str = "kong.request.get_query_arg";
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return record.query_arg(METHOD, name);
        }
        self.kong.single_lookup(TableKind::Query, name).await
    }

    /// `kong.request.get_query()`: up to 100 query arguments (Kong's
    /// default). In `log`, where Kong refuses it, the call layer answers from
    /// `kong.log.serialize()`: `request.querystring`, the same table.
    pub async fn get_query(self) -> Result<Query> {
        self.get_query_max(DEFAULT_MAX).await
    }

    /// `kong.request.get_query(max)`: up to `max` (1..=1000) arguments.
    pub async fn get_query_max(self, max: u16) -> Result<Query> {
        const METHOD: &str = "kong.request.get_query";
        let args = check_max(METHOD, max)?;
        if let Some(record) = self.kong.log_record(METHOD).await? {
            return Ok(value::struct_multimap(record.query(METHOD)?).into());
        }
        let st: pb::Struct = self.kong.pdk_call(METHOD, &args).await?;
        Ok(value::struct_multimap(st).into())
    }

    /// `kong.request.get_header(name)`: the first value of a header; the
    /// name is case-insensitive and `_` matches `-`; `""` when missing.
    /// Works in `log` (saved headers).
    pub async fn get_header(self, name: &str) -> Result<String> {
        self.kong
            .single_lookup(TableKind::RequestHeaders, name)
            .await
    }

    /// `kong.request.get_headers()`: up to 100 headers (Kong's default),
    /// names in lower case. Works in `log` (saved headers).
    pub async fn get_headers(self) -> Result<Headers> {
        self.get_headers_max(DEFAULT_MAX).await
    }

    /// `kong.request.get_headers(max)`: up to `max` (1..=1000) headers. In
    /// `log` Kong ignores `max` and returns the saved headers.
    pub async fn get_headers_max(self, max: u16) -> Result<Headers> {
        const METHOD: &str = "kong.request.get_headers";
        let args = check_max(METHOD, max)?;
        let st: pb::Struct = self.kong.pdk_call(METHOD, &args).await?;
        Ok(value::struct_multimap(st).into())
    }

    /// `kong.request.get_raw_body()`: the body as bytes, or the file nginx
    /// buffered a large body to. `rewrite`, `access`, `response`.
    /// Not in `log`: Kong refuses it there and `kong.log.serialize()` does not
    /// carry it; with the call layer on it fails at once with
    /// [`Error::LogPhase`](crate::Error::LogPhase) and the handler can go on.
    pub async fn get_raw_body(self) -> Result<RawBody> {
        const METHOD: &str = "kong.request.get_raw_body";
        let r: pb::RawBodyResult = self.kong.pdk_call(METHOD, &()).await?;
        match r.kind {
            Some(Kind::Content(bytes)) => Ok(RawBody::InMemory(bytes)),
            Some(Kind::BodyFilepath(path)) => Ok(RawBody::File(path.into())),
            Some(Kind::Error(message)) => Err(Error::Kong {
                method: METHOD,
                message,
            }),
            // A nil answer: no body.
            None => Ok(RawBody::InMemory(Vec::new())),
        }
    }

    /// `kong.request.get_body()`: the body parsed by its content type,
    /// exactly as Kong's Lua function does it, into any serde type (or
    /// `serde_json::Value`): `application/x-www-form-urlencoded` (name →
    /// string; `true` for a name without `=`; an array for a repeated name;
    /// the first 100 pairs), `application/json` (an object or an array) and
    /// `multipart/form-data` (name → value, an array for a repeated name;
    /// file names dropped). Two round trips at most (`Content-Type`, which
    /// the call layer may already hold, and `get_raw_body`); the errors are
    /// Kong's texts (`missing content type`, `unsupported content type
    /// '…'`, `invalid json body`, …) as [`Error::Kong`]. A body nginx
    /// buffered to a file is refused, as by Kong without a size limit: see
    /// [`get_body_with`](Self::get_body_with). `rewrite`, `access`,
    /// `response`.
    ///
    /// ```no_run
    /// # async fn handler(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// #[derive(serde::Deserialize)]
    /// struct Order { sku: String, quantity: u32 }
    /// let order: Order = kong.request().get_body().await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_body<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        self.get_body_with(&BodyOptions::default()).await
    }

    /// [`get_body`](Self::get_body) with Kong's three arguments: a mimetype
    /// that replaces the `Content-Type`, `max_args` for forms (1..=1000,
    /// default 100) and `max_file_size` for JSON and multipart bodies
    /// buffered to a file (`Some(0)`: any size; `None`: refused). Over
    /// MsgPack:1 Kong does not pass on the file, so such a body is refused
    /// whatever `max_file_size` says.
    pub async fn get_body_with<T: serde::de::DeserializeOwned>(
        self,
        options: &BodyOptions,
    ) -> Result<T> {
        const METHOD: &str = "kong.request.get_body";
        let kong_error = |message: String| Error::Kong {
            method: METHOD,
            message,
        };
        let max_args = usize::from(options.max_args.unwrap_or(DEFAULT_MAX));
        if max_args < 1 {
            return Err(Error::Value {
                method: METHOD,
                message: "max_args must be >= 1".into(),
            });
        }
        if max_args > 1000 {
            return Err(Error::Value {
                method: METHOD,
                message: "max_args must be <= 1000".into(),
            });
        }
        let content_type = match &options.mimetype {
            Some(m) => m.clone(),
            None => {
                let header = self.kong.request().get_header("content-type").await?;
                if header.is_empty() {
                    return Err(kong_error("missing content type".into()));
                }
                header
            }
        };
        let kind = super::body::body_type(&content_type).map_err(kong_error)?;
        let raw = match self.kong.request().get_raw_body().await {
            Ok(raw) => Some(raw),
            // Over MsgPack:1 Kong does not say where the file is.
            Err(Error::Kong { message, .. })
                if message == crate::msgpack::translate::BODY_IN_FILE =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let bytes = match (raw, kind, options.max_file_size) {
            (Some(RawBody::InMemory(bytes)), _, _) => bytes,
            (Some(RawBody::File(_)) | None, BodyType::Form, _) => {
                return Err(kong_error("request body in temp file not supported".into()));
            }
            (Some(RawBody::File(_)), _, None) | (None, _, _) => {
                return Err(kong_error(crate::msgpack::translate::BODY_IN_FILE.into()));
            }
            (Some(RawBody::File(path)), _, Some(max)) => {
                let size = std::fs::metadata(&path)
                    .map_err(|e| {
                        kong_error(format!(
                            "failed to open cached request body '{}': {e}",
                            path.display()
                        ))
                    })?
                    .len();
                if max > 0 && size > max {
                    return Err(kong_error(format!(
                        "request body file too big: {size} > {max}"
                    )));
                }
                RawBody::File(path.clone())
                    .into_bytes(u64::MAX)
                    .await
                    .map_err(|e| {
                        kong_error(format!(
                            "failed to read cached request body '{}': {e}",
                            path.display()
                        ))
                    })?
            }
        };
        let value = match kind {
            BodyType::Form => super::body::parse_form(&bytes, max_args),
            BodyType::Json => super::body::parse_json(&bytes).map_err(kong_error)?,
            BodyType::Multipart => super::body::parse_multipart(&bytes, &content_type),
        };
        serde_json::from_value(value).map_err(|e| Error::Value {
            method: METHOD,
            message: format!(
                "the {} body does not fit the requested type: {e}",
                kind.mimetype()
            ),
        })
    }

    /// The request's trace context from its headers: W3C `traceparent` /
    /// `tracestate` first, then B3 (`b3`, then `x-b3-*`); `None` when the
    /// request carries none (or only malformed ones). One `get_headers`
    /// round trip, answered from the call layer when the headers are
    /// already loaded. Works in `log` (saved headers).
    ///
    /// ```no_run
    /// # async fn handler(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// if let Some(trace) = kong.request().get_trace_context().await? {
    ///     kong.log().info(format!("trace {} parent {}", trace.trace_id, trace.parent_id)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_trace_context(self) -> Result<Option<super::TraceContext>> {
        let headers = self.get_headers().await?;
        Ok(super::trace_context::from_headers(&headers))
    }

    /// `kong.request.get_uri_captures()`: the captures of a regex route path.
    /// Works in `log`.
    pub async fn get_uri_captures(self) -> Result<UriCaptures> {
        let r: pb::UriCapturesResult = self
            .kong
            .pdk_call("kong.request.get_uri_captures", &())
            .await?;
        Ok(UriCaptures {
            unnamed: r.unnamed,
            named: r.named,
        })
    }
}
