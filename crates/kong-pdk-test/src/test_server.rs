//! [`TestServer`]: a plugin's real server in the test's own runtime, on a
//! temporary socket, for tests that drive it with the [`driver`](crate::driver).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kong_pdk::Plugin;
use kong_pdk::server::{Server, ServerStats};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::driver::Connection;

/// A running in-process plugin server. Stop it with [`TestServer::stop`]
/// (dropping it aborts the server task instead).
#[derive(Debug)]
pub struct TestServer {
    socket: PathBuf,
    stats: ServerStats,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Serves `server` on `<tempdir>/<plugin name>.socket` and waits until it
    /// listens; panics when it cannot.
    pub async fn start<P: Plugin>(server: Server<P>) -> TestServer {
        match TestServer::try_start(server).await {
            Ok(server) => server,
            Err(e) => panic!("the test server did not start: {e}"),
        }
    }

    /// [`TestServer::start`], with the failure as an error.
    pub async fn try_start<P: Plugin>(server: Server<P>) -> io::Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let socket = server.socket_path(dir.path());
        let stats = server.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let path = socket.clone();
        let task = tokio::spawn(async move {
            server
                .serve_at(&path, async {
                    let _ = stopped.await;
                })
                .await
        });
        for _ in 0..5000 {
            if socket.exists() || task.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !socket.exists() {
            task.abort();
            return Err(io::Error::other(format!(
                "the plugin server did not create {}",
                socket.display()
            )));
        }
        Ok(TestServer {
            socket,
            stats,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        })
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The server's live counts.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// A new Kong-side connection.
    pub async fn connect(&self) -> Connection {
        Connection::connect(&self.socket)
            .await
            .expect("connect to the test server")
    }

    /// Shuts the server down like SIGTERM does and returns how `serve_at`
    /// ended; the socket file is gone afterwards.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("stopped once");
        task.await.map_err(io::Error::other)?
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
