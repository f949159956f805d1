//! The table of running plugin instances, keyed by the id Kong sends back in
//! every `CmdHandleEvent`.

use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::watchdog::coarse_now_ms;

/// One plugin instance: a deserialized config plus bookkeeping.
#[derive(Debug)]
pub(crate) struct Instance<P> {
    pub(crate) id: i32,
    /// Kong's `__seq__` for it (0 when the config had none).
    seq: i64,
    pub(crate) plugin: P,
    /// Seconds since the Unix epoch (`InstanceStatus.started_at`).
    pub(crate) started_at: i64,
    /// The coarse clock's reading at the last event's end.
    last_used_ms: AtomicU64,
    in_use: AtomicUsize,
}

/// Marks an instance busy for as long as it lives.
#[derive(Debug)]
pub(crate) struct InUse<P> {
    pub(crate) instance: Arc<Instance<P>>,
}

impl<P> Drop for InUse<P> {
    fn drop(&mut self) {
        self.instance
            .last_used_ms
            .store(coarse_now_ms(), Ordering::Relaxed);
        self.instance.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Instances by id; ids are small integers from Kong or counted by us.
type IdMap<V> = crate::fast_hash::FastMap<i32, V>;

#[derive(Debug)]
pub(crate) struct Instances<P> {
    map: Mutex<IdMap<Arc<Instance<P>>>>,
    /// Ids for configs without a `__seq__`; counting down from the top keeps
    /// them away from Kong's small `__seq__` numbers.
    next_free_id: AtomicI32,
    idle_timeout: Duration,
    counters: Arc<super::stats::Counters>,
}

impl<P> Instances<P> {
    pub(crate) fn new(idle_timeout: Duration, counters: Arc<super::stats::Counters>) -> Self {
        Instances {
            map: Mutex::new(IdMap::default()),
            next_free_id: AtomicI32::new(i32::MAX),
            idle_timeout,
            counters,
        }
    }

    fn publish_len(&self, len: usize) {
        self.counters.instances.store(len, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, IdMap<Arc<Instance<P>>>> {
        // A panic never happens while the lock is held; recover anyway.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an instance for Kong's `__seq__` `seq`, and returns it with the
    /// id Kong will use for it. The id is `seq` itself when that fits Kong's
    /// int32 ids and is not taken by another instance; an instance started
    /// again with the same `seq` replaces the old one under the same id.
    /// Other sequences (0, negative, beyond `i32::MAX`) get a fresh id that
    /// no live instance has.
    pub(crate) fn insert(&self, seq: i64, plugin: P) -> Arc<Instance<P>> {
        self.expire_idle();
        let mut map = self.lock();
        let same_seq = (seq != 0)
            .then(|| map.values().find(|i| i.seq == seq).map(|i| i.id))
            .flatten();
        let id = match (same_seq, i32::try_from(seq)) {
            (Some(id), _) => id,
            (None, Ok(id)) if id > 0 && !map.contains_key(&id) => id,
            _ => loop {
                let id = self.next_free_id.fetch_sub(1, Ordering::Relaxed);
                if id <= 0 {
                    self.next_free_id.store(i32::MAX, Ordering::Relaxed);
                    continue;
                }
                if !map.contains_key(&id) {
                    break id;
                }
            },
        };
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let instance = Arc::new(Instance {
            id,
            seq,
            plugin,
            started_at,
            last_used_ms: AtomicU64::new(coarse_now_ms()),
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
    /// (unknown id → connection closed → Kong starts it again). Times come
    /// from the watchdog's coarse clock (a tick's precision is plenty for
    /// an idle timeout in minutes, and an event reads no system clock).
    pub(crate) fn expire_idle(&self) {
        let now = coarse_now_ms();
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
    fn sequences_beyond_int32_get_ids_of_their_own() {
        let t = Instances::new(Duration::from_secs(60), Arc::default());
        let max = t.insert(i64::from(i32::MAX), "max");
        let big = t.insert((1 << 31) + 1, "big");
        let bigger = t.insert((1 << 32) + 1, "bigger");
        let ids = [big.id, bigger.id, max.id];
        assert_eq!(max.id, i32::MAX);
        assert!(ids.iter().all(|id| *id > 0));
        assert_ne!(big.id, bigger.id);
        assert_ne!(big.id, max.id);
        assert_ne!(bigger.id, max.id);
        assert_eq!(t.get(big.id).unwrap().plugin, "big");
        assert_eq!(t.get(bigger.id).unwrap().plugin, "bigger");
        // Started again with the same sequence: replaced, same id.
        assert_eq!(t.insert((1 << 32) + 1, "again").id, bigger.id);
        assert_eq!(t.get(bigger.id).unwrap().plugin, "again");
        assert_eq!(t.len(), 3);
        // A sequence equal to an id already given out does not take it.
        let taken = t.insert(i64::from(big.id), "other");
        assert_ne!(taken.id, big.id);
        assert_eq!(t.get(big.id).unwrap().plugin, "big");
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
