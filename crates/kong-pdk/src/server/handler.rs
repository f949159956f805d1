//! Runs one phase handler and reports how it ended: returned, panicked,
//! called `kong.response.exit`, or ran past its deadline.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use super::watchdog::{Ended, Slot};
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
    deadline: Deadline<'_>,
    span: tracing::Span,
) -> Outcome {
    deadline.slot.arm();
    // A disabled span (the default `info` level) is not entered on every
    // poll.
    let outcome = if span.is_disabled() {
        run_guarded(plugin, phase, kong, deadline).await
    } else {
        tracing::Instrument::instrument(run_guarded(plugin, phase, kong, deadline), span).await
    };
    deadline.slot.disarm();
    outcome
}

/// The handler's time limit: the watchdog slot that enforces it (and, for
/// a connection, notices Kong closing it), and its length for the report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline<'a> {
    pub(crate) slot: &'a Slot,
    pub(crate) limit: Duration,
}

async fn run_guarded<P: Plugin>(
    plugin: &P,
    phase: Phase,
    kong: &mut Kong,
    deadline: Deadline<'_>,
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
    let mut ended = pin!(deadline.slot.ended());
    // One poll function for both (the handler first, as a biased select):
    // it runs at every wake-up of every event.
    poll_fn(move |cx| {
        match catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(Poll::Ready(result)) => return Poll::Ready(Outcome::Returned(result)),
            Ok(Poll::Pending) if exited.load(Ordering::Acquire) => {
                return Poll::Ready(Outcome::Exited);
            }
            Ok(Poll::Pending) => {}
            Err(payload) => {
                return Poll::Ready(Outcome::Panicked(panic_message(payload.as_ref())));
            }
        }
        ended.as_mut().poll(cx).map(|end| match end {
            Ended::Deadline => Outcome::TimedOut(deadline.limit),
            Ended::HungUp => Outcome::PeerClosed,
        })
    })
    .await
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

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
