//! Live counts of a running server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Live counts of a running server, for tests and monitoring.
#[derive(Debug, Clone, Default)]
pub struct ServerStats(pub(super) Arc<Counters>);

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) connections: AtomicUsize,
    pub(super) events: AtomicUsize,
    pub(super) instances: AtomicUsize,
    pub(super) pdk_calls: AtomicU64,
    pub(super) round_trips: AtomicU64,
}

impl ServerStats {
    /// Open connections from Kong.
    pub fn connections(&self) -> usize {
        self.0.connections.load(Ordering::Acquire)
    }

    /// Events (phase handlers) running now.
    pub fn events_in_flight(&self) -> usize {
        self.0.events.load(Ordering::Acquire)
    }

    /// Plugin instances alive.
    pub fn instances(&self) -> usize {
        self.0.instances.load(Ordering::Acquire)
    }

    /// PDK calls the plugin's handlers made, over the server's life.
    pub fn pdk_calls(&self) -> u64 {
        self.0.pdk_calls.load(Ordering::Acquire)
    }

    /// Round trips to Kong those calls took (fewer than the calls when the
    /// call layer answered or coalesced some; `kong.response.exit` is one).
    pub fn round_trips(&self) -> u64 {
        self.0.round_trips.load(Ordering::Acquire)
    }
}

impl Counters {
    /// Adds one finished event's call counts.
    pub(super) fn add_calls(&self, (asked, round_trips): (u32, u32)) {
        self.pdk_calls.fetch_add(asked.into(), Ordering::AcqRel);
        self.round_trips
            .fetch_add(round_trips.into(), Ordering::AcqRel);
    }
}

/// Decrements a counter when dropped.
#[derive(Debug)]
pub(super) struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    pub(super) fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
