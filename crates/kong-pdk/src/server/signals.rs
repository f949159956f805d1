//! When to stop: SIGTERM (what Kong sends), SIGINT, or Kong gone.
//!
//! Kong may send SIGTERM at any moment after it started the process (a
//! `kong reload` right after a start). A signal that arrives before a
//! handler exists kills the process with the default action, leaving its
//! socket behind, so [`hold_termination_signals`] blocks them from the very
//! start and [`Termination::install`] installs the handlers before anything
//! is bound; a signal held in between is delivered then, not lost. (The
//! runtime's threads release the block when they start, so that processes a
//! handler spawns do not inherit it; a signal in the microseconds between
//! their start and the install ends the process before it bound anything.)

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT held back (blocked) for the calling thread until this
/// is dropped. Take it first thing in `main`, drop it once a
/// [`Termination`] is installed.
///
/// Threads inherit the block: a runtime built meanwhile should release it in
/// its threads (`Builder::on_thread_start(release_termination_signals)`),
/// or the processes they spawn would start with the signals blocked.
#[derive(Debug)]
pub struct SignalHold(());

/// Blocks SIGTERM and SIGINT for the calling thread until the returned hold
/// is dropped. A signal that arrives meanwhile stays pending and is
/// delivered at the drop.
pub fn hold_termination_signals() -> SignalHold {
    termination_mask(libc::SIG_BLOCK);
    SignalHold(())
}

/// Unblocks SIGTERM and SIGINT for the calling thread (also when the
/// process was started with them blocked: a server must receive them).
pub fn release_termination_signals() {
    termination_mask(libc::SIG_UNBLOCK);
}

fn termination_mask(how: libc::c_int) {
    // SAFETY: plain libc calls on a stack-allocated sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

impl Drop for SignalHold {
    fn drop(&mut self) {
        release_termination_signals();
    }
}

/// SIGTERM and SIGINT, listened for from the moment it is installed: a
/// signal that arrives before [`recv`](Self::recv) is awaited is kept.
#[derive(Debug)]
pub struct Termination {
    term: Signal,
    int: Signal,
}

impl Termination {
    /// Installs the handlers. Needs a tokio runtime (call it inside one, or
    /// after `Runtime::enter`).
    pub fn install() -> io::Result<Termination> {
        Ok(Termination {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on SIGTERM or SIGINT (at once for one already received),
    /// with the signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Resolves on SIGTERM (what Kong sends) or SIGINT, with the signal's name;
/// the handlers are installed when it is first polled (see [`Termination`]
/// to install them earlier). Useful for code that runs beside
/// [`Server::serve`](super::Server::serve) and stops with it.
pub async fn termination_signal() -> &'static str {
    match Termination::install() {
        Ok(mut t) => t.recv().await,
        Err(_) => std::future::pending().await,
    }
}

/// Resolves on SIGTERM, SIGINT, or when the parent process (Kong), whose
/// pid was `parent` when the process started, is gone. The signal handlers
/// are installed now (inside a runtime), not when the future is first polled.
pub(super) fn shutdown_signal(parent: u32) -> io::Result<impl Future<Output = ()>> {
    let mut termination = Termination::install()?;
    Ok(async move {
        tokio::select! {
            name = termination.recv() => tracing::info!("{name} received, shutting down"),
            () = parent_gone(parent) => tracing::info!("parent process exited, shutting down"),
        }
    })
}

/// Resolves when this process is re-parented (its parent died). Polled
/// from a thread of its own: a tokio timer, even one firing once a second,
/// makes the runtime consult its timer wheel and the clock on every park,
/// i.e. several times per event.
async fn parent_gone(parent: u32) {
    if parent == 1 {
        // Started by init (e.g. a container's entry point): nothing to watch.
        return std::future::pending().await;
    }
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("kong-pdk-parent".into())
        .spawn(move || {
            while !gone_tx.is_closed() {
                std::thread::sleep(Duration::from_secs(1));
                if std::os::unix::process::parent_id() != parent {
                    let _ = gone_tx.send(());
                    return;
                }
            }
        });
    match spawned {
        Ok(_) => {
            if gone_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        Err(e) => {
            tracing::warn!("cannot watch the parent process: {e}");
            std::future::pending::<()>().await;
        }
    }
}
