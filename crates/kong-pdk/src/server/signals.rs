//! When to stop: SIGTERM (what Kong sends), SIGINT, or Kong gone.

use std::time::Duration;

/// Resolves on SIGTERM (what Kong sends) or SIGINT, with the signal's name.
/// Useful for code that runs beside [`Server::serve`](super::Server::serve) and stops with it.
pub async fn termination_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    async fn wait(kind: SignalKind) {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    }
    tokio::select! {
        () = wait(SignalKind::terminate()) => "SIGTERM",
        () = wait(SignalKind::interrupt()) => "SIGINT",
    }
}

/// Resolves on SIGTERM, SIGINT, or when the parent process (Kong), whose
/// pid was `parent` when the process started, is gone.
pub(super) async fn shutdown_signal(parent: u32) {
    tokio::select! {
        name = termination_signal() => tracing::info!("{name} received, shutting down"),
        () = parent_gone(parent) => tracing::info!("parent process exited, shutting down"),
    }
}

/// Resolves when this process is re-parented (its parent died).
async fn parent_gone(parent: u32) {
    if parent == 1 {
        // Started by init (e.g. a container's entry point): nothing to watch.
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}
