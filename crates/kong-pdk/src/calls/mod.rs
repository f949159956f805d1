//! The call layer: fewer round trips through Kong, with the same answers.
//!
//! Every PDK call costs Kong a round trip of Lua work on the request's
//! critical path, so between the typed PDK functions (`pdk/`) and the socket
//! this layer makes fewer calls than the plugin wrote, without changing
//! what the plugin or the client sees. Within one event (one phase of one
//! request, during which nothing but this handler touches the request):
//!
//! - **Reads are cached**: a repeated identical call is answered locally
//!   ([`rules`] says which reads and what invalidates them).
//! - **Single lookups come from tables**: `get_header(name)` after
//!   `get_headers()` of the same namespace, `get_query_arg(name)` after
//!   `get_query()`, with Kong's exact lookup rules ([`snapshot`]). When a
//!   handler reads a second distinct header (or query argument), one
//!   `get_headers()` (`get_query()`) fetches them all.
//! - **Writes are coalesced**: consecutive `set_header` calls of one
//!   namespace reach Kong as one `set_headers` ([`pending`]). They are sent
//!   before any other round trip, before `exit`, and when the handler ends,
//!   so no write is lost or passes a read.
//! - **The log phase** answers the getters Kong refuses there from
//!   `kong.log.serialize()`, fetched once ([`log_record`]).
//!
//! `Plugin::CALL_LAYER = false`, `Server::call_layer(false)` or
//! `KONG_PDK_CALL_LAYER=off` turn it off: every call then goes to Kong as
//! written.

mod cache;
mod log_record;
mod pending;
mod rules;
mod snapshot;

use kong_pdk_proto::{self as pb, Struct};
use prost::Message;

use self::cache::{ReadCache, Slot};
use self::log_record::{LogAnswer, LogRecord};
pub(crate) use self::pending::HeaderTarget;
use self::pending::{PendingWrites, coalescable};
use self::rules::{Effect, Topic};
pub(crate) use self::rules::{Rule, rule};
use self::snapshot::{Lookup, Snapshot};
use crate::error::{Error, Result};
use crate::kong::Kong;
use crate::pdk::DEFAULT_MAX;
use crate::plugin::Phase;

/// The environment variable that turns the layer off (`off`, `0`, `false`, `no`).
pub const CALL_LAYER_ENV: &str = "KONG_PDK_CALL_LAYER";

/// Whether the environment turns the layer off.
pub(crate) fn disabled_by_env() -> bool {
    match std::env::var(CALL_LAYER_ENV) {
        Ok(v) => matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        ),
        Err(_) => false,
    }
}

/// A table a single lookup can be derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableKind {
    /// `kong.request.get_headers` / `get_header`.
    RequestHeaders,
    /// `kong.response.get_headers` / `get_header`.
    ResponseHeaders,
    /// `kong.request.get_query` / `get_query_arg`.
    Query,
}

impl TableKind {
    const ALL: [TableKind; 3] = [
        TableKind::RequestHeaders,
        TableKind::ResponseHeaders,
        TableKind::Query,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The call answering the whole table.
    const fn whole(self) -> &'static str {
        match self {
            TableKind::RequestHeaders => "kong.request.get_headers",
            TableKind::ResponseHeaders => "kong.response.get_headers",
            TableKind::Query => "kong.request.get_query",
        }
    }

    /// The call answering one name.
    const fn single(self) -> &'static str {
        match self {
            TableKind::RequestHeaders => "kong.request.get_header",
            TableKind::ResponseHeaders => "kong.response.get_header",
            TableKind::Query => "kong.request.get_query_arg",
        }
    }

    fn of_whole(method: &str) -> Option<TableKind> {
        TableKind::ALL.into_iter().find(|t| t.whole() == method)
    }

    fn of_topic(topic: Topic) -> Option<TableKind> {
        match topic {
            Topic::RequestHeaders => Some(TableKind::RequestHeaders),
            Topic::ResponseHeaders => Some(TableKind::ResponseHeaders),
            Topic::RequestQuery => Some(TableKind::Query),
            _ => None,
        }
    }

    /// How Kong looks one name up in `phase`.
    fn lookup(self, phase: Phase) -> Lookup {
        match self {
            TableKind::RequestHeaders if phase != Phase::Log => Lookup::NginxVar,
            TableKind::RequestHeaders | TableKind::ResponseHeaders => Lookup::HeaderTable,
            TableKind::Query => Lookup::QueryTable,
        }
    }

    /// Where Kong serves the whole table wherever it serves single lookups
    /// (`kong/pdk/request.lua`, `response.lua`), so a prefetch cannot fail
    /// where the lookup would not. The log phase's query getters are
    /// answered from the log record instead.
    fn prefetch_allowed(self, phase: Phase) -> bool {
        match self {
            TableKind::RequestHeaders => matches!(
                phase,
                Phase::Rewrite | Phase::Access | Phase::Response | Phase::Log
            ),
            TableKind::ResponseHeaders => matches!(phase, Phase::Response | Phase::Log),
            TableKind::Query => matches!(phase, Phase::Rewrite | Phase::Access | Phase::Response),
        }
    }
}

/// The per-event state of the call layer. One per connection, reset for
/// each event, so its buffers are reused.
#[derive(Debug)]
pub(crate) struct CallLayer {
    pub(crate) enabled: bool,
    cache: ReadCache,
    tables: [Snapshot; 3],
    /// The first name looked up in each table and sent to Kong, empty when
    /// none: a second, different one triggers the prefetch.
    /// The strings keep their buffers from event to event.
    first_miss: [String; 3],
    pending: PendingWrites,
    log_record: Option<LogRecord>,
    /// A call framed while pending writes are sent first.
    stash: Vec<u8>,
    /// PDK calls the handler made this event.
    pub(crate) asked: u32,
    /// Round trips to Kong this event.
    pub(crate) round_trips: u32,
}

/// What to do with the answer of a call being sent.
#[derive(Debug)]
pub(crate) struct Sent {
    slot: Option<Slot>,
    table: Option<(TableKind, i32)>,
}

impl CallLayer {
    pub(crate) fn new(enabled: bool) -> CallLayer {
        CallLayer {
            enabled,
            cache: ReadCache::default(),
            tables: Default::default(),
            first_miss: Default::default(),
            pending: PendingWrites::default(),
            log_record: None,
            stash: Vec::new(),
            asked: 0,
            round_trips: 0,
        }
    }

    /// Starts an event.
    pub(crate) fn start(&mut self) {
        self.forget_all();
        self.pending.clear();
        self.asked = 0;
        self.round_trips = 0;
    }

    /// Drops every cached answer (a call the layer knows nothing about).
    pub(crate) fn forget_everything(&mut self) {
        self.forget_all();
    }

    fn forget_all(&mut self) {
        self.cache.clear();
        for t in &mut self.tables {
            t.clear();
        }
        for m in &mut self.first_miss {
            m.clear();
        }
        self.log_record = None;
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The topic of a read whose answer may be kept.
    fn cacheable(rule: Rule, phase: Phase) -> Option<Topic> {
        match rule {
            // Other plugins' log timers share kong.ctx.shared and run
            // concurrently with ours.
            Rule::Read(Topic::CtxShared) if phase == Phase::Log => None,
            Rule::Read(topic) => Some(topic),
            Rule::Write(_) => None,
        }
    }

    /// Kong's earlier answer to the same call.
    pub(crate) fn cached(
        &self,
        rule: Rule,
        phase: Phase,
        method: &str,
        args: &[u8],
    ) -> Option<&[u8]> {
        CallLayer::cacheable(rule, phase)?;
        self.cache.get(method, args)
    }

    /// A call is about to be sent: drop what it may change, and note what
    /// to keep of its answer.
    pub(crate) fn before_send(
        &mut self,
        rule: Rule,
        phase: Phase,
        method: &'static str,
        args: &[u8],
    ) -> Sent {
        match rule {
            Rule::Write(effect) => {
                self.apply(effect, method, args);
                Sent {
                    slot: None,
                    table: None,
                }
            }
            Rule::Read(_) => Sent {
                table: TableKind::of_whole(method)
                    .map(|t| (t, pb::Int::decode(args).map_or(0, |max| max.v))),
                slot: CallLayer::cacheable(rule, phase)
                    .map(|topic| self.cache.reserve(method, topic, args)),
            },
        }
    }

    /// Kong answered the call.
    pub(crate) fn after_answer(&mut self, sent: Sent, phase: Phase, answer: &[u8]) {
        if let Some(slot) = sent.slot {
            self.cache.fill(slot, answer);
        }
        if let Some((kind, max)) = sent.table {
            if let Ok(fields) = Struct::decode(answer) {
                self.tables[kind.index()].load(fields, max, phase);
            }
        }
    }

    /// A header write to `target` that waits: forgets what it changes, as
    /// if it had been sent (what [`apply`](Self::apply) does for its
    /// `set_header`, without encoding it).
    fn header_written(&mut self, target: HeaderTarget, name: &str) {
        for &topic in target.topics() {
            self.cache.drop_topic(topic);
            if let Some(kind) = TableKind::of_topic(topic) {
                self.tables[kind.index()].mark_dirty(name);
            }
        }
    }

    /// Applies what a write changes.
    fn apply(&mut self, effect: Effect, method: &str, args: &[u8]) {
        match effect {
            Effect::None => {}
            Effect::Everything => self.forget_all(),
            Effect::Topics(topics) => {
                for &topic in topics {
                    self.cache.drop_topic(topic);
                    if topic == Topic::Serialize {
                        self.log_record = None;
                    }
                    if let Some(kind) = TableKind::of_topic(topic) {
                        let table = &mut self.tables[kind.index()];
                        if !table.is_loaded() {
                            continue;
                        }
                        match written_header_names(method, args) {
                            Some(names) if kind != TableKind::Query => {
                                for name in names {
                                    table.mark_dirty(&name);
                                }
                            }
                            _ => table.clear(),
                        }
                    }
                }
            }
        }
    }
}

/// The header names a header write changes; `None` for other writes.
fn written_header_names(method: &str, args: &[u8]) -> Option<Vec<String>> {
    let (_, function) = method.rsplit_once('.')?;
    match function {
        "set_header" | "add_header" => pb::Kv::decode(args).ok().map(|kv| vec![kv.k]),
        "clear_header" => pb::Str::decode(args).ok().map(|s| vec![s.v]),
        "set_headers" => Struct::decode(args)
            .ok()
            .map(|st| st.fields.into_keys().collect()),
        _ => None,
    }
}

impl Kong {
    /// A single name of a table (`get_header`, `get_query_arg`): from the
    /// event's copy of the table when there is one, else by fetching the
    /// table at the second distinct name, else from Kong.
    pub(crate) async fn single_lookup(&mut self, kind: TableKind, name: &str) -> Result<String> {
        let method = kind.single();
        self.check_usable(method)?;
        self.conn.layer.asked += 1;
        if self.conn.layer.enabled {
            if let Some(v) = self.derived(kind, name) {
                return Ok(v);
            }
            if self.should_prefetch(kind, name) {
                let max = pb::Int {
                    v: DEFAULT_MAX.into(),
                };
                // The layer keeps the table (`after_answer`); nothing to decode here.
                let _: () = self.fetch(kind.whole(), &max).await?;
                if let Some(v) = self.derived(kind, name) {
                    return Ok(v);
                }
            }
        }
        let reply: pb::Str = self.fetch(method, &pb::Str { v: name.to_owned() }).await?;
        Ok(reply.v)
    }

    fn derived(&self, kind: TableKind, name: &str) -> Option<String> {
        self.conn.layer.tables[kind.index()]
            .lookup(name, kind.lookup(self.phase()))
            .map(str::to_owned)
    }

    /// Notes a lookup of `name` Kong must answer; true when it is the
    /// second distinct one and the whole table should be fetched instead.
    fn should_prefetch(&mut self, kind: TableKind, name: &str) -> bool {
        let phase = self.phase();
        let layer = &mut self.conn.layer;
        if layer.tables[kind.index()].is_loaded() || !kind.prefetch_allowed(phase) {
            return false;
        }
        let first = &mut layer.first_miss[kind.index()];
        if first.is_empty() {
            first.push_str(name);
            return false;
        }
        match kind {
            TableKind::Query => first != name,
            _ => !snapshot::same_header_name(first.as_str(), name),
        }
    }

    /// `set_header(name, value)` on `target`: waits to be sent with the next
    /// ones when it cannot fail in Kong, else goes now.
    pub(crate) async fn set_header(
        &mut self,
        target: HeaderTarget,
        name: &str,
        value: &str,
    ) -> Result<()> {
        let method = target.set_header();
        if !self.conn.layer.enabled || !coalescable(target, self.phase(), name, value) {
            let args = pb::Kv {
                k: name.to_owned(),
                v: Some(crate::value::string(value)),
            };
            return self.pdk_call::<_, ()>(method, &args).await;
        }
        self.check_usable(method)?;
        self.conn.layer.asked += 1;
        if !self.conn.layer.pending.push(target, name, value) {
            self.flush_pending().await?;
            let queued = self.conn.layer.pending.push(target, name, value);
            debug_assert!(queued, "an empty batch takes any name");
        }
        // What the write changes is forgotten now, as if it had been sent.
        self.conn.layer.header_written(target, name);
        Ok(())
    }

    /// Sends the waiting writes, in order.
    pub(crate) async fn flush_pending(&mut self) -> Result<()> {
        loop {
            let conn = &mut self.conn;
            let Some(method) = conn.layer.pending.frame_next(&mut conn.write_buf) else {
                return Ok(());
            };
            // Kong answers a header write with nothing; its effects were
            // applied when it was queued.
            self.exchange(method).await?;
        }
    }

    /// Sends the waiting writes while a call is framed in the write buffer.
    pub(crate) async fn flush_pending_before_framed(&mut self) -> Result<()> {
        std::mem::swap(&mut self.conn.write_buf, &mut self.conn.layer.stash);
        let flushed = self.flush_pending().await;
        std::mem::swap(&mut self.conn.write_buf, &mut self.conn.layer.stash);
        if flushed.is_err() {
            self.conn.write_buf.clear();
        }
        flushed
    }

    /// Ends the handler's part of the event: sends the waiting writes.
    pub(crate) async fn finish(&mut self) -> Result<()> {
        if self.conn.layer.has_pending() {
            self.check_usable("kong.response.set_headers")?;
            self.flush_pending().await?;
        }
        Ok(())
    }

    /// In the log phase, the record that answers `method` (a getter Kong
    /// refuses there), fetched once; `None` elsewhere or with the layer off.
    /// A getter the record does not carry fails here, before any round trip.
    pub(crate) async fn log_record(&mut self, method: &'static str) -> Result<Option<&LogRecord>> {
        // Getters the record cannot answer are refused in `call`.
        if !self.conn.layer.enabled
            || self.phase() != Phase::Log
            || log_record::log_answer(method) != Some(LogAnswer::Record)
        {
            return Ok(None);
        }
        self.check_usable(method)?;
        self.conn.layer.asked += 1;
        if self.conn.layer.log_record.is_none() {
            let text: pb::Str = self.fetch("kong.log.serialize", &()).await?;
            self.conn.layer.log_record = Some(LogRecord::parse(&text.v)?);
        }
        Ok(self.conn.layer.log_record.as_ref())
    }

    /// Fails a getter the log phase cannot answer, before any round trip
    /// (layer on, log phase; every call passes here); a no-op elsewhere.
    pub(crate) fn refuse_in_log(&self, method: &'static str) -> Result<()> {
        if self.conn.layer.enabled && self.phase() == Phase::Log {
            if let Some(LogAnswer::Refused(advice)) = log_record::log_answer(method) {
                return Err(Error::LogPhase { method, advice });
            }
        }
        Ok(())
    }
}
