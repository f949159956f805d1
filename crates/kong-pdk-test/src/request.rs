//! [`Request`]: the client request the simulated Kong receives.

use std::collections::BTreeMap;

use kong_pdk_proto as pb;
use serde_json::{Map, Value as Json};

use crate::headers::HeaderList;

/// The id of the route every request matches unless [`Request::route`] says otherwise.
pub const DEFAULT_ROUTE_ID: &str = "3c6e2bd8-4f5e-4b8e-9d0a-7a1f0c2d4e01";
/// The id of the service behind the default route.
pub const DEFAULT_SERVICE_ID: &str = "5b1f3c9a-8d2e-4f6a-b7c8-0e9d1a2b3c02";
/// The host of the default service: where the request is proxied.
pub const DEFAULT_SERVICE_HOST: &str = "backend.test";

/// A client request, built like an HTTP client builds one.
///
/// The URL gives the scheme (`https` means TLS), host, port, path and
/// query; a `Host` header is added from it unless one is set, and a
/// `Content-Length` header when there is a body. By default the request
/// comes from `127.0.0.1:40000`, matches a route (`paths = ["/"]`,
/// `strip_path = true`) of a service at `http://backend.test:80`, has no
/// authenticated consumer, and Kong trusts no proxy (`trusted_ips` empty).
///
/// ```
/// use kong_pdk_test::Request;
///
/// let request = Request::post("https://api.example.com:8443/v1/items?draft", "{}")
///     .header("content-type", "application/json")
///     .header("x-tag", "a")
///     .header("x-tag", "b")
///     .client_ip("203.0.113.9")
///     .trusted_ips(["10.0.0.0/8"])
///     .ctx("tenant", "blue");
/// assert_eq!(request.header_value("host"), Some("api.example.com:8443"));
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderList,
    pub(crate) body: Vec<u8>,
    pub(crate) client_ip: String,
    pub(crate) client_port: u16,
    pub(crate) tls_version: String,
    pub(crate) http_version: f64,
    pub(crate) route: pb::Route,
    pub(crate) service: pb::Service,
    pub(crate) consumer: Option<pb::Consumer>,
    pub(crate) credential: Option<pb::AuthenticatedCredential>,
    pub(crate) ctx: Map<String, Json>,
    pub(crate) vars: BTreeMap<String, String>,
    pub(crate) trusted_ips: Vec<String>,
    pub(crate) real_ip_header: String,
    pub(crate) uri_captures: pb::UriCapturesResult,
    pub(crate) start_time: f64,
    pub(crate) body_buffer_size: usize,
}

impl Request {
    /// A request with `method` to `url` (`http://` or `https://`, with an
    /// optional port, path and query).
    ///
    /// # Panics
    ///
    /// When `url` is not an absolute `http`/`https` URL.
    pub fn new(method: &str, url: &str) -> Request {
        let (scheme, host, port, path, query) =
            parse_url(url).unwrap_or_else(|e| panic!("Request URL {url:?}: {e}"));
        let mut headers = HeaderList::new();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let host_header = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        headers.add("host", host_header);
        Request {
            method: method.to_ascii_uppercase(),
            scheme,
            host,
            port,
            path,
            query,
            headers,
            body: Vec::new(),
            client_ip: "127.0.0.1".into(),
            client_port: 40000,
            tls_version: "TLSv1.3".into(),
            http_version: 1.1,
            route: default_route(),
            service: default_service(),
            consumer: None,
            credential: None,
            ctx: Map::new(),
            vars: BTreeMap::new(),
            trusted_ips: Vec::new(),
            real_ip_header: "X-Real-IP".into(),
            uri_captures: pb::UriCapturesResult::default(),
            start_time: 1_767_225_600.123,
            body_buffer_size: 8192,
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A `HEAD` request.
    pub fn head(url: &str) -> Request {
        Request::new("HEAD", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: &str) -> Request {
        Request::new("DELETE", url)
    }

    /// An `OPTIONS` request.
    pub fn options(url: &str) -> Request {
        Request::new("OPTIONS", url)
    }

    /// A `POST` request with a body.
    pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", url).body(body)
    }

    /// A `PUT` request with a body.
    pub fn put(url: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("PUT", url).body(body)
    }

    /// A `PATCH` request with a body.
    pub fn patch(url: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("PATCH", url).body(body)
    }

    /// Adds a header value (call it again with the same name for a
    /// multi-valued header). Setting `host` replaces the one from the URL.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        if name.eq_ignore_ascii_case("host") {
            self.headers.set("host", value);
        } else {
            self.headers.add(name, value);
        }
        self
    }

    /// Removes a header (e.g. the automatic `host`).
    pub fn without_header(mut self, name: &str) -> Request {
        self.headers.remove(name);
        self
    }

    /// The body, as bytes. A `Content-Length` header is added when there is
    /// none.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        if !self.body.is_empty()
            && !self.headers.contains("content-length")
            && !self.headers.contains("transfer-encoding")
        {
            self.headers
                .set("content-length", self.body.len().to_string());
        } else if self.body.is_empty() {
            self.headers.remove("content-length");
        }
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, body: &Json) -> Request {
        let with_type = if self.headers.contains("content-type") {
            self
        } else {
            self.header("content-type", "application/json")
        };
        with_type.body(body.to_string())
    }

    /// A form body (`application/x-www-form-urlencoded`): the pairs in
    /// order, names and values percent-encoded (space as `+`), as a
    /// browser sends them. Repeat a name for several values.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Request {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k.as_ref()), form_encode(v.as_ref())))
            .collect();
        self.with_content_type("application/x-www-form-urlencoded")
            .body(body.join("&"))
    }

    /// A `multipart/form-data` body with the boundary `kong-pdk-test`: each
    /// part is a field name and its value, or, with a file name, a file
    /// part (`Content-Type: application/octet-stream`).
    pub fn multipart(self, parts: &[Part<'_>]) -> Request {
        const BOUNDARY: &str = "kong-pdk-test";
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match part.filename {
                Some(file) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{file}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n",
                        part.name
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                        part.name
                    )
                    .as_bytes(),
                ),
            }
            body.extend_from_slice(part.value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.with_content_type(&format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body)
    }

    fn with_content_type(self, content_type: &str) -> Request {
        if self.headers.contains("content-type") {
            self
        } else {
            self.header("content-type", content_type)
        }
    }

    /// The address of the peer that connected to Kong (default `127.0.0.1`).
    pub fn client_ip(mut self, ip: &str) -> Request {
        self.client_ip = ip.into();
        self
    }

    /// The peer's port (default 40000).
    pub fn client_port(mut self, port: u16) -> Request {
        self.client_port = port;
        self
    }

    /// Whether the client connection uses TLS. `https://` URLs do; this
    /// overrides it (the scheme Kong reports follows).
    pub fn tls(mut self, tls: bool) -> Request {
        self.scheme = if tls { "https" } else { "http" }.into();
        self
    }

    /// The TLS version of the client connection (default `TLSv1.3`).
    pub fn tls_version(mut self, version: &str) -> Request {
        self.tls_version = version.into();
        self
    }

    /// The HTTP version (default 1.1).
    pub fn http_version(mut self, version: f64) -> Request {
        self.http_version = version;
        self
    }

    /// The route the request matched (replaces the default route).
    pub fn route(mut self, route: pb::Route) -> Request {
        self.route = route;
        self
    }

    /// The route's service (replaces the default service): the upstream
    /// scheme, host, port and path come from it.
    pub fn service(mut self, service: pb::Service) -> Request {
        self.service = service;
        self
    }

    /// A consumer another plugin already authenticated (what
    /// `kong.client.get_consumer` returns). Also known to
    /// `kong.client.load_consumer`.
    pub fn consumer(mut self, consumer: pb::Consumer) -> Request {
        self.consumer = Some(consumer);
        self
    }

    /// The credential another plugin already authenticated.
    pub fn credential(mut self, credential: pb::AuthenticatedCredential) -> Request {
        self.credential = Some(credential);
        self
    }

    /// An `ngx.ctx` value present when the plugin runs
    /// (`kong.nginx.get_ctx`), e.g. set by a Lua plugin.
    pub fn ctx(mut self, key: &str, value: impl Into<Json>) -> Request {
        self.ctx.insert(key.into(), value.into());
        self
    }

    /// An nginx variable for `kong.nginx.get_var`, overriding what the
    /// simulation derives from the request.
    pub fn var(mut self, name: &str, value: &str) -> Request {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Kong's `trusted_ips`: addresses or CIDR blocks whose `X-Forwarded-*`
    /// and real-IP headers Kong believes.
    pub fn trusted_ips<S: Into<String>>(mut self, ips: impl IntoIterator<Item = S>) -> Request {
        self.trusted_ips = ips.into_iter().map(Into::into).collect();
        self
    }

    /// Kong's `real_ip_header` (default `X-Real-IP`; `X-Forwarded-For` takes
    /// the last address).
    pub fn real_ip_header(mut self, name: &str) -> Request {
        self.real_ip_header = name.into();
        self
    }

    /// The captures of a regex route path (`kong.request.get_uri_captures`).
    pub fn uri_captures<'a>(
        mut self,
        unnamed: impl IntoIterator<Item = &'a str>,
        named: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Request {
        self.uri_captures = pb::UriCapturesResult {
            unnamed: unnamed.into_iter().map(|s| s.as_bytes().to_vec()).collect(),
            named: named
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
                .collect(),
        };
        self
    }

    /// The request's start time in seconds since the epoch
    /// (`kong.nginx.req_start_time`).
    pub fn start_time(mut self, seconds: f64) -> Request {
        self.start_time = seconds;
        self
    }

    /// nginx's `client_body_buffer_size` (default 8192): a larger body is
    /// buffered to a file, and `kong.request.get_raw_body` returns its path.
    pub fn body_buffer_size(mut self, bytes: usize) -> Request {
        self.body_buffer_size = bytes;
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The first value of a header.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Whether the client connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// The path and query as the client sent them (nginx's `request_uri`).
    pub(crate) fn request_uri(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// `(scheme, host, port, path, query)` of an absolute URL.
type UrlParts = (String, String, u16, String, Option<String>);

fn parse_url(url: &str) -> Result<UrlParts, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not an absolute URL (expected http://… or https://…)")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unterminated IPv6 address")?;
        (format!("[{host}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        None => default_port,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok((
        scheme,
        host.to_ascii_lowercase(),
        port,
        path.to_owned(),
        query,
    ))
}

fn default_route() -> pb::Route {
    pb::Route {
        id: DEFAULT_ROUTE_ID.into(),
        created_at: 1_767_225_000,
        updated_at: 1_767_225_000,
        name: "test-route".into(),
        protocols: vec!["http".into(), "https".into()],
        paths: vec!["/".into()],
        https_redirect_status_code: 426,
        strip_path: true,
        service: Some(pb::ServiceKey {
            id: DEFAULT_SERVICE_ID.into(),
        }),
        ..pb::Route::default()
    }
}

fn default_service() -> pb::Service {
    pb::Service {
        id: DEFAULT_SERVICE_ID.into(),
        created_at: 1_767_225_000,
        updated_at: 1_767_225_000,
        name: "test-service".into(),
        retries: 5,
        protocol: "http".into(),
        host: DEFAULT_SERVICE_HOST.into(),
        port: 80,
        connect_timeout: 60000,
        write_timeout: 60000,
        read_timeout: 60000,
        ..pb::Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_parts() {
        let r = Request::get("HTTPS://Example.com:8443/a/b?x=1&y#frag");
        assert_eq!(r.scheme, "https");
        assert_eq!(r.host, "example.com");
        assert_eq!(r.port, 8443);
        assert_eq!(r.path, "/a/b");
        assert_eq!(r.query.as_deref(), Some("x=1&y"));
        assert_eq!(r.headers.get("Host"), Some("example.com:8443"));
        let r = Request::get("http://[::1]");
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("[::1]", 80, "/")
        );
        assert_eq!(r.query, None);
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("/relative").is_err());
    }

    #[test]
    fn bodies_get_a_content_length() {
        let r = Request::post("http://h/", "abc");
        assert_eq!(r.headers.get("content-length"), Some("3"));
        let r = Request::get("http://h/").header("Host", "other");
        assert_eq!(r.headers.get_all("host"), ["other"]);
    }
}

/// One part of a [`Request::multipart`] body.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// The field name.
    pub name: &'a str,
    /// A file name, for a file part.
    pub filename: Option<&'a str>,
    /// The content.
    pub value: &'a [u8],
}

impl<'a> Part<'a> {
    /// A plain field.
    pub fn field(name: &'a str, value: &'a str) -> Part<'a> {
        Part {
            name,
            filename: None,
            value: value.as_bytes(),
        }
    }

    /// A file upload.
    pub fn file(name: &'a str, filename: &'a str, content: &'a [u8]) -> Part<'a> {
        Part {
            name,
            filename: Some(filename),
            value: content,
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
