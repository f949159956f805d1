//! A `tracing` layer that turns closed spans into OTLP spans: each span gets
//! a random span id when it opens; a root span (the server's `event` span,
//! or any span of the plugin's own) starts a trace, which
//! [`adopt`] replaces with the request's trace so the whole tree joins
//! Kong's trace.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::export::Exporter;
use super::proto as pb;
use crate::pdk::TraceContext;

/// The trace a root span and its descendants belong to.
#[derive(Debug, Clone)]
struct TraceInfo {
    trace_id: [u8; 16],
    /// The remote parent of the root span (Kong's span), if adopted.
    parent: Option<[u8; 8]>,
    sampled: bool,
    state: String,
}

/// What a span needs until it closes.
#[derive(Debug)]
struct SpanData {
    span_id: [u8; 8],
    name: String,
    start: u64,
    attributes: Vec<pb::KeyValue>,
}

/// The layer: exports every span it sees.
#[derive(Debug)]
pub(crate) struct OtlpLayer {
    exporter: &'static Exporter,
}

impl OtlpLayer {
    pub(crate) fn new(exporter: &'static Exporter) -> OtlpLayer {
        OtlpLayer { exporter }
    }
}

/// Random ids without a dependency: SipHash with the process's random keys
/// over a counter.
fn random_u64() -> u64 {
    static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let keys = KEYS.get_or_init(RandomState::new);
    loop {
        let v = keys.hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
        if v != 0 {
            return v;
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Span fields as OTLP attributes.
struct Fields<'a>(&'a mut Vec<pb::KeyValue>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(pb::KeyValue::new(
            field.name(),
            pb::Value::String(value.into()),
        ));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0
            .push(pb::KeyValue::new(field.name(), pb::Value::Bool(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0
            .push(pb::KeyValue::new(field.name(), pb::Value::Int(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let value = i64::try_from(value).map_or(pb::Value::Double(value as f64), pb::Value::Int);
        self.0.push(pb::KeyValue::new(field.name(), value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0
            .push(pb::KeyValue::new(field.name(), pb::Value::Double(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(pb::KeyValue::new(
            field.name(),
            pb::Value::String(format!("{value:?}")),
        ));
    }
}

fn attribute<'a>(attributes: &'a [pb::KeyValue], key: &str) -> Option<&'a pb::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

impl<S> tracing_subscriber::Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut attributes = Vec::new();
        attrs.record(&mut Fields(&mut attributes));
        let meta = attrs.metadata();
        // The server's event span reads "<plugin> <phase>", like Kong names
        // its plugin spans by plugin and phase.
        let name = match (
            meta.name(),
            meta.target().starts_with("kong_pdk"),
            attribute(&attributes, "plugin"),
            attribute(&attributes, "phase"),
        ) {
            ("event", true, Some(pb::Value::String(p)), Some(pb::Value::String(ph))) => {
                format!("{p} {ph}")
            }
            _ => meta.name().to_owned(),
        };
        let mut ext = span.extensions_mut();
        if span.parent().is_none() {
            let mut trace_id = [0; 16];
            trace_id[..8].copy_from_slice(&random_u64().to_be_bytes());
            trace_id[8..].copy_from_slice(&random_u64().to_be_bytes());
            ext.insert(TraceInfo {
                trace_id,
                parent: None,
                sampled: true,
                state: String::new(),
            });
        }
        ext.insert(SpanData {
            span_id: random_u64().to_be_bytes(),
            name,
            start: now_nanos(),
            attributes,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(data) = span.extensions_mut().get_mut::<SpanData>()
        {
            values.record(&mut Fields(&mut data.attributes));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(info) = span
            .scope()
            .from_root()
            .next()
            .and_then(|root| root.extensions().get::<TraceInfo>().cloned())
        else {
            return;
        };
        if !info.sampled {
            return;
        }
        let parent_span_id = match span.parent() {
            Some(parent) => parent
                .extensions()
                .get::<SpanData>()
                .map(|d| d.span_id.to_vec())
                .unwrap_or_default(),
            None => info.parent.map(|p| p.to_vec()).unwrap_or_default(),
        };
        let Some(data) = span.extensions_mut().remove::<SpanData>() else {
            return;
        };
        self.exporter.push(pb::Span {
            trace_id: info.trace_id.to_vec(),
            span_id: data.span_id.to_vec(),
            trace_state: info.state,
            parent_span_id,
            name: data.name,
            kind: pb::SPAN_KIND_INTERNAL,
            start_time_unix_nano: data.start,
            end_time_unix_nano: now_nanos(),
            attributes: data.attributes,
        });
    }
}

fn hex_bytes<const N: usize>(hex: &str) -> Option<[u8; N]> {
    if hex.len() != N * 2 {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Makes `context` the trace of the current span's root (the event span
/// when called from a handler). Spans already closed keep the trace they
/// had; call it first thing in the handler.
pub(crate) fn adopt(context: &TraceContext) {
    let (Some(trace_id), Some(parent)) = (
        hex_bytes::<16>(&context.trace_id),
        hex_bytes::<8>(&context.parent_id),
    ) else {
        return;
    };
    tracing::Span::current().with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return;
        };
        let Some(root) = registry.span(id).and_then(|s| s.scope().from_root().next()) else {
            return;
        };
        root.extensions_mut().replace(TraceInfo {
            trace_id,
            parent: Some(parent),
            // B3 may leave sampling to us: sample then, as OpenTelemetry's
            // default parent-based sampler does for an undecided parent.
            sampled: context.sampled.unwrap_or(true),
            state: context.trace_state.clone(),
        });
    });
}
