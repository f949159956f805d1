//! [`Tracked`]: a response body that reports when it has been sent (or
//! dropped), so the `log` phase runs after the response, as in Kong; and
//! [`Tasks`]: a count of background tasks to wait for at shutdown.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::sync::{Notify, oneshot};

use crate::serve::{Body, BoxError};

/// A body that counts the bytes it yields and sends the count when it ends
/// or is dropped.
#[derive(Debug)]
pub struct Tracked {
    inner: Body,
    sent: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Tracked {
    /// Wraps `inner`; the receiver gets the byte count.
    pub fn new(inner: Body) -> (Tracked, oneshot::Receiver<u64>) {
        let (tx, rx) = oneshot::channel();
        (
            Tracked {
                inner,
                sent: 0,
                done: Some(tx),
            },
            rx,
        )
    }

    fn finish(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(self.sent);
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Background tasks in flight (the `log` phases), to drain at shutdown.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    inner: Arc<(AtomicUsize, Notify)>,
}

/// Held while a task runs.
#[derive(Debug)]
pub struct TaskGuard(Tasks);

impl Tasks {
    /// Counts a task until the guard drops.
    pub fn start(&self) -> TaskGuard {
        self.inner.0.fetch_add(1, Ordering::AcqRel);
        TaskGuard(self.clone())
    }

    /// Waits until no task runs, at most `limit`.
    pub async fn drain(&self, limit: Duration) {
        let wait = async {
            loop {
                let notified = self.inner.1.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.inner.0.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.inner.0.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.inner.1.notify_waiters();
        }
    }
}
