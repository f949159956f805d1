//! The simulated Kong: the state of one request and Kong's answer to each
//! PDK call made while a phase runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use kong_pdk::Phase;
use kong_pdk_proto::{self as pb, ValueKind, raw_body_result::Kind as RawKind};
use prost::Message;
use serde_json::{Map, Value as Json, json};

use crate::driver::{Call, Reply};
use crate::headers::HeaderList;
use crate::http::{ClientResponse, ResponseSource, UpstreamRequest, UpstreamResponse};
use crate::request::Request;
use crate::rules::{self, Spec};
use crate::values;

/// The level of a `kong.log.*` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `kong.log.alert`.
    Alert,
    /// `kong.log.crit`.
    Crit,
    /// `kong.log.err`.
    Err,
    /// `kong.log.warn`.
    Warn,
    /// `kong.log.notice`.
    Notice,
    /// `kong.log.info`.
    Info,
    /// `kong.log.debug`.
    Debug,
}

impl LogLevel {
    /// The level's name, as in the method (`"err"`, `"warn"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Alert => "alert",
            LogLevel::Crit => "crit",
            LogLevel::Err => "err",
            LogLevel::Warn => "warn",
            LogLevel::Notice => "notice",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }

    fn of_method(method: &str) -> Option<LogLevel> {
        Some(match method.strip_prefix("kong.log.")? {
            "alert" => LogLevel::Alert,
            "crit" => LogLevel::Crit,
            "err" => LogLevel::Err,
            "warn" => LogLevel::Warn,
            "notice" => LogLevel::Notice,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `kong.log.*` line the plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The phase that wrote it.
    pub phase: Phase,
    /// The level.
    pub level: LogLevel,
    /// The arguments concatenated without separators, as Kong writes them
    /// (numbers as Lua prints them, tables as JSON).
    pub message: String,
}

/// How the simulated Kong dealt with a PDK call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// Answered from the model.
    Answered,
    /// Not modelled: answered with an empty frame (Kong's nil), and listed
    /// in [`Outcome::unhandled_calls`](crate::Outcome::unhandled_calls).
    Unhandled,
    /// Kong raises a Lua error for this call: no answer, the connection is
    /// closed, and the phase fails. The reason says why.
    Rejected(String),
    /// `kong.response.exit`: Kong never answers it.
    Exit,
}

/// One PDK call the plugin made.
#[derive(Debug, Clone, PartialEq)]
pub struct PdkCall {
    /// The phase it was made in.
    pub phase: Phase,
    /// The method, e.g. `kong.request.get_header`.
    pub method: String,
    /// The arguments decoded as JSON: `null` for none, a string/number/bool
    /// for the scalar messages, `{"k","v"}` for a `KV`, an array for
    /// `kong.log.*`, an object for a `Struct`, `Target`, `ExitArgs`, … .
    /// Bytes are a string when they are UTF-8.
    pub args: Json,
    /// The encoded arguments.
    pub raw_args: Vec<u8>,
    /// How the simulated Kong dealt with it.
    pub outcome: CallOutcome,
}

impl PdkCall {
    pub(crate) fn new(phase: Phase, call: &Call, outcome: CallOutcome) -> PdkCall {
        PdkCall {
            phase,
            method: call.method.clone(),
            args: rules::args_json(&call.method, &call.args),
            raw_args: call.args.clone(),
            outcome,
        }
    }

    /// Decodes the arguments as the prost message `M`.
    ///
    /// # Panics
    ///
    /// When they do not decode as `M`.
    pub fn decode<M: Message + Default>(&self) -> M {
        M::decode(&self.raw_args[..])
            .unwrap_or_else(|e| panic!("{} args do not decode: {e}", self.method))
    }
}

/// A change to the client response's headers.
#[derive(Debug, Clone)]
enum HeaderOp {
    Set(String, Vec<String>),
    Add(String, Vec<String>),
}

impl HeaderOp {
    fn apply(&self, headers: &mut HeaderList) {
        match self {
            HeaderOp::Set(name, values) => headers.set_all(name.clone(), values.iter().cloned()),
            HeaderOp::Add(name, values) => {
                for v in values {
                    headers.add(name.clone(), v.clone());
                }
            }
        }
    }
}

/// What the simulated Kong knows besides the request.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(crate) consumers: Vec<pb::Consumer>,
    pub(crate) upstreams: Vec<String>,
    pub(crate) node_id: String,
    pub(crate) workspace_id: String,
}

/// The state of one request inside the simulated Kong.
#[derive(Debug)]
pub(crate) struct Sim {
    pub(crate) phase: Phase,
    req: Request,
    world: World,
    /// Whether Kong buffers the upstream response (the plugin has `response`).
    pub(crate) buffered: bool,
    // nginx's request, which kong.service.request.* changes in place.
    method: String,
    query: Option<String>,
    headers: HeaderList,
    body: Vec<u8>,
    // What only the upstream sees.
    up_scheme: String,
    up_host: String,
    up_port: u16,
    up_path: String,
    up_name: Option<String>,
    up_host_header: Option<String>,
    /// The request sent upstream, once it was.
    pub(crate) sent: Option<UpstreamRequest>,
    pub(crate) service_res: Option<UpstreamResponse>,
    pub(crate) client: ClientResponse,
    pending: Vec<HeaderOp>,
    pub(crate) ctx_shared: Map<String, Json>,
    pub(crate) nginx_ctx: Map<String, Json>,
    pub(crate) serialize_values: Vec<(String, Json)>,
    pub(crate) consumer: Option<pb::Consumer>,
    pub(crate) credential: Option<pb::AuthenticatedCredential>,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) calls: Vec<PdkCall>,
    pub(crate) kong_errors: Vec<String>,
    body_dir: PathBuf,
    body_file: Option<PathBuf>,
}

/// Kong's answer, or the reason it raises an error.
enum Answer {
    Frame(Vec<u8>),
    Unhandled,
}

type Res = Result<Answer, String>;

fn frame<M: Message>(m: M) -> Res {
    Ok(Answer::Frame(m.encode_to_vec()))
}

fn nothing() -> Res {
    Ok(Answer::Frame(Vec::new()))
}

fn text(s: impl Into<String>) -> Res {
    frame(pb::Str { v: s.into() })
}

fn int(v: impl Into<i64>) -> Res {
    let v = v.into();
    frame(pb::Int {
        v: i32::try_from(v).unwrap_or(i32::MAX),
    })
}

fn arg<M: Message + Default>(raw: &[u8]) -> Result<M, String> {
    M::decode(raw).map_err(|e| format!("the arguments do not decode: {e}"))
}

/// Kong's header/query `max` argument check.
fn check_max(max: i32, what: &str) -> Result<usize, String> {
    if max < 1 {
        Err(format!("{what} must be >= 1"))
    } else if max > 1000 {
        Err(format!("{what} must be <= 1000"))
    } else {
        Ok(usize::try_from(max).unwrap_or(1000))
    }
}

/// A header value Kong accepts: a string, number, boolean, or an array of them.
fn header_values(v: Option<&pb::Value>, name: &str) -> Result<Vec<String>, String> {
    fn scalar(v: &pb::Value) -> Option<String> {
        match &v.kind {
            Some(ValueKind::StringValue(s)) => Some(s.clone()),
            Some(ValueKind::NumberValue(n)) => Some(values::lua_number(*n)),
            Some(ValueKind::BoolValue(b)) => Some(b.to_string()),
            _ => None,
        }
    }
    let bad = || format!("invalid header value for {name:?}: got {}", describe(v));
    let v = v.ok_or_else(bad)?;
    match &v.kind {
        Some(ValueKind::ListValue(list)) => list
            .values
            .iter()
            .map(|x| scalar(x).ok_or_else(bad))
            .collect(),
        _ => scalar(v).map(|s| vec![s]).ok_or_else(bad),
    }
}

fn describe(v: Option<&pb::Value>) -> &'static str {
    match v.and_then(|v| v.kind.as_ref()) {
        None | Some(ValueKind::NullValue(_)) => "nil",
        Some(ValueKind::StructValue(_)) => "a table",
        Some(ValueKind::ListValue(_)) => "a list",
        _ => "a scalar",
    }
}

/// Names compared like nginx does for `$http_*`: case-insensitive, `_` ≡ `-`.
fn header_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// `ngx.var.http_<name>` as `kong.request.get_header` reads it
/// (`kong/tools/http.lua`): nginx joins the matching lines (`, `; `; ` for
/// Cookie), and a value holding `", "` is read from the header table
/// instead.
fn nginx_var_header(headers: &HeaderList, name: &str) -> String {
    let folded = |k: &str| k.to_ascii_lowercase().replace('-', "_");
    let wanted = folded(name);
    let lines: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| folded(k) == wanted)
        .map(|(_, v)| v)
        .collect();
    let sep = if wanted == "cookie" { "; " } else { ", " };
    let joined = lines.join(sep);
    if joined.contains(", ") {
        table_header(headers, name).unwrap_or_default().to_owned()
    } else {
        joined
    }
}

/// `t[name]` of `ngx.req.get_headers()` / `ngx.resp.get_headers()` (100
/// lines): the raw key (names are lower case), then the `__index`
/// normalization (lower case, `_` as `-`); the first value.
fn table_header<'a>(headers: &'a HeaderList, name: &str) -> Option<&'a str> {
    let hit = |key: &str| {
        headers
            .iter()
            .take(100)
            .find(|(k, _)| k.to_ascii_lowercase() == key)
    };
    let found = hit(name).or_else(|| hit(&header_key(name)));
    found.map(|(_, v)| v)
}

fn first_header<'a>(headers: &'a HeaderList, name: &str) -> Option<&'a str> {
    let key = header_key(name);
    headers
        .iter()
        .find(|(k, _)| header_key(k) == key)
        .map(|(_, v)| v)
}

fn split_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        match host.split_once("]:") {
            Some((h, p)) => (&host[..h.len() + 1], Some(p)),
            None => (host, None),
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    }
}

const METHODS: [&str; 15] = [
    "GET",
    "HEAD",
    "PUT",
    "POST",
    "DELETE",
    "OPTIONS",
    "MKCOL",
    "COPY",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "PATCH",
    "TRACE",
];

fn join_path(base: &str, rest: &str) -> String {
    let base = if base.is_empty() { "/" } else { base };
    if rest.is_empty() {
        return base.to_owned();
    }
    match (base.ends_with('/'), rest.starts_with('/')) {
        (true, true) => format!("{base}{}", &rest[1..]),
        (false, false) => format!("{base}/{rest}"),
        _ => format!("{base}{rest}"),
    }
}

impl Sim {
    pub(crate) fn new(req: Request, world: World, buffered: bool, body_dir: PathBuf) -> Sim {
        let service = &req.service;
        let up_scheme = if service.protocol.is_empty() {
            "http".to_owned()
        } else {
            service.protocol.clone()
        };
        let up_port = match u16::try_from(service.port) {
            Ok(p) if p != 0 => p,
            _ if up_scheme == "https" => 443,
            _ => 80,
        };
        // The router: strip the longest matching plain route path, then
        // append the rest to the service path.
        let matched = req
            .route
            .paths
            .iter()
            .filter(|p| !p.starts_with('~') && req.path.starts_with(p.as_str()))
            .max_by_key(|p| p.len());
        let rest = match matched {
            Some(p) if req.route.strip_path => &req.path[p.len()..],
            _ => req.path.as_str(),
        };
        let up_path = join_path(&service.path, rest);
        let nginx_ctx = req.ctx.clone();
        Sim {
            phase: Phase::Access,
            method: req.method.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
            up_host: service.host.clone(),
            up_scheme,
            up_port,
            up_path,
            up_name: None,
            up_host_header: None,
            sent: None,
            service_res: None,
            client: ClientResponse {
                status: 200,
                headers: HeaderList::new(),
                body: Vec::new(),
                source: ResponseSource::Service,
            },
            pending: Vec::new(),
            ctx_shared: Map::new(),
            nginx_ctx,
            serialize_values: Vec::new(),
            consumer: req.consumer.clone(),
            credential: req.credential.clone(),
            logs: Vec::new(),
            calls: Vec::new(),
            kong_errors: Vec::new(),
            buffered,
            world,
            req,
            body_dir,
            body_file: None,
        }
    }

    /// Answers one PDK call as Kong would in the current phase.
    pub(crate) fn answer(&mut self, call: &Call) -> Reply {
        let phase = self.phase;
        let result = match rules::spec(&call.method) {
            None => Ok(lua_only(call)),
            Some(spec) if !spec.allows(phase) => Err(spec.refusal(phase)),
            Some(spec) => self.dispatch(spec, &call.args),
        };
        match result {
            Ok(Answer::Frame(bytes)) => {
                self.calls
                    .push(PdkCall::new(phase, call, CallOutcome::Answered));
                Reply::Frame(bytes)
            }
            Ok(Answer::Unhandled) => {
                self.calls
                    .push(PdkCall::new(phase, call, CallOutcome::Unhandled));
                Reply::empty()
            }
            Err(reason) => {
                self.kong_errors.push(format!("[{phase}] {reason}"));
                self.calls
                    .push(PdkCall::new(phase, call, CallOutcome::Rejected(reason)));
                Reply::Reject
            }
        }
    }

    fn is_trusted(&self, addr: &str) -> bool {
        self.req.trusted_ips.iter().any(|r| values::ip_in(addr, r))
    }

    fn client_trusted(&self) -> bool {
        self.is_trusted(&self.req.client_ip)
    }

    /// `remote_addr` after nginx's realip module.
    fn forwarded_ip(&self) -> String {
        if self.client_trusted() {
            let name = &self.req.real_ip_header;
            let found = if name.eq_ignore_ascii_case("x-forwarded-for") {
                let all = self.headers.get_all(name).join(",");
                all.rsplit(',').next().map(|s| s.trim().to_owned())
            } else {
                first_header(&self.headers, name).map(|s| s.trim().to_owned())
            };
            if let Some(ip) = found.filter(|s| !s.is_empty()) {
                return ip;
            }
        }
        self.req.client_ip.clone()
    }

    /// `$host`: the Host header without port, lower-cased.
    fn host(&self) -> String {
        match self.req.headers.get("host") {
            Some(h) => split_port(h).0.to_ascii_lowercase(),
            None => self.req.host.clone(),
        }
    }

    fn raw_query(&self) -> &str {
        self.query.as_deref().unwrap_or("")
    }

    /// Response-header changes: before the upstream answered they are kept
    /// and applied on top of the upstream's headers.
    fn response_op(&mut self, op: HeaderOp) {
        op.apply(&mut self.client.headers);
        if self.service_res.is_none() {
            self.pending.push(op);
        }
    }

    fn service_header_host(&self) -> String {
        if let Some(h) = &self.up_host_header {
            return h.clone();
        }
        if self.req.route.preserve_host {
            if let Some(h) = self.req.headers.get("host") {
                return h.to_owned();
            }
        }
        let default = if self.up_scheme == "https" { 443 } else { 80 };
        if self.up_port == default {
            self.up_host.clone()
        } else {
            format!("{}:{}", self.up_host, self.up_port)
        }
    }

    /// The request as the upstream gets it now.
    pub(crate) fn upstream_request(&self) -> UpstreamRequest {
        let mut headers = self.headers.clone();
        headers.set("host", self.service_header_host());
        UpstreamRequest {
            method: self.method.clone(),
            scheme: self.up_scheme.clone(),
            host: self.up_host.clone(),
            port: self.up_port,
            path: self.up_path.clone(),
            query: self.raw_query().to_owned(),
            headers,
            body: self.body.clone(),
            upstream: self.up_name.clone(),
        }
    }

    /// Kong proxies the request; `res` is the upstream's answer.
    pub(crate) fn proxy(&mut self, sent: UpstreamRequest, res: UpstreamResponse) {
        let mut headers = res.headers.clone();
        // Kong copies a buffered response's headers with
        // `kong.response.set_headers`, which ignores Transfer-Encoding (the
        // body it holds is already de-chunked).
        if self.buffered {
            headers.remove("transfer-encoding");
        }
        for op in &self.pending {
            op.apply(&mut headers);
        }
        self.client = ClientResponse {
            status: res.status,
            headers,
            body: res.body.clone(),
            source: ResponseSource::Service,
        };
        self.sent = Some(sent);
        self.service_res = Some(res);
    }

    /// `kong.response.exit` (or Kong's own error response): status, body,
    /// and headers replacing those of the same name.
    pub(crate) fn respond(
        &mut self,
        status: u16,
        body: Vec<u8>,
        headers: &HeaderList,
        source: ResponseSource,
    ) {
        let mut names: Vec<&str> = headers
            .iter()
            .map(|(k, _)| k)
            // Kong's `send` ignores (and warns about) Transfer-Encoding.
            .filter(|k| !k.eq_ignore_ascii_case("transfer-encoding"))
            .collect();
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        // ... and sets Content-Length to the body's length unless given.
        if !names
            .iter()
            .any(|k| k.eq_ignore_ascii_case("content-length"))
        {
            self.client
                .headers
                .set("Content-Length", body.len().to_string());
        }
        for name in names {
            let values: Vec<String> = headers
                .get_all(name)
                .into_iter()
                .map(str::to_owned)
                .collect();
            self.client.headers.set_all(name, values);
        }
        self.client.status = status;
        self.client.body = body;
        self.client.source = source;
    }

    /// The TLS handshake failed: no HTTP response at all.
    pub(crate) fn no_response(&mut self) {
        self.client = ClientResponse {
            status: 0,
            headers: HeaderList::new(),
            body: Vec::new(),
            source: ResponseSource::None,
        };
    }

    fn dispatch(&mut self, spec: &Spec, raw: &[u8]) -> Res {
        let phase = self.phase;
        match spec.name {
            "kong.client.get_ip" => text(self.req.client_ip.clone()),
            "kong.client.get_forwarded_ip" => text(self.forwarded_ip()),
            "kong.client.get_port" | "kong.client.get_forwarded_port" => int(self.req.client_port),
            "kong.client.get_credential" => frame(self.credential.clone().unwrap_or_default()),
            "kong.client.get_consumer" => frame(self.consumer.clone().unwrap_or_default()),
            "kong.client.load_consumer" => {
                let spec: pb::ConsumerSpec = arg(raw)?;
                if !values::is_uuid(&spec.id) && !spec.by_username {
                    return Err(format!(
                        "kong.client.load_consumer: cannot load a consumer with an id that is not a uuid ({:?}); pass by_username",
                        spec.id
                    ));
                }
                let mut known = self.world.consumers.iter().chain(self.consumer.iter());
                let by_id = known.clone().find(|c| c.id == spec.id);
                let found = by_id.or_else(|| {
                    spec.by_username
                        .then(|| known.find(|c| c.username == spec.id))
                        .flatten()
                });
                frame(found.cloned().unwrap_or_default())
            }
            "kong.client.authenticate" => {
                let a: pb::AuthenticateArgs = arg(raw)?;
                if a.consumer.is_none() && a.credential.is_none() {
                    return Err(
                        "kong.client.authenticate: either credential or consumer must be provided"
                            .into(),
                    );
                }
                self.consumer = a.consumer;
                self.credential = a.credential;
                nothing()
            }
            "kong.client.get_protocol" => {
                let allow_terminated = arg::<pb::Bool>(raw)?.v;
                let protocols = &self.req.route.protocols;
                match protocols.as_slice() {
                    [] => text(""),
                    [one] => text(one.clone()),
                    _ if phase == Phase::Log => Err(
                        "kong.client.get_protocol on a route with several protocols reads the client address, \
                         which Kong cannot do in the log phase"
                            .into(),
                    ),
                    _ => {
                        let forwarded_https = allow_terminated
                            && self.client_trusted()
                            && first_header(&self.headers, "x-forwarded-proto")
                                .is_some_and(|p| p.eq_ignore_ascii_case("https"));
                        text(if self.req.is_tls() || forwarded_https { "https" } else { "http" })
                    }
                }
            }
            "kong.ctx.shared.set" => {
                let kv: pb::Kv = arg(raw)?;
                match kv.v.as_ref().map(values::to_json) {
                    None | Some(Json::Null) => self.ctx_shared.remove(&kv.k),
                    Some(v) => self.ctx_shared.insert(kv.k, v),
                };
                nothing()
            }
            "kong.ctx.shared.get" => {
                let key = arg::<pb::Str>(raw)?.v;
                frame(
                    self.ctx_shared
                        .get(&key)
                        .map_or_else(values::nil, values::from_json),
                )
            }
            "kong.ip.is_trusted" => {
                let addr = arg::<pb::Str>(raw)?.v;
                frame(pb::Bool {
                    v: self.is_trusted(&addr),
                })
            }
            "kong.log.set_serialize_value" => {
                let kv: pb::Kv = arg(raw)?;
                if kv.k.is_empty() {
                    return Err(
                        "kong.log.set_serialize_value: key must be a non-empty string".into(),
                    );
                }
                let v = kv.v.as_ref().map_or(Json::Null, values::to_json);
                self.serialize_values.push((kv.k, v));
                nothing()
            }
            "kong.log.serialize" => text(self.log_record().to_string()),
            "kong.nginx.get_var" => {
                let name = arg::<pb::Str>(raw)?.v;
                match self.var(&name) {
                    Some(v) => text(v),
                    None => Ok(Answer::Unhandled),
                }
            }
            "kong.nginx.get_tls1_version_str" => text(if self.req.is_tls() {
                self.req.tls_version.clone()
            } else {
                String::new()
            }),
            "kong.nginx.set_ctx" => {
                let kv: pb::Kv = arg(raw)?;
                match kv.v.as_ref().map(values::to_json) {
                    None | Some(Json::Null) => self.nginx_ctx.remove(&kv.k),
                    Some(v) => self.nginx_ctx.insert(kv.k, v),
                };
                nothing()
            }
            "kong.nginx.get_ctx" => {
                let key = arg::<pb::Str>(raw)?.v;
                match self.nginx_ctx.get(&key) {
                    Some(v) => frame(values::from_json(v)),
                    // Kong's own ctx values are not modelled.
                    None if key.starts_with("KONG_") => Ok(Answer::Unhandled),
                    None => frame(values::nil()),
                }
            }
            "kong.nginx.req_start_time" => frame(pb::Number {
                v: self.req.start_time,
            }),
            "kong.nginx.get_subsystem" => text("http"),
            "kong.node.get_id" => text(self.world.node_id.clone()),
            "kong.node.get_memory_stats" => frame(memory_stats()),
            "kong.request.get_scheme" => text(self.req.scheme.clone()),
            "kong.request.get_host" => text(self.host()),
            "kong.request.get_port" => int(self.req.port),
            "kong.request.get_forwarded_scheme" => {
                let forwarded = self
                    .client_trusted()
                    .then(|| first_header(&self.headers, "x-forwarded-proto"))
                    .flatten();
                text(forwarded.map_or_else(|| self.req.scheme.clone(), |s| s.to_ascii_lowercase()))
            }
            "kong.request.get_forwarded_host" => {
                let forwarded = self
                    .client_trusted()
                    .then(|| first_header(&self.headers, "x-forwarded-host"))
                    .flatten();
                text(forwarded.map_or_else(
                    || self.host(),
                    |h| {
                        split_port(h.split(',').next().unwrap_or(h).trim())
                            .0
                            .to_ascii_lowercase()
                    },
                ))
            }
            "kong.request.get_forwarded_port" => {
                if self.client_trusted() {
                    let port = first_header(&self.headers, "x-forwarded-port")
                        .and_then(|p| p.trim().parse::<u16>().ok())
                        .or_else(|| {
                            first_header(&self.headers, "x-forwarded-host")
                                .and_then(|h| split_port(h).1)
                                .and_then(|p| p.parse::<u16>().ok())
                        });
                    if let Some(p) = port {
                        return int(p);
                    }
                }
                int(self.req.port)
            }
            "kong.request.get_http_version" => frame(pb::Number {
                v: self.req.http_version,
            }),
            "kong.request.get_method" => text(self.method.clone()),
            "kong.request.get_path" => text(values::normalize_path(&self.req.path)),
            "kong.request.get_path_with_query" => text(self.req.request_uri()),
            "kong.request.get_raw_query" => text(self.raw_query().to_owned()),
            "kong.request.get_query_arg" => {
                let name = arg::<pb::Str>(raw)?.v;
                match values::parse_query(self.raw_query())
                    .into_iter()
                    .find(|(k, _)| *k == name)
                {
                    None => text(""),
                    Some((_, Some(v))) => text(v),
                    Some((_, None)) => Err(format!(
                        "kong.request.get_query_arg({name:?}): the argument is a flag without `=`, \
                         which Kong reads as `true` and cannot encode as a String"
                    )),
                }
            }
            "kong.request.get_query" => {
                let max = check_max(arg::<pb::Int>(raw)?.v, "max_args")?;
                frame(values::multimap_struct(&values::query_multimap(
                    self.raw_query(),
                    max,
                )))
            }
            "kong.request.get_header" => {
                let name = arg::<pb::Str>(raw)?.v;
                if phase == Phase::Log {
                    // The log timer reads its saved `ngx.req.get_headers()`.
                    text(table_header(&self.headers, &name).unwrap_or_default())
                } else {
                    text(nginx_var_header(&self.headers, &name))
                }
            }
            "kong.request.get_headers" => {
                let max = arg::<pb::Int>(raw)?.v;
                // The log phase returns the saved headers and ignores `max`.
                let max = if phase == Phase::Log {
                    100
                } else {
                    check_max(max, "max_headers")?
                };
                frame(headers_struct(&self.headers, max))
            }
            "kong.request.get_raw_body" => {
                if self.body.len() > self.req.body_buffer_size {
                    let path = self.spill_body()?;
                    frame(pb::RawBodyResult {
                        kind: Some(RawKind::BodyFilepath(path)),
                    })
                } else {
                    frame(pb::RawBodyResult {
                        kind: Some(RawKind::Content(self.body.clone())),
                    })
                }
            }
            "kong.request.get_uri_captures" => frame(self.req.uri_captures.clone()),
            "kong.response.get_status" => int(self.client.status),
            "kong.response.get_header" => {
                let name = arg::<pb::Str>(raw)?.v;
                text(table_header(&self.client.headers, &name).unwrap_or_default())
            }
            "kong.response.get_headers" => {
                let max = arg::<pb::Int>(raw)?.v;
                let max = if phase == Phase::Log {
                    100
                } else {
                    check_max(max, "max_headers")?
                };
                frame(headers_struct(&self.client.headers, max))
            }
            "kong.response.get_source" => text(self.client.source.as_str()),
            "kong.response.set_status" => {
                let status = arg::<pb::Int>(raw)?.v;
                if !(100..=599).contains(&status) {
                    return Err(format!(
                        "kong.response.set_status: code must be a number between 100 and 599, got {status}"
                    ));
                }
                self.client.status = u16::try_from(status).unwrap_or(500);
                nothing()
            }
            "kong.response.set_header" | "kong.response.add_header" => {
                let kv: pb::Kv = arg(raw)?;
                let vals = header_values(kv.v.as_ref(), &kv.k)?;
                let op = if spec.name.ends_with("set_header") {
                    HeaderOp::Set(kv.k, vals)
                } else {
                    HeaderOp::Add(kv.k, vals)
                };
                self.response_op(op);
                nothing()
            }
            "kong.response.clear_header" => {
                let name = arg::<pb::Str>(raw)?.v;
                self.response_op(HeaderOp::Set(name, Vec::new()));
                nothing()
            }
            "kong.response.set_headers" => {
                for (name, vals) in struct_headers(&arg::<pb::Struct>(raw)?)? {
                    self.response_op(HeaderOp::Set(name, vals));
                }
                nothing()
            }
            "kong.router.get_route" => frame(self.req.route.clone()),
            "kong.router.get_service" => frame(self.req.service.clone()),
            "kong.service.set_upstream" => {
                let name = arg::<pb::Str>(raw)?.v;
                if self.world.upstreams.contains(&name) {
                    self.up_host = name.clone();
                    self.up_name = Some(name);
                    frame(pb::Bool { v: true })
                } else {
                    // Kong returns nil and an error message, which the
                    // protocol drops: the plugin reads `false`.
                    nothing()
                }
            }
            "kong.service.set_target" => {
                let t: pb::Target = arg(raw)?;
                if t.host.is_empty() {
                    return Err("kong.service.set_target: host must be a non-empty string".into());
                }
                let port = u16::try_from(t.port).map_err(|_| {
                    format!("kong.service.set_target: port must be an integer between 0 and 65535: given {}", t.port)
                })?;
                self.up_host = t.host;
                self.up_port = port;
                self.up_name = None;
                nothing()
            }
            "kong.service.request.set_scheme" => {
                let scheme = arg::<pb::Str>(raw)?.v;
                if scheme != "http" && scheme != "https" {
                    return Err(format!(
                        "kong.service.request.set_scheme: invalid scheme: {scheme:?} (http or https)"
                    ));
                }
                self.up_scheme = scheme;
                nothing()
            }
            "kong.service.request.set_path" => {
                let path = arg::<pb::Str>(raw)?.v;
                if !path.starts_with('/') {
                    return Err(format!(
                        "kong.service.request.set_path: path must start with /, got {path:?}"
                    ));
                }
                self.up_path = path;
                nothing()
            }
            "kong.service.request.set_raw_query" => {
                self.query = Some(arg::<pb::Str>(raw)?.v);
                nothing()
            }
            "kong.service.request.set_method" => {
                let method = arg::<pb::Str>(raw)?.v;
                if !METHODS.contains(&method.as_str()) {
                    return Err(format!(
                        "kong.service.request.set_method: invalid method: {method:?}"
                    ));
                }
                self.method = method;
                nothing()
            }
            "kong.service.request.set_query" => {
                let st: pb::Struct = arg(raw)?;
                self.query = Some(encode_query(&st)?);
                nothing()
            }
            "kong.service.request.set_header" | "kong.service.request.add_header" => {
                let kv: pb::Kv = arg(raw)?;
                let vals = header_values(kv.v.as_ref(), &kv.k)?;
                let set = spec.name.ends_with("set_header");
                if kv.k.eq_ignore_ascii_case("host") {
                    self.up_host_header = vals.first().cloned();
                }
                if set {
                    self.headers.set_all(kv.k, vals);
                } else {
                    for v in vals {
                        self.headers.add(kv.k.clone(), v);
                    }
                }
                nothing()
            }
            "kong.service.request.clear_header" => {
                let name = arg::<pb::Str>(raw)?.v;
                if name.eq_ignore_ascii_case("host") {
                    self.up_host_header = None;
                }
                self.headers.remove(&name);
                nothing()
            }
            "kong.service.request.set_headers" => {
                for (name, vals) in struct_headers(&arg::<pb::Struct>(raw)?)? {
                    if name.eq_ignore_ascii_case("host") {
                        self.up_host_header = vals.first().cloned();
                    }
                    self.headers.set_all(name, vals);
                }
                nothing()
            }
            "kong.service.request.set_raw_body" => {
                self.body = arg::<pb::ByteString>(raw)?.v;
                self.headers
                    .set("Content-Length", self.body.len().to_string());
                nothing()
            }
            "kong.service.response.get_status"
            | "kong.service.response.get_header"
            | "kong.service.response.get_headers" => {
                let res = match &self.service_res {
                    Some(res) if self.buffered || phase != Phase::Log => res,
                    _ if phase == Phase::Log => {
                        return Err(format!(
                            "{} in the log phase reads nginx's upstream response, which the log timer cannot \
                             (only a buffered response, i.e. a plugin with a response phase, is saved)",
                            spec.name
                        ));
                    }
                    _ => return nothing(),
                };
                match spec.name {
                    "kong.service.response.get_status" => int(res.status),
                    "kong.service.response.get_header" => {
                        let name = arg::<pb::Str>(raw)?.v;
                        text(first_header(&res.headers, &name).unwrap_or_default())
                    }
                    _ => {
                        let max = check_max(arg::<pb::Int>(raw)?.v, "max_headers")?;
                        if self.buffered {
                            // Kong's buffered headers table is an empty
                            // proxy whose `__index` finds names: `pairs`
                            // sees nothing, so the protocol carries `{}`.
                            frame(pb::Struct::default())
                        } else {
                            frame(headers_struct(&res.headers, max))
                        }
                    }
                }
            }
            "kong.service.response.get_raw_body" => {
                if !self.buffered {
                    return Err(
                        "kong.service.response.get_raw_body: service body is only available with buffered proxying \
                         (Kong buffers only when a plugin has a response phase)"
                            .into(),
                    );
                }
                let body = self
                    .service_res
                    .as_ref()
                    .map(|r| r.body.clone())
                    .unwrap_or_default();
                frame(pb::ByteString { v: body })
            }
            _ => {
                if let Some(level) = LogLevel::of_method(spec.name) {
                    let list: pb::ListValue = arg(raw)?;
                    let message: String = list.values.iter().map(values::lua_tostring).collect();
                    self.logs.push(LogEntry {
                        phase,
                        level,
                        message,
                    });
                    return nothing();
                }
                // kong.response.exit never reaches here: the driver handles it.
                Ok(Answer::Unhandled)
            }
        }
    }

    /// A body larger than `client_body_buffer_size` is in a temp file.
    fn spill_body(&mut self) -> Result<String, String> {
        if let Some(p) = &self.body_file {
            return Ok(p.display().to_string());
        }
        let path = self.body_dir.join("0000000001");
        std::fs::write(&path, &self.body)
            .map_err(|e| format!("cannot write the request body to {}: {e}", path.display()))?;
        self.body_file = Some(path.clone());
        Ok(path.display().to_string())
    }

    /// `ngx.var[name]`, when the simulation knows it.
    fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.req.vars.get(name) {
            return Some(v.clone());
        }
        let tls = self.req.is_tls();
        Some(match name {
            "request_uri" => self.req.request_uri(),
            "uri" => values::normalize_path(&self.req.path),
            "args" | "query_string" => self.raw_query().to_owned(),
            "is_args" => if self.raw_query().is_empty() { "" } else { "?" }.into(),
            "request_method" => self.method.clone(),
            "scheme" => self.req.scheme.clone(),
            "https" => if tls { "on" } else { "" }.into(),
            "host" => self.host(),
            "server_port" => self.req.port.to_string(),
            "server_protocol" => format!("HTTP/{:.1}", self.req.http_version),
            "remote_addr" => self.forwarded_ip(),
            "remote_port" | "realip_remote_port" => self.req.client_port.to_string(),
            "realip_remote_addr" => self.req.client_ip.clone(),
            "content_type" => first_header(&self.headers, "content-type")
                .unwrap_or_default()
                .into(),
            "content_length" => first_header(&self.headers, "content-length")
                .unwrap_or_default()
                .into(),
            "ssl_protocol" => {
                if tls {
                    self.req.tls_version.clone()
                } else {
                    String::new()
                }
            }
            "ssl_server_name" => {
                if tls {
                    self.host()
                } else {
                    String::new()
                }
            }
            "request_id" => "7f9c3e1a2b4d5c6e8f0a1b2c3d4e5f60".into(),
            "upstream_uri" => self.up_path.clone(),
            "upstream_scheme" => self.up_scheme.clone(),
            "upstream_host" => self.service_header_host(),
            "upstream_status" => self
                .service_res
                .as_ref()
                .map(|r| r.status.to_string())
                .unwrap_or_default(),
            _ => {
                if let Some(h) = name.strip_prefix("http_") {
                    return Some(first_header(&self.headers, h).unwrap_or_default().into());
                }
                if let Some(a) = name.strip_prefix("arg_") {
                    let raw = self.raw_query().split('&').find_map(|seg| {
                        let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
                        k.eq_ignore_ascii_case(a).then(|| v.to_owned())
                    });
                    return Some(raw.unwrap_or_default());
                }
                return None;
            }
        })
    }

    /// Kong's `kong.log.serialize()` record of this request, with the
    /// values from `kong.log.set_serialize_value`.
    pub(crate) fn log_record(&self) -> Json {
        let req = &self.req;
        let request_uri = req.request_uri();
        // Kong writes the port even when it is the scheme's default
        // (`ctx.host_port or var.server_port`, kong/pdk/log.lua).
        let authority = format!("{}:{}", self.host(), req.port);
        let mut request = json!({
            "method": self.method,
            "uri": request_uri,
            "url": format!("{}://{authority}{request_uri}", req.scheme),
            "querystring": values::multimap_json(&values::query_multimap(self.raw_query(), 100)),
            "headers": values::multimap_json(&opt_group(&self.headers, 100)),
            "size": self.body.len(),
        });
        if req.is_tls() {
            request["tls"] = json!({"version": req.tls_version});
        }
        let mut record = json!({
            "request": request,
            "response": {
                "status": self.client.status,
                "headers": values::multimap_json(&opt_group(&self.client.headers, 100)),
                "size": self.client.body.len(),
            },
            "route": route_json(&req.route),
            "service": service_json(&req.service),
            "latencies": {"kong": 0, "proxy": if self.sent.is_some() { 0 } else { -1 }, "request": 0, "receive": 0},
            "client_ip": self.forwarded_ip(),
            "started_at": (req.start_time * 1000.0).round() as i64,
            "workspace": self.world.workspace_id,
            "workspace_name": "default",
            "source": if self.client.source == ResponseSource::Service { "upstream" } else { "kong" },
        });
        if let Some(sent) = &self.sent {
            record["upstream_uri"] = Json::String(sent.path_with_query());
            record["tries"] = json!([{"ip": sent.host, "port": sent.port, "balancer_latency": 0}]);
        }
        if let Some(res) = &self.service_res {
            record["upstream_status"] = Json::String(res.status.to_string());
        }
        if let Some(c) = &self.consumer {
            record["consumer"] = rules::consumer_json(c);
        }
        if let Some(c) = &self.credential {
            record["authenticated_entity"] = json!({"id": c.id, "consumer_id": c.consumer_id});
        }
        for (k, v) in &self.serialize_values {
            values::set_dotted(&mut record, k, v.clone());
        }
        record
    }
}

fn opt_group(headers: &HeaderList, max: usize) -> BTreeMap<String, Vec<Option<String>>> {
    headers
        .grouped(max)
        .into_iter()
        .map(|(k, vs)| (k, vs.into_iter().map(Some).collect()))
        .collect()
}

fn headers_struct(headers: &HeaderList, max: usize) -> pb::Struct {
    values::multimap_struct(&opt_group(headers, max))
}

/// A `set_headers` table: name → values (an empty list clears).
fn struct_headers(st: &pb::Struct) -> Result<Vec<(String, Vec<String>)>, String> {
    st.fields
        .iter()
        .map(|(k, v)| {
            let vals = match &v.kind {
                Some(ValueKind::ListValue(l)) if l.values.is_empty() => Vec::new(),
                _ => header_values(Some(v), k)?,
            };
            Ok((k.clone(), vals))
        })
        .collect()
}

/// Kong's `encode_args`: sorted names, `true` flags as bare names, `false`
/// skipped, lists repeated.
fn encode_query(st: &pb::Struct) -> Result<String, String> {
    let mut parts = Vec::new();
    for (k, v) in &st.fields {
        let items: Vec<&pb::Value> = match &v.kind {
            Some(ValueKind::ListValue(l)) => l.values.iter().collect(),
            _ => vec![v],
        };
        for item in items {
            match &item.kind {
                Some(ValueKind::BoolValue(true)) => parts.push(values::escape_uri(k)),
                Some(ValueKind::BoolValue(false)) => {}
                Some(ValueKind::StringValue(s)) => {
                    parts.push(format!(
                        "{}={}",
                        values::escape_uri(k),
                        values::escape_uri(s)
                    ));
                }
                Some(ValueKind::NumberValue(n)) => {
                    parts.push(format!(
                        "{}={}",
                        values::escape_uri(k),
                        values::lua_number(*n)
                    ));
                }
                _ => {
                    return Err(format!(
                        "kong.service.request.set_query: invalid value for argument {k:?}: got {}",
                        describe(Some(item))
                    ));
                }
            }
        }
    }
    Ok(parts.join("&"))
}

fn route_json(r: &pb::Route) -> Json {
    json!({
        "id": r.id, "name": r.name, "created_at": r.created_at, "updated_at": r.updated_at,
        "protocols": r.protocols, "methods": r.methods, "hosts": r.hosts, "paths": r.paths,
        "strip_path": r.strip_path, "preserve_host": r.preserve_host,
        "regex_priority": r.regex_priority, "https_redirect_status_code": r.https_redirect_status_code,
        "tags": r.tags, "service": r.service.as_ref().map(|s| json!({"id": s.id})),
    })
}

fn service_json(s: &pb::Service) -> Json {
    json!({
        "id": s.id, "name": s.name, "created_at": s.created_at, "updated_at": s.updated_at,
        "protocol": s.protocol, "host": s.host, "port": s.port,
        "path": if s.path.is_empty() { Json::Null } else { Json::String(s.path.clone()) },
        "retries": s.retries, "connect_timeout": s.connect_timeout,
        "write_timeout": s.write_timeout, "read_timeout": s.read_timeout, "tags": s.tags,
    })
}

fn memory_stats() -> pb::MemoryStats {
    use pb::memory_stats::{LuaSharedDicts, WorkerLuaVm, lua_shared_dicts::DictStats};
    pb::MemoryStats {
        lua_shared_dicts: Some(LuaSharedDicts {
            kong: Some(DictStats {
                allocated_slabs: 40960,
                capacity: 5_242_880,
            }),
            kong_db_cache: Some(DictStats {
                allocated_slabs: 798_720,
                capacity: 134_217_728,
            }),
        }),
        workers_lua_vms: vec![WorkerLuaVm {
            http_allocated_gc: 1_900_346,
            pid: 27781,
        }],
    }
}

/// Lua PDK functions outside Kong's 74 that MsgPack:1 plugins reach by
/// name (their arguments arrive as a msgpack array, and the answer is the
/// msgpack Lua value). Modelled: Kong's `env` vault
/// (`{vault://env/my-secret}` reads `MY_SECRET` from the environment), and
/// the upstream setters, accepted (they change nothing the echo shows).
fn lua_only(call: &Call) -> Answer {
    let args = match rmpv::decode::read_value(&mut &call.args[..]) {
        Ok(rmpv::Value::Array(args)) => args,
        _ => return Answer::Unhandled,
    };
    let arg = |n: usize| args.get(n).and_then(rmpv::Value::as_str).unwrap_or("");
    let value = |v: rmpv::Value| {
        let mut out = Vec::new();
        let _ = rmpv::encode::write_value(&mut out, &v);
        Answer::Frame(out)
    };
    let env_reference = |r: &str| {
        let name = r.strip_prefix("{vault://env/")?.strip_suffix('}')?;
        let name = name.split('/').next()?;
        Some(name.to_ascii_uppercase().replace('-', "_"))
    };
    match call.method.as_str() {
        "kong.vault.get" => match env_reference(arg(0)).and_then(|n| std::env::var(n).ok()) {
            Some(secret) => value(rmpv::Value::from(secret)),
            None => Answer::Frame(Vec::new()),
        },
        "kong.vault.is_reference" => {
            let r = arg(0);
            value(rmpv::Value::Boolean(
                r.starts_with("{vault://") && r.ends_with('}'),
            ))
        }
        "kong.service.set_timeouts" | "kong.service.set_retries" => Answer::Frame(Vec::new()),
        "kong.service.set_tls_verify" | "kong.service.set_tls_verify_depth" => {
            value(rmpv::Value::Boolean(true))
        }
        _ => Answer::Unhandled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_sim(phase: Phase) -> Sim {
        let world = World {
            consumers: Vec::new(),
            upstreams: Vec::new(),
            node_id: "n".into(),
            workspace_id: "w".into(),
        };
        let request = Request::get("http://example.com/?flag&a=1").header("x-a", "1");
        let mut sim = Sim::new(request, world, false, std::env::temp_dir());
        sim.phase = phase;
        sim
    }

    fn call<M: Message>(method: &str, args: M) -> Call {
        Call {
            method: method.into(),
            args: args.encode_to_vec(),
        }
    }

    #[test]
    fn max_arguments_outside_1_to_1000_are_rejected() {
        let mut sim = new_sim(Phase::Access);
        for method in ["kong.request.get_headers", "kong.request.get_query"] {
            for (max, ok) in [
                (0, false),
                (1, true),
                (1000, true),
                (1001, false),
                (-1, false),
            ] {
                let reply = sim.answer(&call(method, pb::Int { v: max }));
                assert_eq!(reply != Reply::Reject, ok, "{method}({max})");
            }
        }
        assert_eq!(sim.kong_errors[0], "[access] max_headers must be >= 1");
        // The log phase returns the saved headers and ignores max.
        let mut in_log = new_sim(Phase::Log);
        let reply = in_log.answer(&call("kong.request.get_headers", pb::Int { v: 0 }));
        assert_ne!(reply, Reply::Reject);
    }

    #[test]
    fn a_nil_header_value_or_no_identity_is_a_kong_error() {
        let mut sim = new_sim(Phase::Access);
        let nil = pb::Kv {
            k: "x".into(),
            v: None,
        };
        assert_eq!(
            sim.answer(&call("kong.response.set_header", nil.clone())),
            Reply::Reject
        );
        assert_eq!(
            sim.answer(&call("kong.service.request.set_header", nil)),
            Reply::Reject
        );
        let neither = pb::AuthenticateArgs::default();
        assert_eq!(
            sim.answer(&call("kong.client.authenticate", neither)),
            Reply::Reject
        );
        let not_uuid = pb::ConsumerSpec {
            id: "ann".into(),
            by_username: false,
        };
        assert_eq!(
            sim.answer(&call("kong.client.load_consumer", not_uuid)),
            Reply::Reject
        );
        assert_eq!(
            sim.answer(&call(
                "kong.request.get_query_arg",
                pb::Str { v: "flag".into() }
            )),
            Reply::Reject
        );
    }

    #[test]
    fn unknown_methods_are_unhandled_and_answered_with_nil() {
        let mut sim = new_sim(Phase::Access);
        let reply = sim.answer(&call(
            "kong.vault.get",
            pb::Str {
                v: "{vault://x}".into(),
            },
        ));
        assert_eq!(reply, Reply::empty());
        assert_eq!(sim.calls[0].outcome, CallOutcome::Unhandled);
        // Args of an unknown method are shown raw (here, UTF-8 text).
        assert_eq!(sim.calls[0].args, Json::String("\n\u{b}{vault://x}".into()));
    }

    #[test]
    fn nil_answers_are_empty_frames_and_nil_values() {
        let mut sim = new_sim(Phase::Access);
        let reply = sim.answer(&call(
            "kong.request.get_header",
            pb::Str { v: "absent".into() },
        ));
        assert_eq!(reply, Reply::empty());
        let reply = sim.answer(&call("kong.ctx.shared.get", pb::Str { v: "absent".into() }));
        // Kong's nil Value: null_value = 1.
        assert_eq!(reply, Reply::Frame(vec![0x08, 0x01]));
        let reply = sim.answer(&call(
            "kong.request.get_header",
            pb::Str { v: "X_A".into() },
        ));
        assert_eq!(reply, Reply::message(&pb::Str { v: "1".into() }));
    }
}
