//! The handler deadline and the hang-up check, kept by one thread per
//! server instead of a timer per event and a second descriptor per
//! connection. A tokio timer per event meant registering and cancelling an
//! entry in the timer wheel and reading the clock on every event (about 12 %
//! of an event's instructions, measured with callgrind). Here an event only
//! stores its start, read from a coarse clock the watchdog keeps, and the
//! watchdog, waking every `tick`, ends the events that ran too long.
//!
//! The same thread notices Kong closing a connection while its handler runs
//! (a request aborted): it polls the sockets of running events for a
//! hang-up. Before, each connection kept a duplicated descriptor registered
//! with the runtime, which doubled the readiness events of every frame.
//!
//! Precision: an event is ended between `deadline` and `deadline + 2 ticks`
//! after it started (the start is read from a clock up to one tick old), with
//! `tick = deadline / 8`, between 5 ms and 250 ms. Never early. A hang-up is
//! seen within a tick.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// `Slot::state` of an event the watchdog ended.
const EXPIRED: u64 = u64::MAX;
/// `Slot::state` between events.
const IDLE: u64 = 0;
/// `Slot::state` of an event whose connection Kong closed.
const HUNG_UP: u64 = u64::MAX - 1;

/// Why the watchdog ended an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It ran past the deadline.
    Deadline,
    /// Kong closed its connection.
    HungUp,
}

/// One server's watchdog: the coarse clock and the slots it checks.
#[derive(Debug)]
pub(crate) struct Watchdog {
    inner: Arc<Inner>,
}

/// The coarse clock: milliseconds since the first watchdog started, as of
/// the last tick of any watchdog. Events read it instead of the system
/// clock (the deadline, and the instances' last use).
static COARSE_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// The coarse clock's reading (see `COARSE_MS`): at most a tick old while a
/// server runs.
pub(crate) fn coarse_now_ms() -> u64 {
    COARSE_MS.load(Ordering::Relaxed)
}

#[derive(Debug)]
struct Inner {
    slots: Mutex<Vec<Weak<Slot>>>,
    deadline_ms: u64,
    tick: Duration,
    stop: AtomicBool,
    /// The server is stopping: idle connections end (see `close_idle`).
    closing: AtomicBool,
}

/// Where one connection's (or one MsgPack event's) current event is
/// watched. Used by one task at a time.
#[derive(Debug)]
pub(crate) struct Slot {
    /// `IDLE`, `EXPIRED`, or the running event's start (ms + 1) in the high
    /// bits and a per-slot event number in the low 16: the watchdog ends an
    /// event only if the state it read is still there, so an event that
    /// started since is never ended in its predecessor's place.
    state: AtomicU64,
    generation: AtomicU64,
    /// The connection's socket, watched for a hang-up (-1: none, or the
    /// connection is closing). Changed only under `Inner::slots`' lock, which
    /// the watchdog holds while it uses the descriptor: once a connection
    /// has cleared it, the watchdog never touches the number again (the
    /// kernel may give it to another file).
    fd: std::sync::atomic::AtomicI32,
    waker: Mutex<Option<Waker>>,
    /// Whether `waker` holds the task's waker: a connection's task keeps
    /// its waker for life, so it is stored once, not at every event.
    has_waker: AtomicBool,
    inner: Arc<Inner>,
}

impl Watchdog {
    /// Starts the watchdog thread for handlers limited to `deadline`.
    pub(crate) fn start(deadline: Duration) -> Watchdog {
        let tick = (deadline / 8).clamp(Duration::from_millis(5), Duration::from_millis(250));
        EPOCH.get_or_init(Instant::now);
        let inner = Arc::new(Inner {
            slots: Mutex::new(Vec::new()),
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX / 4),
            tick,
            stop: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        });
        let watched = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("kong-pdk-watchdog".into())
            .spawn(move || watch(&watched))
            .expect("spawning the watchdog thread");
        Watchdog { inner }
    }

    /// A slot for a connection on socket `fd` (or, with `None`, for a
    /// MsgPack event): registered once, then armed per event at the cost of
    /// two atomic stores.
    pub(crate) fn slot(&self, fd: Option<std::os::fd::RawFd>) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            state: AtomicU64::new(IDLE),
            generation: AtomicU64::new(0),
            fd: std::sync::atomic::AtomicI32::new(fd.unwrap_or(-1)),
            waker: Mutex::new(None),
            has_waker: AtomicBool::new(false),
            inner: Arc::clone(&self.inner),
        });
        if let Ok(mut slots) = self.inner.slots.lock() {
            slots.push(Arc::downgrade(&slot));
        }
        slot
    }
}

impl Watchdog {
    /// The server is stopping: every connection between events stops
    /// reading (its next read sees the end of the stream) and every
    /// connection in an event ends after it ([`Slot::closing`]). Instead of
    /// a shutdown future polled beside every read, which cost a waiter
    /// registration per event.
    pub(crate) fn close_idle(&self) {
        // SeqCst with `Slot::disarm` and `Slot::closing`: a connection that
        // ends its event either sees `closing`, or is idle when the scan
        // below looks at it.
        self.inner.closing.store(true, Ordering::SeqCst);
        let Ok(slots) = self.inner.slots.lock() else {
            return;
        };
        for slot in slots.iter().filter_map(Weak::upgrade) {
            let fd = slot.fd.load(Ordering::Relaxed);
            if fd >= 0 && slot.state.load(Ordering::SeqCst) == IDLE {
                // SAFETY: a plain syscall on a descriptor its connection
                // still owns (it clears `fd` under this lock before closing).
                unsafe { libc::shutdown(fd, libc::SHUT_RD) };
            }
        }
    }
}

/// A connection's slot: clears the descriptor from the watchdog's view when
/// dropped, which must happen before the connection closes its socket
/// (declare it after the connection).
#[derive(Debug)]
pub(crate) struct Watched(Arc<Slot>);

impl Watchdog {
    /// The slot of a connection on socket `fd`.
    pub(crate) fn watch_connection(&self, fd: std::os::fd::RawFd) -> Watched {
        Watched(self.slot(Some(fd)))
    }
}

impl std::ops::Deref for Watched {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.0
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _lock = self.0.inner.slots.lock();
        self.0.fd.store(-1, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // The thread ends at its next tick; nothing waits for it.
        self.inner.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(inner: &Inner) {
    while !inner.stop.load(Ordering::Relaxed) {
        std::thread::sleep(inner.tick);
        let epoch = EPOCH.get_or_init(Instant::now);
        let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 4);
        // Several servers in one process share the clock: it never goes back.
        COARSE_MS.fetch_max(now, Ordering::Relaxed);
        // The start may be read up to a tick late: allow for it, so an event
        // is never ended before its deadline.
        let tick_ms = u64::try_from(inner.tick.as_millis()).unwrap_or(0);
        let limit = inner.deadline_ms.saturating_add(tick_ms);
        let Ok(mut slots) = inner.slots.lock() else {
            return;
        };
        slots.retain(|weak| {
            let Some(slot) = weak.upgrade() else {
                return false;
            };
            let state = slot.state.load(Ordering::Acquire);
            if state != IDLE && state != EXPIRED && state != HUNG_UP {
                let started = (state >> 16).saturating_sub(1);
                let end = if now.saturating_sub(started) >= limit {
                    Some(EXPIRED)
                } else if slot.fd.load(Ordering::Relaxed) >= 0
                    && hung_up(slot.fd.load(Ordering::Relaxed))
                {
                    Some(HUNG_UP)
                } else {
                    None
                };
                // Only the event that was read: one that started since keeps
                // running.
                if let Some(end) = end
                    && slot
                        .state
                        .compare_exchange(state, end, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    let waker = slot.waker.lock().ok().and_then(|mut w| w.take());
                    slot.has_waker.store(false, Ordering::Release);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            }
            true
        });
    }
}

/// Whether the peer closed `fd` (or it failed). The socket is armed, so
/// its connection, which owns the descriptor, is alive.
fn hung_up(fd: std::os::fd::RawFd) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let ready = unsafe { libc::poll(&mut pollfd, 1, 0) };
    ready > 0 && pollfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

impl Slot {
    /// An event starts now.
    pub(crate) fn arm(&self) {
        let now = coarse_now_ms();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) & 0xffff;
        self.state
            .store(((now + 1) << 16) | generation, Ordering::Release);
    }

    /// The event ended.
    pub(crate) fn disarm(&self) {
        self.state.store(IDLE, Ordering::SeqCst);
    }

    /// Whether the server is stopping: checked between events.
    pub(crate) fn closing(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    /// Resolves when the watchdog ends the armed event, saying why.
    pub(crate) fn ended(&self) -> Expired<'_> {
        Expired { slot: self }
    }

    fn end(&self) -> Option<Ended> {
        match self.state.load(Ordering::Acquire) {
            EXPIRED => Some(Ended::Deadline),
            HUNG_UP => Some(Ended::HungUp),
            _ => None,
        }
    }
}

/// See [`Slot::expired`].
#[derive(Debug)]
pub(crate) struct Expired<'a> {
    slot: &'a Slot,
}

impl Future for Expired<'_> {
    type Output = Ended;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ended> {
        let slot = self.slot;
        if let Some(end) = slot.end() {
            return Poll::Ready(end);
        }
        // For a connection once for its life: its task's waker does not
        // change, and is only taken when the watchdog ends an event.
        if !slot.has_waker.load(Ordering::Acquire)
            && let Ok(mut waker) = slot.waker.lock()
        {
            *waker = Some(cx.waker().clone());
            slot.has_waker.store(true, Ordering::Release);
        }
        // Checked again after registering: an end in between is not lost.
        match slot.end() {
            Some(end) => Poll::Ready(end),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the slot's event ends; fails the test if it does not within 10 s
    /// (speed is the benchmarks' business, this only checks that it ends).
    async fn ends(slot: &Slot) -> Ended {
        tokio::time::timeout(Duration::from_secs(10), slot.ended())
            .await
            .expect("the watchdog ends the event")
    }

    #[tokio::test]
    async fn ends_an_event_after_the_deadline_and_never_before() {
        let watchdog = Watchdog::start(Duration::from_millis(80));
        let slot = watchdog.slot(None);
        slot.arm();
        let started = Instant::now();
        assert_eq!(ends(&slot).await, Ended::Deadline);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(80), "{took:?}");
    }

    #[tokio::test]
    async fn a_disarmed_or_rearmed_slot_is_not_ended_for_the_last_event() {
        let watchdog = Watchdog::start(Duration::from_millis(40));
        let slot = watchdog.slot(None);
        slot.arm();
        slot.disarm();
        // Long past the deadline: the idle slot stays idle.
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_ne!(slot.state.load(Ordering::Acquire), EXPIRED);
        // A new event gets its own full deadline.
        slot.arm();
        let started = Instant::now();
        assert_eq!(ends(&slot).await, Ended::Deadline);
        assert!(started.elapsed() >= Duration::from_millis(40));
        slot.disarm();
        assert_ne!(slot.state.load(Ordering::Acquire), EXPIRED);
    }

    #[test]
    fn dropped_slots_are_forgotten() {
        let watchdog = Watchdog::start(Duration::from_millis(40));
        drop(watchdog.slot(None));
        let kept = watchdog.slot(None);
        // The next tick prunes it; wait for that rather than for a time.
        let deadline = Instant::now() + Duration::from_secs(10);
        while watchdog.inner.slots.lock().unwrap().len() > 1 {
            assert!(Instant::now() < deadline, "the dropped slot is still there");
            std::thread::sleep(Duration::from_millis(5));
        }
        let slots = watchdog.inner.slots.lock().unwrap();
        assert!(std::ptr::eq(slots[0].as_ptr(), Arc::as_ptr(&kept)));
    }

    #[tokio::test]
    async fn a_peer_closing_the_socket_ends_the_event() {
        use std::os::fd::AsRawFd;
        let watchdog = Watchdog::start(Duration::from_secs(50));
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let slot = watchdog.slot(Some(ours.as_raw_fd()));
        slot.arm();
        // Unread data is not a hang-up.
        std::io::Write::write_all(&mut &theirs, b"answer").unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(slot.end(), None);
        drop(theirs);
        // Long before the 50 s deadline.
        assert_eq!(ends(&slot).await, Ended::HungUp);
    }

    #[tokio::test]
    async fn closing_ends_idle_connections_and_flags_busy_ones() {
        use std::os::fd::AsRawFd;
        use tokio::io::AsyncReadExt;
        let watchdog = Watchdog::start(Duration::from_secs(50));
        let (idle, _kong_idle) = tokio::net::UnixStream::pair().unwrap();
        let (busy, _kong_busy) = tokio::net::UnixStream::pair().unwrap();
        let idle_slot = watchdog.slot(Some(idle.as_raw_fd()));
        let busy_slot = watchdog.slot(Some(busy.as_raw_fd()));
        busy_slot.arm();
        assert!(!idle_slot.closing());
        watchdog.close_idle();
        let mut idle = idle;
        let mut byte = [0u8; 1];
        assert_eq!(idle.read(&mut byte).await.unwrap(), 0, "end of stream");
        busy_slot.disarm();
        assert!(busy_slot.closing());
        // The busy connection's reads were left alone.
        assert!(busy.try_read(&mut byte).is_err());
    }
}
