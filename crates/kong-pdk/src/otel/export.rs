//! Sends finished spans to an OTLP/HTTP endpoint from a thread of its own:
//! the runtime's threads only push into a bounded queue (a full queue drops
//! the span and counts it), so a slow or absent collector never slows an
//! event.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prost::Message;

use super::proto as pb;

/// Spans waiting for the exporter thread; more are dropped.
const QUEUE: usize = 16 * 1024;
/// Spans per request.
const BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const DELAY: Duration = Duration::from_millis(500);
/// Connect, write and read limits per request.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to send: read from the standard OpenTelemetry variables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Endpoint {
    /// `host:port` to connect to.
    pub(crate) authority: String,
    /// Request path, e.g. `/v1/traces`.
    pub(crate) path: String,
    /// `OTEL_EXPORTER_OTLP_HEADERS` / `..._TRACES_HEADERS`.
    pub(crate) headers: Vec<(String, String)>,
}

impl Endpoint {
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; `None` when neither is
    /// set or `OTEL_SDK_DISABLED=true`. `Err` names a setting we cannot use.
    pub(crate) fn from_env(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Endpoint>, String> {
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let (name, url) = match (
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
            (None, Some(base)) => (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{}/v1/traces", base.trim_end_matches('/')),
            ),
            (None, None) => return Ok(None),
        };
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!(
                "{name}={url:?}: only http:// is supported (send to a local collector or agent, which forwards over TLS)"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{name}={url:?}: no host"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let headers = set("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| set("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|h| parse_headers(&h))
            .unwrap_or_default();
        Ok(Some(Endpoint {
            authority,
            path: path.to_owned(),
            headers,
        }))
    }
}

/// `key1=value1,key2=value2`, values percent-decoded as the spec says.
fn parse_headers(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), percent_decode(v.trim())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Spans waiting to be sent, shared by the runtime's threads (which push)
/// and the exporter thread (which takes them all at once).
#[derive(Debug, Default)]
struct Queue {
    spans: Vec<pb::Span>,
    stopping: bool,
}

/// The running exporter: the queue and the thread that empties it.
#[derive(Debug)]
pub(crate) struct Exporter {
    queue: Arc<Mutex<Queue>>,
    dropped: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Exporter {
    /// Starts the thread that sends to `endpoint` for `resource`.
    pub(crate) fn start(endpoint: Endpoint, resource: pb::Resource) -> Exporter {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let shared = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("kong-pdk-otlp".into())
            .spawn(move || run(&endpoint, resource, &shared))
            .expect("spawning the OTLP exporter thread");
        Exporter {
            queue,
            dropped: AtomicU64::new(0),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues a finished span; never blocks on the network. The exporter
    /// thread is woken only when a batch is full (a wake per span would
    /// cost a context switch per event), otherwise it wakes on its timer.
    pub(crate) fn push(&self, span: pb::Span) {
        let queued = {
            let Ok(mut queue) = self.queue.lock() else {
                return;
            };
            if queue.spans.len() >= QUEUE {
                None
            } else {
                queue.spans.push(span);
                Some(queue.spans.len())
            }
        };
        match queued {
            Some(BATCH) => self.wake(),
            Some(_) => {}
            None => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "OTLP export queue full ({QUEUE} spans): dropping spans until it drains"
                    );
                }
            }
        }
    }

    fn wake(&self) {
        if let Ok(thread) = self.thread.lock()
            && let Some(thread) = thread.as_ref()
        {
            thread.thread().unpark();
        }
    }

    /// Sends what is queued and stops the thread, waiting at most `limit`.
    pub(crate) fn shutdown(&self, limit: Duration) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.stopping = true;
        }
        self.wake();
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let deadline = Instant::now() + limit;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

fn run(endpoint: &Endpoint, resource: pb::Resource, queue: &Mutex<Queue>) {
    let scope = pb::InstrumentationScope {
        name: "kong-pdk".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut failing = false;
    loop {
        std::thread::park_timeout(DELAY);
        let (spans, stop) = match queue.lock() {
            Ok(mut q) => (std::mem::take(&mut q.spans), q.stopping),
            Err(_) => return,
        };
        for batch in spans.chunks(BATCH) {
            let request = pb::ExportTraceServiceRequest {
                resource_spans: vec![pb::ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![pb::ScopeSpans {
                        scope: Some(scope.clone()),
                        spans: batch.to_vec(),
                    }],
                }],
            };
            match post(endpoint, &request.encode_to_vec()) {
                Ok(()) => {
                    if failing {
                        tracing::info!("OTLP export to {} works again", endpoint.authority);
                    }
                    failing = false;
                }
                Err(e) => {
                    // Once per streak of failures: the collector may be down
                    // for a while, and the log must not fill with this.
                    if !failing {
                        tracing::warn!(
                            "OTLP export to http://{}{} failed, spans dropped: {e}",
                            endpoint.authority,
                            endpoint.path
                        );
                    }
                    failing = true;
                }
            }
        }
        if stop {
            return;
        }
    }
}

/// One `POST` with `Connection: close`; Ok on a 2xx status.
fn post(endpoint: &Endpoint, body: &[u8]) -> Result<(), String> {
    let addr = endpoint
        .authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.authority))?
        .next()
        .ok_or_else(|| format!("{} has no address", endpoint.authority))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n",
        endpoint.path,
        endpoint.authority,
        body.len()
    );
    for (k, v) in &endpoint.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let status_line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else if status.is_empty() {
        Err("no HTTP answer".into())
    } else {
        Err(format!("the collector answered {}", status_line.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn endpoint_from_the_standard_variables() {
        assert_eq!(Endpoint::from_env(env(&[])), Ok(None));
        let e = Endpoint::from_env(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4318/",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(e.authority, "collector:4318");
        assert_eq!(e.path, "/v1/traces");
        let e = Endpoint::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1/custom",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x-tenant = t1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(e.authority, "127.0.0.1:80");
        assert_eq!(e.path, "/custom");
        assert_eq!(
            e.headers,
            [
                ("api-key".into(), "a b".into()),
                ("x-tenant".into(), "t1".into())
            ]
        );
        assert_eq!(
            Endpoint::from_env(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_SDK_DISABLED", "TRUE"),
            ])),
            Ok(None)
        );
        let err = Endpoint::from_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318")]))
            .unwrap_err();
        assert!(err.contains("only http://"), "{err}");
    }

    #[test]
    fn an_absent_collector_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = Endpoint {
            authority: format!("127.0.0.1:{port}"),
            path: "/v1/traces".into(),
            headers: Vec::new(),
        };
        assert!(post(&endpoint, b"x").is_err());
    }
}
