//! The built plugin exports its spans to a real OTLP/HTTP endpoint: an
//! in-process HTTP server that decodes each `POST /v1/traces` with the
//! OpenTelemetry project's own message types. Kong is played over the
//! plugin's socket, with `traceparent` in the request headers. The tests
//! run on a multi-thread runtime so the receiver keeps serving while a test
//! blocks (waiting for the server to exit).

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, EventEnd, PluginProcess, Reply};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::sync::mpsc;

const EXE: &str = env!("CARGO_BIN_EXE_rust-traced");
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const KONG_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver on a free port: every decoded request, with its
/// path and content type, arrives on the channel.
struct Receiver {
    port: u16,
    requests: mpsc::UnboundedReceiver<(String, String, ExportTraceServiceRequest)>,
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = req.into_body().collect().await?.to_bytes();
                        let decoded = ExportTraceServiceRequest::decode(body)
                            .expect("the body is an OTLP ExportTraceServiceRequest");
                        let _ = tx.send((path, content_type, decoded));
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Receiver { port, requests }
}

impl Receiver {
    /// Collects spans until `done(spans)` holds; fails after 10 s.
    async fn spans_until(&mut self, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let mut spans = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done(&spans) {
            let next = tokio::time::timeout_at(deadline, self.requests.recv()).await;
            let (path, content_type, request) = next
                .unwrap_or_else(|_| panic!("no more spans within 10 s; got {spans:#?}"))
                .expect("receiver running");
            assert_eq!(path, "/v1/traces");
            assert_eq!(content_type, "application/x-protobuf");
            for resource in request.resource_spans {
                let attrs = attributes(&resource.resource.unwrap().attributes);
                assert_eq!(attrs["service.name"], "rust-traced");
                assert_eq!(attrs["service.version"], env!("CARGO_PKG_VERSION"));
                for scope in resource.scope_spans {
                    assert_eq!(scope.scope.unwrap().name, "kong-pdk");
                    spans.extend(scope.spans);
                }
            }
        }
        spans
    }
}

fn attributes(
    kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(s: &str) -> pb::Value {
    pb::Value {
        kind: Some(pb::ValueKind::StringValue(s.to_owned())),
    }
}

/// Kong's answers for a request carrying `traceparent` and `x-user: ann`.
fn kong(traceparent: &str) -> impl FnMut(&Call) -> Reply + '_ {
    move |call| match call.method.as_str() {
        "kong.request.get_headers" => Reply::message(&pb::Struct {
            fields: [
                ("traceparent".to_owned(), text(traceparent)),
                ("x-user".to_owned(), text("ann")),
            ]
            .into_iter()
            .collect(),
        }),
        _ => Reply::empty(),
    }
}

async fn start(port: u16) -> (PluginProcess, Connection) {
    let endpoint = format!("http://127.0.0.1:{port}");
    let server =
        PluginProcess::start_with_env(EXE, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())])
            .unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.start_instance(
        "rust-traced",
        r#"{"gold":["ann"],"user_header":"x-user","__seq__":1}"#,
    )
    .await
    .unwrap()
    .expect("started");
    (server, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugins_spans_join_the_requests_trace() {
    let mut otlp = receiver().await;
    let (_server, mut conn) = start(otlp.port).await;
    let traceparent = format!("00-{TRACE_ID}-{KONG_SPAN}-01");
    let result = conn
        .handle_event(1, "access", kong(&traceparent))
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    // Export adds no round trip: get_headers, then the two header writes.
    assert_eq!(
        result.methods(),
        [
            "kong.request.get_headers",
            "kong.service.request.set_header",
            "kong.response.set_header",
        ]
    );

    let spans = otlp.spans_until(|s| s.len() >= 3).await;
    let by_name: BTreeMap<&str, &Span> = spans.iter().map(|s| (s.name.as_str(), s)).collect();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let event = by_name["rust-traced access"];
    let classify = by_name["classify"];
    let forward = by_name["forward"];
    for span in [event, classify, forward] {
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{}", span.name);
        assert_eq!(span.span_id.len(), 8);
        assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
        assert!(span.start_time_unix_nano > 0);
    }
    // The event span's parent is Kong's span; the plugin's spans are its
    // children.
    assert_eq!(hex(&event.parent_span_id), KONG_SPAN);
    assert_eq!(classify.parent_span_id, event.span_id);
    assert_eq!(forward.parent_span_id, event.span_id);
    assert!(event.start_time_unix_nano <= classify.start_time_unix_nano);
    assert!(forward.end_time_unix_nano <= event.end_time_unix_nano);
    let attrs = attributes(&event.attributes);
    assert_eq!(attrs["plugin"], "rust-traced");
    assert_eq!(attrs["phase"], "access");
    assert_eq!(attrs["instance"], "1");
    assert_eq!(attributes(&classify.attributes)["user"], "ann");
    assert_eq!(attributes(&forward.attributes)["tier"], "gold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_trace_is_not_exported_and_sigterm_flushes_the_queue() {
    let mut otlp = receiver().await;
    let (mut server, mut conn) = start(otlp.port).await;
    let unsampled = "00-11111111111111111111111111111111-2222222222222222-00";
    conn.handle_event(1, "access", kong(unsampled))
        .await
        .unwrap();
    let sampled = format!("00-{TRACE_ID}-{KONG_SPAN}-01");
    conn.handle_event(1, "access", kong(&sampled))
        .await
        .unwrap();
    // Stop at once: the batch has not been sent yet, and must be on exit.
    drop(conn);
    assert!(server.terminate().unwrap().success());
    let spans = otlp.spans_until(|s| s.len() >= 3).await;
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) == TRACE_ID),
        "only the sampled trace: {spans:#?}"
    );
    assert_eq!(spans.len(), 3, "{spans:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_logged_once_and_events_go_on() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (server, mut conn) = start(port).await;
    let traceparent = format!("00-{TRACE_ID}-{KONG_SPAN}-01");
    for _ in 0..3 {
        let result = conn
            .handle_event(1, "access", kong(&traceparent))
            .await
            .unwrap();
        assert_eq!(result.end, EventEnd::Returned);
    }
    let log = server
        .wait_for_stderr("OTLP export to http://127.0.0.1", Duration::from_secs(10))
        .unwrap();
    assert_eq!(log.matches("OTLP export to").count(), 1, "{log}");
}
