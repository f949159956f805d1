//! Runs one phase handler and reports how it ended: returned, panicked,
//! called `kong.response.exit`, or ran past its deadline.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use crate::kong::Kong;
use crate::plugin::{Phase, PhaseResult, Plugin};

/// How a handler ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It returned.
    Returned(PhaseResult),
    /// It panicked; the payload's message.
    Panicked(String),
    /// It called `kong.response.exit`: Kong answers nothing more.
    Exited,
    /// It ran longer than the deadline and was cancelled.
    TimedOut(Duration),
    /// Kong closed the connection while it ran (the request was aborted);
    /// it was cancelled.
    PeerClosed,
}

/// Runs `plugin`'s handler for `phase`. The handler future is polled here
/// (not spawned), so a panic is caught without losing the connection and
/// the future is dropped as soon as it calls `kong.response.exit`.
pub(crate) async fn run<P: Plugin>(
    plugin: &P,
    phase: Phase,
    kong: &mut Kong,
    deadline: Duration,
    peer_closed: impl Future<Output = ()>,
    span: tracing::Span,
) -> Outcome {
    tracing::Instrument::instrument(
        run_guarded(plugin, phase, kong, deadline, peer_closed),
        span,
    )
    .await
}

async fn run_guarded<P: Plugin>(
    plugin: &P,
    phase: Phase,
    kong: &mut Kong,
    deadline: Duration,
    peer_closed: impl Future<Output = ()>,
) -> Outcome {
    let exited = kong.exit_flag();
    let handler = async move {
        match phase {
            Phase::Certificate => plugin.certificate(kong).await,
            Phase::Rewrite => plugin.rewrite(kong).await,
            Phase::Access => plugin.access(kong).await,
            Phase::Response => plugin.response(kong).await,
            Phase::Preread => plugin.preread(kong).await,
            Phase::Log => plugin.log(kong).await,
        }
    };
    let mut handler = pin!(handler);
    let guarded =
        poll_fn(
            move |cx| match catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
                Ok(Poll::Ready(result)) => Poll::Ready(Outcome::Returned(result)),
                Ok(Poll::Pending) if exited.load(Ordering::Acquire) => Poll::Ready(Outcome::Exited),
                Ok(Poll::Pending) => Poll::Pending,
                Err(payload) => Poll::Ready(Outcome::Panicked(panic_message(payload.as_ref()))),
            },
        );
    tokio::select! {
        biased;
        outcome = tokio::time::timeout(deadline, guarded) => match outcome {
            Ok(outcome) => outcome,
            Err(_) => Outcome::TimedOut(deadline),
        },
        () = peer_closed => Outcome::PeerClosed,
    }
}

/// The span every event's handler runs in: `event` with the plugin, the
/// phase and the instance id, so the plugin's own `tracing` events and
/// spans carry them. Debug level: at the default `info` it is disabled and
/// costs a callsite check, and no PDK call either way.
pub(crate) fn event_span(plugin: &str, phase: Phase, instance: i32) -> tracing::Span {
    tracing::debug_span!(
        "event",
        plugin = plugin,
        phase = phase.as_str(),
        instance = instance
    )
}

/// Resolves when the peer closed its end of the connection. Works on a
/// duplicate of the connection's descriptor and never reads: the answers
/// Kong sends for PDK calls are left for the handler.
pub(crate) async fn peer_closed(watcher: &tokio::net::UnixStream) {
    use tokio::io::Interest;
    loop {
        match watcher.ready(Interest::READABLE).await {
            Ok(ready) if ready.is_read_closed() => return,
            Ok(_) => {
                // Data for the handler: forget this readiness and wait for
                // the next change (more data, or the close).
                let _ = watcher.try_io(Interest::READABLE, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
            }
            Err(_) => return,
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
