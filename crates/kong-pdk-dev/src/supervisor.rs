//! Plugin server processes, managed like Kong's `process.lua`: started with
//! `sh -c "exec <start_cmd>"`, every output line logged as `[<name>:<pid>] …`,
//! restarted when they exit (at most once a second), stopped with SIGTERM.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::log;
use crate::serve::stopped;

/// How long a stopped server gets to exit before SIGKILL (Kong does not
/// wait; waiting lets the server remove its socket before the gateway exits).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the gateway saw of a server's runs, to explain a missing socket.
#[derive(Debug, Default)]
pub struct Observed {
    /// The last lines it wrote (stdout and stderr), oldest first.
    pub last_lines: VecDeque<String>,
    /// How its last run ended, if it ended.
    pub last_exit: Option<String>,
    /// Its start command was not found (the shell exited 127).
    pub command_not_found: bool,
}

/// Lines of output kept per server.
const KEPT_LINES: usize = 20;

type Shared = Arc<Mutex<Observed>>;

fn observe(shared: &Shared, f: impl FnOnce(&mut Observed)) {
    f(&mut shared.lock().unwrap_or_else(|e| e.into_inner()));
}

/// One supervised plugin server.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    pid: Arc<AtomicU32>,
    observed: Shared,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervised {
    /// Starts a plugin server as `launch` says; `on_spawn` runs after every
    /// restart (not the first start), e.g. to forget the old process's
    /// instances.
    pub fn start(launch: Launch, on_restart: impl Fn() + Send + Sync + 'static) -> Supervised {
        let pid = Arc::new(AtomicU32::new(0));
        let observed = Shared::default();
        let (stop, stopped) = watch::channel(false);
        let name = launch.name.clone();
        let task = tokio::spawn(supervise(
            launch,
            Arc::clone(&pid),
            Arc::clone(&observed),
            stopped,
            Box::new(on_restart),
        ));
        Supervised {
            name,
            pid,
            observed,
            stop,
            task,
        }
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current process id (0 while none runs).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// `f` of what the gateway saw of its runs so far.
    pub fn with_observed<T>(&self, f: impl FnOnce(&Observed) -> T) -> T {
        f(&self.observed.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sends SIGTERM and waits for the process to exit (SIGKILL after a
    /// grace period).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Sends `signal` to `pid`.
pub fn send_signal(pid: u32, signal: i32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// How to start one plugin server.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The server's name.
    pub name: String,
    /// Its start command, run with `/bin/sh -c "exec …"`.
    pub cmd: String,
    /// The directory the command runs in.
    pub dir: PathBuf,
    /// Its whole environment (as an nginx worker would give it).
    pub env: Vec<(String, String)>,
}

async fn supervise(
    launch: Launch,
    pid_slot: Arc<AtomicU32>,
    observed: Shared,
    mut stop: watch::Receiver<bool>,
    on_restart: Box<dyn Fn() + Send + Sync>,
) {
    let Launch {
        name,
        cmd,
        dir,
        env,
    } = launch;
    let mut next_spawn = Instant::now();
    let mut first = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_spawn) => {}
            () = stopped(&mut stop) => return,
        }
        next_spawn = Instant::now() + Duration::from_secs(1);
        let spawned = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec {cmd}"))
            .current_dir(&dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                log::error(format!("could not start pluginserver '{name}': {e}"));
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        pid_slot.store(pid, Ordering::Relaxed);
        log::info(format!("started pluginserver '{name}', pid {pid}"));
        if !first {
            on_restart();
        }
        first = false;
        let mut forwarders = Vec::new();
        if let Some(out) = child.stdout.take() {
            let prefix = format!("[{name}:{pid}] ");
            forwarders.push(tokio::spawn(forward(out, prefix, Arc::clone(&observed))));
        }
        if let Some(err) = child.stderr.take() {
            let prefix = format!("[{name}:{pid}] ");
            forwarders.push(tokio::spawn(forward(err, prefix, Arc::clone(&observed))));
        }
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            () = stopped(&mut stop) => None,
        };
        match exited {
            Some(status) => {
                pid_slot.store(0, Ordering::Relaxed);
                for f in forwarders {
                    let _ = f.await;
                }
                observe(&observed, |o| {
                    o.last_exit = Some(match &status {
                        Ok(s) => describe(*s),
                        Err(e) => e.to_string(),
                    });
                    o.command_not_found |= matches!(&status, Ok(s) if s.code() == Some(127));
                });
                match status {
                    Ok(s) if s.code() == Some(127) => log::error(format!(
                        "external pluginserver '{name}' start command {cmd} exited with \"command not found\""
                    )),
                    Ok(s) => log::error(format!(
                        "external pluginserver '{name}' terminated: {}",
                        describe(s)
                    )),
                    Err(e) => {
                        log::error(format!("external pluginserver '{name}': wait failed: {e}"))
                    }
                }
                if *stop.borrow() {
                    return;
                }
            }
            None => {
                let _ = send_signal(pid, libc::SIGTERM);
                let exited = tokio::time::timeout(STOP_GRACE, child.wait()).await;
                if exited.is_err() {
                    log::warn(format!(
                        "pluginserver '{name}', pid {pid} did not exit within {} s of SIGTERM; killing it",
                        STOP_GRACE.as_secs()
                    ));
                    let _ = child.kill().await;
                }
                for f in forwarders {
                    let _ = f.await;
                }
                pid_slot.store(0, Ordering::Relaxed);
                log::info(format!(
                    "successfully stopped pluginserver '{name}', pid {pid}"
                ));
                return;
            }
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => status.to_string(),
    }
}

async fn forward(stream: impl AsyncRead + Unpin, prefix: String, observed: Shared) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                log::info(format!("{prefix}{line}"));
                observe(&observed, |o| {
                    if o.last_lines.len() == KEPT_LINES {
                        o.last_lines.pop_front();
                    }
                    o.last_lines.push_back(line.to_owned());
                });
            }
        }
    }
}
