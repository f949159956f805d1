//! The requests and responses around Kong: what goes upstream, what comes
//! back, what the client gets.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value as Json, json};

use crate::headers::HeaderList;
use crate::values;

/// The request Kong sends (or would send) to the upstream service, after
/// the plugin's `kong.service.request.*` and `kong.service.set_*` changes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpstreamRequest {
    /// The method.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The host Kong connects to (the service's host, a target from
    /// `kong.service.set_target`, or the upstream name from
    /// `kong.service.set_upstream`).
    pub host: String,
    /// The port Kong connects to.
    pub port: u16,
    /// The path (`kong.service.request.set_path`, or the request path
    /// routed through the route and service paths).
    pub path: String,
    /// The raw query string, without `?` (empty when none).
    pub query: String,
    /// The headers.
    pub headers: HeaderList,
    /// The body.
    pub body: Vec<u8>,
    /// The Kong upstream chosen with `kong.service.set_upstream`.
    pub upstream: Option<String>,
}

impl UpstreamRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The first value of a query argument, decoded; `Some("")` for a flag.
    pub fn query_arg(&self, name: &str) -> Option<String> {
        values::parse_query(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.unwrap_or_default())
    }

    /// The path with `?query` when there is a query.
    pub fn path_with_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// What the echo upstream answers: 200 with a JSON description of this
    /// request (`method`, `scheme`, `host`, `port`, `path`, `query`, `args`,
    /// `headers` with lower-case names, `body` as text).
    pub fn echo(&self) -> UpstreamResponse {
        let mut headers: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for (k, v) in self.headers.iter() {
            headers
                .entry(k.to_ascii_lowercase())
                .or_default()
                .push(Some(v.to_owned()));
        }
        let description = json!({
            "method": self.method,
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "path": self.path,
            "query": self.query,
            "args": values::multimap_json(&values::query_multimap(&self.query, usize::MAX)),
            "headers": values::multimap_json(&headers),
            "body": self.body_text(),
        });
        UpstreamResponse::json(200, &description)
    }
}

/// A response from the upstream service: the echo upstream's, or one the
/// test scripts with [`TestEnv::upstream_response`](crate::TestEnv::upstream_response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderList,
    /// The body.
    pub body: Vec<u8>,
}

impl UpstreamResponse {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> UpstreamResponse {
        UpstreamResponse {
            status,
            headers: HeaderList::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response with `Content-Type: application/json`.
    pub fn json(status: u16, body: &Json) -> UpstreamResponse {
        UpstreamResponse::new(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Adds a header value.
    pub fn header(mut self, name: &str, value: &str) -> UpstreamResponse {
        self.headers.add(name, value);
        self
    }

    /// The body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> UpstreamResponse {
        self.body = body.into();
        self
    }

    /// Compresses the body as `content_encoding` says (`"gzip"`, `"br"`,
    /// `"deflate"` or a list such as `"gzip, br"`) and sets
    /// `Content-Encoding` and `Content-Length`, as a compressing upstream
    /// does. Panics on a coding kong-pdk cannot write.
    pub fn content_encoding(mut self, content_encoding: &str) -> UpstreamResponse {
        let encoding = kong_pdk::pdk::ContentEncoding::parse(content_encoding)
            .unwrap_or_else(|e| panic!("UpstreamResponse::content_encoding: {e}"));
        self.body = encoding.encode(std::mem::take(&mut self.body));
        self.headers.set("content-encoding", content_encoding);
        self.headers
            .set("content-length", self.body.len().to_string());
        self
    }

    /// The body parsed as JSON.
    pub fn body_json(&self) -> serde_json::Result<Json> {
        serde_json::from_slice(&self.body)
    }
}

/// Who produced the client's response (`kong.response.get_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseSource {
    /// The upstream service answered (`"service"`).
    Service,
    /// A plugin called `kong.response.exit` (`"exit"`).
    Exit,
    /// Kong answered with an error after a failure (`"error"`).
    Error,
    /// There is no HTTP response: the TLS handshake failed in the
    /// `certificate` phase.
    None,
}

impl ResponseSource {
    /// The name `kong.response.get_source` returns (`""` for [`ResponseSource::None`]).
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseSource::Service => "service",
            ResponseSource::Exit => "exit",
            ResponseSource::Error => "error",
            ResponseSource::None => "",
        }
    }
}

impl fmt::Display for ResponseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The response the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientResponse {
    /// The status (0 when there is no response, see [`ResponseSource::None`]).
    pub status: u16,
    /// The headers.
    pub headers: HeaderList,
    /// The body.
    pub body: Vec<u8>,
    /// Who produced it.
    pub source: ResponseSource,
}

impl ClientResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body with its `Content-Encoding` undone, as a client decodes
    /// it; an error when the header names a coding the body does not have.
    pub fn decoded_body(&self) -> kong_pdk::Result<Vec<u8>> {
        let header = self.header("content-encoding").unwrap_or("");
        kong_pdk::pdk::ContentEncoding::parse(header)?.decode(self.body.clone(), usize::MAX / 2)
    }

    /// The body parsed as JSON.
    pub fn body_json(&self) -> serde_json::Result<Json> {
        serde_json::from_slice(&self.body)
    }
}
