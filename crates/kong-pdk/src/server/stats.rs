//! Live counts of a running server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Live counts of a running server, for tests and monitoring.
#[derive(Debug, Clone, Default)]
pub struct ServerStats(pub(super) Arc<Counters>);

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) connections: AtomicUsize,
    pub(super) events: AtomicUsize,
    pub(super) instances: AtomicUsize,
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
