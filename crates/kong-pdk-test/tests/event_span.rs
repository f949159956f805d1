//! Every event runs in a `tracing` span `event` with the plugin, the phase
//! and the instance id, so the plugin's own tracing carries them — in both
//! protocols, at no PDK cost.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kong_pdk::{Kong, PhaseResult, Plugin, Protocol, Schema};
use kong_pdk_test::{Request, TestEnv};
use serde::Deserialize;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span's name and fields.
type SpanRecord = (String, BTreeMap<String, String>);

/// An event's message and the spans it happened in.
type EventRecord = (String, Vec<String>);

/// Records spans' fields and, for each event, the fields of the spans it
/// happened in.
#[derive(Default)]
struct Capture {
    next: AtomicU64,
    spans: Mutex<BTreeMap<u64, SpanRecord>>,
    stack: Mutex<Vec<u64>>,
    events: Arc<Mutex<Vec<EventRecord>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.spans
            .lock()
            .unwrap()
            .insert(id, (attrs.metadata().name().to_owned(), fields));
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let spans = self.spans.lock().unwrap();
        let context = self
            .stack
            .lock()
            .unwrap()
            .iter()
            .filter_map(|id| spans.get(id))
            .map(|(name, f)| format!("{name} {f:?}"))
            .collect();
        let message = fields.get("message").cloned().unwrap_or_default();
        self.events.lock().unwrap().push((message, context));
    }
    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut stack = self.stack.lock().unwrap();
        if let Some(at) = stack.iter().rposition(|id| *id == span.into_u64()) {
            stack.remove(at);
        }
    }
}

macro_rules! traced {
    ($name:ident, $protocol:expr) => {
        #[derive(Deserialize, Schema)]
        struct $name {}

        #[kong_pdk::plugin]
        impl Plugin for $name {
            const PROTOCOL: Protocol = $protocol;
            async fn access(&self, kong: &mut Kong) -> PhaseResult {
                let host = kong.request().get_header("host").await?;
                tracing::info!("handling {host}");
                Ok(())
            }
        }
    };
}

traced!(TracedPb, Protocol::ProtoBuf);
traced!(TracedMp, Protocol::MsgPack);

async fn run(msgpack: bool) -> (Vec<EventRecord>, usize) {
    let capture = Capture::default();
    let events = Arc::clone(&capture.events);
    // The test's runtime, the server included, runs on this thread.
    let _guard = tracing::subscriber::set_default(capture);
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = if msgpack {
        env.run::<TracedMp>(json!({})).await
    } else {
        env.run::<TracedPb>(json!({})).await
    };
    let events = events.lock().unwrap().clone();
    (events, out.round_trips_in(kong_pdk::Phase::Access))
}

#[tokio::test]
async fn the_plugins_tracing_runs_in_the_event_span() {
    for msgpack in [false, true] {
        let (events, round_trips) = run(msgpack).await;
        let (_, context) = events
            .iter()
            .find(|(m, _)| m == "handling example.com")
            .unwrap_or_else(|| panic!("no event from the handler: {events:?}"));
        assert!(
            context.iter().any(|s| s.starts_with("event ")
                && s.contains(r#""phase": "access""#)
                && s.contains(r#""plugin": "#)
                && s.contains(r#""instance": "#)),
            "msgpack={msgpack}: {context:?}"
        );
        // The span costs no PDK call: the handler's one read only.
        assert_eq!(round_trips, 1);
    }
}
