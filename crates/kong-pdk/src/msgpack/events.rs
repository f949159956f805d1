//! The events in flight under MsgPack:1, by `EventId`: Kong's steps arrive
//! on whichever pooled connection Kong picks, and are handed to the event
//! they name.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rmpv::Value as Mp;
use tokio::sync::{mpsc, oneshot};

/// One `plugin.Step*` from Kong, with the slot for the reply.
#[derive(Debug)]
pub(crate) struct StepIn {
    /// `plugin.Step`, `plugin.StepMultiMap`, …, `plugin.StepError`.
    pub(crate) method: String,
    /// `Data`; `None` when Kong's function returned nil (the key is absent).
    pub(crate) data: Option<Mp>,
    /// Where the event's next call (or `"ret"`) goes.
    pub(crate) reply: Option<oneshot::Sender<Mp>>,
}

impl StepIn {
    /// Whether Kong reports the call failed (`plugin.StepError`, sent by
    /// Kong versions whose bridge keeps the Lua error).
    pub(crate) fn is_error(&self) -> bool {
        self.method == "plugin.StepError"
    }

    /// The error Kong sent with `plugin.StepError`.
    pub(crate) fn error_text(&self) -> String {
        match &self.data {
            Some(Mp::String(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            Some(other) => other.to_string(),
            None => "unknown error".to_owned(),
        }
    }
}

/// The registry.
#[derive(Debug, Default)]
pub(crate) struct Events {
    next_id: AtomicU64,
    live: Mutex<crate::fast_hash::FastMap<u64, mpsc::Sender<StepIn>>>,
}

impl Events {
    /// Registers a new event; its id and the receiving end of its steps.
    pub(crate) fn register(&self) -> (u64, mpsc::Receiver<StepIn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(1);
        self.lock().insert(id, tx);
        (id, rx)
    }

    /// Forgets an ended event.
    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Hands a step to its event; `false` when no event has that id (it
    /// ended, timed out, or never existed).
    pub(crate) async fn deliver(&self, id: u64, step: StepIn) -> bool {
        let tx = self.lock().get(&id).cloned();
        match tx {
            Some(tx) => tx.send(step).await.is_ok(),
            None => false,
        }
    }

    /// Events in flight.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, crate::fast_hash::FastMap<u64, mpsc::Sender<StepIn>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}
