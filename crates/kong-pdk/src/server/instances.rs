//! The table of running plugin instances, keyed by the id Kong sends back in
//! every `CmdHandleEvent`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One plugin instance: a deserialized config plus bookkeeping.
#[derive(Debug)]
pub(crate) struct Instance<P> {
    pub(crate) id: i32,
    pub(crate) plugin: P,
    /// Seconds since the Unix epoch (`InstanceStatus.started_at`).
    pub(crate) started_at: i64,
    /// Milliseconds since the table's epoch of the last event's end.
    last_used_ms: AtomicU64,
    in_use: AtomicUsize,
}

/// Marks an instance busy for as long as it lives.
#[derive(Debug)]
pub(crate) struct InUse<P> {
    pub(crate) instance: Arc<Instance<P>>,
    epoch: Instant,
}

impl<P> Drop for InUse<P> {
    fn drop(&mut self) {
        self.instance
            .last_used_ms
            .store(millis_since(self.epoch), Ordering::Relaxed);
        self.instance.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
pub(crate) struct Instances<P> {
    map: Mutex<HashMap<i32, Arc<Instance<P>>>>,
    /// Ids for configs without a `__seq__`; counting down from the top keeps
    /// them away from Kong's small `__seq__` numbers.
    next_free_id: AtomicI32,
    epoch: Instant,
    idle_timeout: Duration,
    counters: Arc<super::stats::Counters>,
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl<P> Instances<P> {
    pub(crate) fn new(idle_timeout: Duration, counters: Arc<super::stats::Counters>) -> Self {
        Instances {
            map: Mutex::new(HashMap::new()),
            next_free_id: AtomicI32::new(i32::MAX),
            epoch: Instant::now(),
            idle_timeout,
            counters,
        }
    }

    fn publish_len(&self, len: usize) {
        self.counters.instances.store(len, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Arc<Instance<P>>>> {
        // A panic never happens while the lock is held; recover anyway.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an instance under `seq` (Kong's `__seq__`) or a fresh id when
    /// `seq` is 0; an instance with the same id is replaced.
    pub(crate) fn insert(&self, seq: i32, plugin: P) -> Arc<Instance<P>> {
        self.expire_idle();
        let mut map = self.lock();
        let id = if seq != 0 {
            seq
        } else {
            loop {
                let id = self.next_free_id.fetch_sub(1, Ordering::Relaxed);
                if id <= 0 {
                    self.next_free_id.store(i32::MAX, Ordering::Relaxed);
                    continue;
                }
                if !map.contains_key(&id) {
                    break id;
                }
            }
        };
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let instance = Arc::new(Instance {
            id,
            plugin,
            started_at,
            last_used_ms: AtomicU64::new(millis_since(self.epoch)),
            in_use: AtomicUsize::new(0),
        });
        map.insert(id, Arc::clone(&instance));
        self.publish_len(map.len());
        instance
    }

    /// Takes an instance for one event.
    pub(crate) fn acquire(&self, id: i32) -> Option<InUse<P>> {
        let map = self.lock();
        let instance = map.get(&id)?;
        instance.in_use.fetch_add(1, Ordering::AcqRel);
        Some(InUse {
            instance: Arc::clone(instance),
            epoch: self.epoch,
        })
    }

    pub(crate) fn get(&self, id: i32) -> Option<Arc<Instance<P>>> {
        self.lock().get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: i32) -> Option<Arc<Instance<P>>> {
        let removed = {
            let mut map = self.lock();
            let removed = map.remove(&id);
            self.publish_len(map.len());
            removed
        };
        self.expire_idle();
        removed
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Drops instances unused for longer than the idle timeout. Kong never
    /// says when it forgets an instance (only config changes close one), so
    /// this bounds memory; an instance Kong still uses is simply restarted
    /// (unknown id → connection closed → Kong starts it again).
    pub(crate) fn expire_idle(&self) {
        let now = millis_since(self.epoch);
        let idle = u64::try_from(self.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut map = self.lock();
        map.retain(|id, inst| {
            let busy = inst.in_use.load(Ordering::Acquire) > 0;
            let last = inst.last_used_ms.load(Ordering::Relaxed);
            let keep = busy || now.saturating_sub(last) < idle;
            if !keep {
                tracing::info!(instance = id, "expired idle instance");
            }
            keep
        });
        self.publish_len(map.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_the_id_and_zero_gets_a_fresh_one() {
        let t = Instances::new(Duration::from_secs(60), Arc::default());
        assert_eq!(t.insert(7, "a").id, 7);
        let fresh = t.insert(0, "b").id;
        assert!(fresh > 1_000_000);
        assert_ne!(t.insert(0, "c").id, fresh);
        assert_eq!(t.insert(7, "d").plugin, "d", "same seq replaces");
        assert_eq!(t.get(7).unwrap().plugin, "d");
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn idle_instances_expire_but_busy_ones_never() {
        let t = Instances::new(Duration::ZERO, Arc::default());
        t.insert(1, ());
        t.insert(2, ());
        let busy = t.acquire(2).unwrap();
        t.expire_idle();
        assert!(t.get(1).is_none());
        assert!(t.get(2).is_some(), "in use");
        drop(busy);
        t.expire_idle();
        assert!(t.get(2).is_none());
    }
}
