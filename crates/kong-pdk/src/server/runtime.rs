//! The async runtime the plugin server runs on.
//!
//! `KONG_PDK_RUNTIME` chooses it: `multi-thread` (tokio's work-stealing
//! scheduler) or `per-core` (one single-threaded runtime per core, each
//! serving the connections handed to it; the accept loop and signals run on
//! the main thread). Kong keeps one event in flight per connection and
//! connections are long-lived, so work-stealing buys little: see
//! docs/BENCHMARKS.md for the two measured side by side.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;

/// The environment variable that chooses the runtime.
pub const RUNTIME_ENV: &str = "KONG_PDK_RUNTIME";

/// How the server's tasks are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuntimeKind {
    /// One work-stealing runtime.
    MultiThread,
    /// One single-threaded runtime per core.
    PerCore,
}

impl RuntimeKind {
    /// From `KONG_PDK_RUNTIME` (unset: the default).
    pub(crate) fn from_env() -> Result<RuntimeKind, String> {
        match std::env::var(RUNTIME_ENV).as_deref() {
            Err(_) | Ok("") => Ok(RuntimeKind::DEFAULT),
            Ok("multi-thread") => Ok(RuntimeKind::MultiThread),
            Ok("per-core") => Ok(RuntimeKind::PerCore),
            Ok(other) => Err(format!(
                "{RUNTIME_ENV}={other:?}: expected multi-thread or per-core"
            )),
        }
    }

    pub(crate) const DEFAULT: RuntimeKind = RuntimeKind::MultiThread;

    /// The runtime the main thread runs: it accepts connections and, with
    /// `MultiThread`, serves them too.
    pub(crate) fn main_runtime(self) -> std::io::Result<Runtime> {
        match self {
            RuntimeKind::MultiThread => Builder::new_multi_thread().enable_all().build(),
            RuntimeKind::PerCore => Builder::new_current_thread().enable_all().build(),
        }
    }
}

/// Single-threaded runtimes on their own threads, one per core, that
/// connections are handed to in turn.
#[derive(Debug)]
pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// One worker per available core.
    pub(crate) fn per_core() -> std::io::Result<Workers> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut workers = Workers {
            handles: Vec::with_capacity(cores),
            next: AtomicUsize::new(0),
            stops: Vec::with_capacity(cores),
            threads: Vec::with_capacity(cores),
        };
        for n in 0..cores {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            workers.handles.push(runtime.handle().clone());
            workers.stops.push(stop);
            workers.threads.push(
                std::thread::Builder::new()
                    .name(format!("kong-pdk-worker-{n}"))
                    .spawn(move || {
                        // Runs the tasks spawned on it until told to stop.
                        let _ = runtime.block_on(stopped);
                    })?,
            );
        }
        Ok(workers)
    }

    /// The runtime the next connection goes to.
    pub(crate) fn next(&self) -> &Handle {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        &self.handles[n % self.handles.len()]
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
