//! One HTTP request through the gateway, phase by phase as Kong runs it.
//!
//! 1. `rewrite`: global plugins only, before routing.
//! 2. Routing; no route → `404 {"message":"no Route matched with those values"}`.
//! 3. `access`: the plugins of the route (most specific config per plugin:
//!    route+service+consumer … global), highest priority first; every
//!    plugin is collected for `response`/`log` even after an exit, as Kong
//!    does. `kong.response.exit` or a failure ends the handlers.
//! 4. The upstream request, with the plugins' changes.
//! 5. `response`, when a collected plugin has it: the upstream response is
//!    buffered and handed to the plugins; otherwise it is streamed.
//! 6. The client response, with Kong's headers.
//! 7. `log`, after the response body was sent, on the saved request data.
//!
//! PDK calls are answered by the simulated Kong of `kong-pdk-test`
//! ([`kong_pdk_test::live::Exchange`]), so the gateway and the test kit
//! apply the same rules.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request as HttpRequest, Response as HttpResponse};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kong_pdk::Phase;
use kong_pdk_proto as pb;
use kong_pdk_test::live::Exchange;
use kong_pdk_test::{
    Call, HeaderList, LogLevel, PhaseEnd, Reply, Request, ResponseSource, UpstreamRequest,
    UpstreamResponse,
};
use prost::Message;
use serde_json::{Value, json};

use crate::log;
use crate::router;
use crate::serve::{self, Body};
use crate::setup::{ConfiguredPlugin, NODE_ID, Setup, WORKSPACE_ID};
use crate::tracked::{Tasks, Tracked};

/// `Via` on proxied responses.
pub const VIA: &str = "1.1 kong-pdk-dev";
/// `Server` on responses the gateway produces itself.
pub const SERVER: &str = concat!("kong-pdk-dev/", env!("CARGO_PKG_VERSION"));
/// nginx's `client_body_buffer_size`: larger bodies reach plugins as a file.
const BODY_BUFFER_SIZE: usize = 8192;

/// Headers that do not cross a proxy.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The proxy: configuration, upstream client, background log tasks.
#[derive(Debug)]
pub struct Proxy {
    setup: std::sync::RwLock<Arc<Setup>>,
    client: Client<HttpConnector, Full<Bytes>>,
    body_dir: PathBuf,
    counter: AtomicU64,
    /// The running `log` phases.
    pub tasks: Tasks,
}

/// Timings of one request.
#[derive(Debug, Clone, Copy, Default)]
struct Timings {
    /// Request start → upstream request sent.
    proxy_ms: Option<u64>,
    /// Upstream request sent → upstream response headers.
    upstream_ms: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a phase loop ended with.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Answered,
}

impl Proxy {
    /// A proxy for `setup`; request bodies larger than 8 KiB are spilled
    /// under `body_dir` for `kong.request.get_raw_body`.
    pub fn new(setup: Setup, body_dir: PathBuf) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Proxy {
            setup: std::sync::RwLock::new(Arc::new(setup)),
            client,
            body_dir,
            counter: AtomicU64::new(0),
            tasks: Tasks::default(),
        }
    }

    /// The configuration requests start with now.
    pub fn setup(&self) -> Arc<Setup> {
        Arc::clone(&self.setup.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the configuration (requests in flight keep theirs).
    pub fn replace_setup(&self, setup: Setup) {
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(setup);
    }

    /// Runs one event and logs what the plugin and Kong logged.
    async fn run(
        &self,
        ex: &mut Exchange,
        plugin: &ConfiguredPlugin,
        phase: Phase,
        ctx: &LogCtx,
    ) -> PhaseEnd {
        ex.set_phase(phase);
        let ran = plugin
            .server
            .handle_event(&plugin.instance, phase.as_str(), |call| {
                answer(ex, call, ctx)
            })
            .await;
        let end = match ran {
            Ok(result) => ex.finish_event(phase, result),
            Err(e) => ex.fail(phase, e.to_string()),
        };
        for entry in ex.take_logs() {
            let line = format!("[{}] {}", plugin.name(), entry.message);
            match entry.level {
                LogLevel::Alert | LogLevel::Crit | LogLevel::Err => log::error(line),
                LogLevel::Warn => log::warn(line),
                LogLevel::Notice => log::notice(line),
                LogLevel::Info | LogLevel::Debug => log::info(line),
            }
        }
        for e in ex.take_kong_errors() {
            log::error(format!("[{}] {e}", plugin.name()));
        }
        if let PhaseEnd::Failed { reason } = &end {
            log::error(format!(
                "[{}] {phase} phase failed: {reason}",
                plugin.name()
            ));
        }
        end
    }

    /// Handles one client request.
    pub async fn handle(
        self: Arc<Self>,
        req: HttpRequest<Incoming>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> HttpResponse<Body> {
        let t0 = Instant::now();
        let setup = self.setup();
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = format!("{:016x}{:016x}", started.to_bits(), n);
        let (parts, body) = req.into_parts();
        let method = parts.method.as_str().to_owned();
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let version = match parts.version {
            hyper::Version::HTTP_10 => "HTTP/1.0",
            hyper::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        let request_line = format!("{method} {target} {version}");
        let path = parts.uri.path().to_owned();
        if !path.starts_with('/') {
            return kong_error(400, "Bad request", &request_id, t0);
        }
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                log::warn(format!("{peer}: cannot read the request body: {e}"));
                return kong_error(400, "Bad request", &request_id, t0);
            }
        };
        let host_header = parts
            .headers
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map_or_else(|| local.to_string(), str::to_owned);

        let route_match = router::find(
            &setup.decl.routes,
            &method,
            &host_header,
            &router::normalize_path(&path),
        );
        let route_index = route_match.as_ref().map(|m| m.route);
        let service_index = route_index.and_then(|r| setup.decl.routes[r].service);

        let mut request = Request::new(
            &method,
            &format!(
                "http://{}:{}{target}",
                url_host(&host_header, local),
                local.port()
            ),
        )
        .without_header("host");
        for (name, value) in &parts.headers {
            request = request.header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
        }
        if !body.is_empty() {
            request = request.body(body.to_vec());
        }
        request = request
            .client_ip(&peer.ip().to_string())
            .client_port(peer.port())
            .http_version(match parts.version {
                hyper::Version::HTTP_10 => 1.0,
                hyper::Version::HTTP_2 => 2.0,
                _ => 1.1,
            })
            .start_time(started)
            .var("request_id", &request_id);
        if let Some(r) = route_index {
            request = request.route(setup.route_pb(r));
        }
        if let Some(s) = service_index {
            request = request.service(setup.service_pb(s));
        }
        let body_dir = self.body_dir.join(n.to_string());
        let spill = body.len() > BODY_BUFFER_SIZE;
        if spill {
            let _ = std::fs::create_dir_all(&body_dir);
        }
        let mut ex = Exchange::new(
            request,
            setup.consumers.clone(),
            NODE_ID,
            WORKSPACE_ID,
            body_dir.clone(),
        );
        // The router runs after `rewrite`: until then, and for good when a
        // rewrite handler answers, `kong.router.*` have nothing.
        let mut ctx = LogCtx::default();

        // 1. rewrite: global plugins, before routing.
        let mut flow = Flow::Continue;
        for server in &setup.servers {
            if !server.info.has(Phase::Rewrite) {
                continue;
            }
            if let Some(plugin) = setup.global(server.plugin()) {
                if self.run(&mut ex, &plugin, Phase::Rewrite, &ctx).await != PhaseEnd::Returned {
                    flow = Flow::Answered;
                    break;
                }
            }
        }

        // 2. routing.
        ctx.routed = flow == Flow::Continue && route_index.is_some();
        let mut collected_log: Option<Vec<Arc<ConfiguredPlugin>>> = None;
        let mut collected_response = Vec::new();
        if flow == Flow::Continue {
            match (route_index, service_index) {
                (None, _) => {
                    respond_error(&mut ex, 404, "no Route matched with those values");
                    flow = Flow::Answered;
                }
                (Some(_), None) => {
                    respond_error(&mut ex, 503, "no Service found with those values");
                    flow = Flow::Answered;
                }
                (Some(r), Some(s)) => {
                    // 3. access, collecting the downstream phases.
                    let route_id = setup.decl.routes[r].id.clone();
                    let service_id = setup.decl.services[s].id.clone();
                    let mut logs = Vec::new();
                    for server in &setup.servers {
                        let consumer = ex
                            .consumer()
                            .map(|c| c.id.clone())
                            .filter(|c| !c.is_empty());
                        let Some(plugin) = setup.lookup(
                            server.plugin(),
                            Some(&route_id),
                            Some(&service_id),
                            consumer.as_deref(),
                        ) else {
                            continue;
                        };
                        if plugin.has(Phase::Response) {
                            collected_response.push(Arc::clone(&plugin));
                            ex.set_buffered(true);
                        }
                        if plugin.has(Phase::Log) {
                            logs.push(Arc::clone(&plugin));
                        }
                        if flow == Flow::Continue
                            && plugin.has(Phase::Access)
                            && self.run(&mut ex, &plugin, Phase::Access, &ctx).await
                                != PhaseEnd::Returned
                        {
                            flow = Flow::Answered;
                        }
                    }
                    collected_log = Some(logs);
                }
            }
        }

        // 4.–5. proxy, and `response` on the buffered response.
        let mut timings = Timings::default();
        let mut streamed: Option<Incoming> = None;
        if flow == Flow::Continue {
            let sent = ex.upstream_request();
            let service = &setup.decl.services[service_index.expect("routed to a service")];
            let prefix = route_match
                .as_ref()
                .filter(|_| route_index.is_some_and(|r| setup.decl.routes[r].strip_path))
                .and_then(|m| m.prefix.clone());
            let upstream_req =
                match build_upstream(&sent, &path, prefix.as_deref(), peer, local, &host_header) {
                    Ok(r) => r,
                    Err(e) => {
                        log::error(format!("cannot build the upstream request: {e}"));
                        respond_error(
                            &mut ex,
                            502,
                            "An invalid response was received from the upstream server",
                        );
                        flow = Flow::Answered;
                        HttpRequest::new(Full::new(Bytes::new()))
                    }
                };
            if flow == Flow::Continue {
                let sent_at = Instant::now();
                timings.proxy_ms = Some(ms(sent_at - t0));
                let limit = Duration::from_millis(
                    service.connect_timeout + service.write_timeout + service.read_timeout,
                );
                let read_timeout = Duration::from_millis(service.read_timeout);
                match tokio::time::timeout(limit, self.client.request(upstream_req)).await {
                    Err(_) => {
                        log::error(format!(
                            "upstream timed out ({} ms) while proxying to {}:{}",
                            ms(limit),
                            sent.host,
                            sent.port
                        ));
                        respond_error(&mut ex, 504, "The upstream server is timing out");
                    }
                    Ok(Err(e)) => {
                        log::error(format!(
                            "upstream {}:{} failed: {e}{}",
                            sent.host,
                            sent.port,
                            std::error::Error::source(&e)
                                .map(|s| format!(": {s}"))
                                .unwrap_or_default()
                        ));
                        respond_error(
                            &mut ex,
                            502,
                            "An invalid response was received from the upstream server",
                        );
                    }
                    Ok(Ok(res)) => {
                        timings.upstream_ms = Some(ms(sent_at.elapsed()));
                        let (rparts, rbody) = res.into_parts();
                        let headers: HeaderList = rparts
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_owned(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect();
                        let status = rparts.status.as_u16();
                        if ex.buffered() {
                            match tokio::time::timeout(read_timeout, rbody.collect()).await {
                                Ok(Ok(b)) => {
                                    let upstream =
                                        UpstreamResponse::new(status).body(b.to_bytes().to_vec());
                                    let upstream = UpstreamResponse {
                                        headers,
                                        ..upstream
                                    };
                                    ex.proxy(sent, upstream);
                                    for plugin in &collected_response {
                                        if self.run(&mut ex, plugin, Phase::Response, &ctx).await
                                            != PhaseEnd::Returned
                                        {
                                            break;
                                        }
                                    }
                                }
                                Ok(Err(e)) => {
                                    log::error(format!(
                                        "reading the upstream response failed: {e}"
                                    ));
                                    respond_error(
                                        &mut ex,
                                        502,
                                        "An invalid response was received from the upstream server",
                                    );
                                }
                                Err(_) => {
                                    log::error("upstream timed out while sending its body");
                                    respond_error(
                                        &mut ex,
                                        504,
                                        "The upstream server is timing out",
                                    );
                                }
                            }
                        } else {
                            let upstream = UpstreamResponse {
                                headers,
                                ..UpstreamResponse::new(status)
                            };
                            ex.proxy(sent, upstream);
                            streamed = Some(rbody);
                        }
                    }
                }
            }
        }

        // 6. the client response, with Kong's headers.
        if timings.upstream_ms.is_some() {
            ex.add_response_header("Via", VIA);
            ex.add_response_header(
                "X-Kong-Upstream-Latency",
                &timings.upstream_ms.unwrap_or(0).to_string(),
            );
            ex.add_response_header(
                "X-Kong-Proxy-Latency",
                &timings.proxy_ms.unwrap_or(0).to_string(),
            );
        } else {
            ex.add_response_header("Server", SERVER);
            ex.add_response_header("X-Kong-Response-Latency", &ms(t0.elapsed()).to_string());
        }
        ex.add_response_header("X-Kong-Request-Id", &request_id);
        let client = ex.client_response().clone();
        let mut builder = HttpResponse::builder().status(client.status);
        for (name, value) in client.headers.iter() {
            let lower = name.to_ascii_lowercase();
            if HOP_BY_HOP.contains(&lower.as_str()) {
                continue;
            }
            // nginx sends the Content-Length Kong set (exit sets the body's
            // length; a buffered response keeps the upstream's). hyper
            // computes its own, so a streamed response drops it and a
            // wrong one is reported: Kong would send a broken response.
            if lower == "content-length" && method != "HEAD" {
                if streamed.is_some() {
                    continue;
                }
                if value.trim().parse::<usize>().ok() != Some(client.body.len()) {
                    log::error(format!(
                        "Content-Length {value:?} disagrees with the {}-byte response body; \
                         Kong would send it as is and the client would misread the body \
                         (sending the body's length instead)",
                        client.body.len()
                    ));
                    continue;
                }
            }
            builder = builder.header(name, value);
        }
        let body: Body = match streamed {
            Some(incoming) => {
                let read_timeout = service_index
                    .map(|s| Duration::from_millis(setup.decl.services[s].read_timeout))
                    .unwrap_or(Duration::from_secs(60));
                incoming
                    .map_err(move |e| -> serve::BoxError { Box::new(e) })
                    .boxed()
                    .with_read_timeout(read_timeout)
            }
            None => serve::full(client.body.clone()),
        };
        let (tracked, done) = Tracked::new(body);
        let response = match builder.body(BodyExt::boxed(tracked)) {
            Ok(r) => r,
            Err(e) => {
                log::error(format!(
                    "invalid response header from a plugin or the upstream: {e}"
                ));
                return kong_error(500, "An unexpected error occurred", &request_id, t0);
            }
        };

        // 7. log, after the response is sent.
        let guard = self.tasks.start();
        let this = Arc::clone(&self);
        let route_name = route_index.map(|r| {
            let route = &setup.decl.routes[r];
            if route.name.is_empty() {
                route.id.clone()
            } else {
                route.name.clone()
            }
        });
        tokio::spawn(async move {
            let _guard = guard;
            let size = done.await.unwrap_or(0);
            let total = ms(t0.elapsed());
            let log_plugins = match collected_log {
                Some(list) => list,
                None => setup
                    .servers
                    .iter()
                    .filter(|s| s.info.has(Phase::Log))
                    .filter_map(|s| setup.global(s.plugin()))
                    .collect(),
            };
            let names: Vec<&str> = log_plugins.iter().map(|p| p.name()).collect();
            log::line(
                log::Level::Info,
                &format!(
                    "{} \"{request_line}\" {} {size} route={} source={} latency={total}ms{}{} log-plugins={}",
                    peer.ip(),
                    client.status,
                    route_name.as_deref().unwrap_or("-"),
                    match client.source {
                        ResponseSource::Service => "upstream",
                        ResponseSource::Exit => "exit",
                        ResponseSource::Error => "error",
                        ResponseSource::None => "-",
                    },
                    timings
                        .upstream_ms
                        .map(|u| format!(" upstream={u}ms"))
                        .unwrap_or_default(),
                    timings
                        .proxy_ms
                        .map(|p| format!(" kong={p}ms"))
                        .unwrap_or_default(),
                    if names.is_empty() {
                        "-".to_owned()
                    } else {
                        names.join(",")
                    },
                ),
            );
            let ctx = LogCtx {
                routed: ctx.routed,
                sent_bytes: Some(size),
                latencies: Some(json!({
                    "kong": timings.proxy_ms.unwrap_or(total),
                    "proxy": timings.upstream_ms.map_or(-1, |u| i64::try_from(u).unwrap_or(i64::MAX)),
                    "request": total,
                    "receive": 0,
                })),
            };
            for plugin in &log_plugins {
                this.run(&mut ex, plugin, Phase::Log, &ctx).await;
            }
            if spill {
                let _ = std::fs::remove_dir_all(&body_dir);
            }
        });
        response
    }
}

/// What the gateway adds to the model's answers.
#[derive(Debug, Clone, Default)]
struct LogCtx {
    /// Whether a route matched (else `kong.router.*` give nil).
    routed: bool,
    /// Bytes of the response body sent (log phase).
    sent_bytes: Option<u64>,
    /// Real latencies for the log record (log phase).
    latencies: Option<Value>,
}

/// The model's answer, with what only the live gateway knows.
fn answer(ex: &mut Exchange, call: &Call, ctx: &LogCtx) -> Reply {
    match call.method.as_str() {
        "kong.router.get_route" | "kong.router.get_service" if !ctx.routed => {
            // Still let the model apply its phase rules.
            match ex.answer(call) {
                Reply::Frame(_) => Reply::empty(),
                reject => reject,
            }
        }
        "kong.log.serialize" => {
            let reply = ex.answer(call);
            let Reply::Frame(bytes) = &reply else {
                return reply;
            };
            let Ok(text) = pb::Str::decode(&bytes[..]) else {
                return reply;
            };
            let Ok(mut record) = serde_json::from_str::<Value>(&text.v) else {
                return reply;
            };
            if let Some(obj) = record.as_object_mut() {
                if !ctx.routed {
                    obj.remove("route");
                    obj.remove("service");
                }
                if let Some(l) = &ctx.latencies {
                    obj.insert("latencies".into(), l.clone());
                }
            }
            if let (Some(size), Some(res)) = (ctx.sent_bytes, record.get_mut("response")) {
                res["size"] = json!(size);
            }
            Reply::message(&pb::Str {
                v: record.to_string(),
            })
        }
        _ => ex.answer(call),
    }
}

/// A host usable in a URL for the model's request: the `Host` header's
/// host when it is a plain name or address, else the local address.
fn url_host(host_header: &str, local: SocketAddr) -> String {
    let host = if host_header.starts_with('[') {
        host_header
            .split_once(']')
            .map_or(host_header, |(h, _)| &host_header[..=h.len()])
    } else {
        host_header.rsplit_once(':').map_or(host_header, |(h, _)| h)
    };
    let plain = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    if plain {
        host.to_ascii_lowercase()
    } else {
        match local.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        }
    }
}

/// Kong's own error answer.
fn respond_error(ex: &mut Exchange, status: u16, message: &str) {
    let headers: HeaderList = [("Content-Type", "application/json; charset=utf-8")]
        .into_iter()
        .collect();
    let body = json!({ "message": message }).to_string();
    ex.respond(status, body.into_bytes(), &headers, ResponseSource::Error);
}

/// An error response outside the model (before a request could be built).
fn kong_error(status: u16, message: &str, request_id: &str, t0: Instant) -> HttpResponse<Body> {
    HttpResponse::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("server", SERVER)
        .header("x-kong-response-latency", ms(t0.elapsed()).to_string())
        .header("x-kong-request-id", request_id)
        .body(serve::full(json!({ "message": message }).to_string()))
        .expect("valid response")
}

/// The hyper request for the upstream, with nginx's proxy headers.
fn build_upstream(
    sent: &UpstreamRequest,
    path: &str,
    stripped_prefix: Option<&str>,
    peer: SocketAddr,
    local: SocketAddr,
    host_header: &str,
) -> Result<HttpRequest<Full<Bytes>>, String> {
    if sent.scheme != "http" {
        return Err(format!(
            "the upstream scheme is {:?}; kong-pdk-dev proxies plain http only",
            sent.scheme
        ));
    }
    if let Some(name) = &sent.upstream {
        return Err(format!("upstream entity {name:?} is not supported"));
    }
    let host = if sent.host.contains(':') && !sent.host.starts_with('[') {
        format!("[{}]", sent.host)
    } else {
        sent.host.clone()
    };
    let uri = format!("http://{host}:{}{}", sent.port, sent.path_with_query());
    let mut builder = HttpRequest::builder()
        .method(sent.method.as_str())
        .uri(&uri);
    let mut forwarded_for = None;
    for (name, value) in sent.headers.iter() {
        let lower = name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str()) || lower == "content-length" {
            continue;
        }
        if lower == "x-forwarded-for" {
            forwarded_for = Some(value.to_owned());
            continue;
        }
        if matches!(
            lower.as_str(),
            "x-forwarded-proto"
                | "x-forwarded-host"
                | "x-forwarded-port"
                | "x-forwarded-path"
                | "x-forwarded-prefix"
                | "x-real-ip"
        ) {
            continue;
        }
        builder = builder.header(name, value);
    }
    let client_ip = peer.ip().to_string();
    let xff = match forwarded_for {
        Some(prev) => format!("{prev}, {client_ip}"),
        None => client_ip.clone(),
    };
    let forwarded_host = host_header
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host_header, |(h, _)| h);
    builder = builder
        .header("x-forwarded-for", xff)
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", forwarded_host)
        .header("x-forwarded-port", local.port().to_string())
        .header("x-forwarded-path", path)
        .header("x-real-ip", &client_ip);
    if let Some(prefix) = stripped_prefix {
        builder = builder.header("x-forwarded-prefix", prefix);
    }
    builder
        .body(Full::new(Bytes::from(sent.body.clone())))
        .map_err(|e| e.to_string())
}

/// A read timeout between body frames.
trait WithReadTimeout {
    fn with_read_timeout(self, limit: Duration) -> Body;
}

impl WithReadTimeout for Body {
    fn with_read_timeout(self, limit: Duration) -> Body {
        TimeoutBody {
            inner: self,
            limit,
            sleep: None,
        }
        .boxed()
    }
}

struct TimeoutBody {
    inner: Body,
    limit: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for TimeoutBody {
    type Data = Bytes;
    type Error = serve::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, serve::BoxError>>> {
        use std::task::Poll;
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let limit = this.limit;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err("the upstream timed out sending its body".into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future as _;
