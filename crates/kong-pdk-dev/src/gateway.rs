//! `kong-pdk-dev gateway`: start-up, serving and shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::conf::KongConf;
use crate::declarative::{self, Declarative};
use crate::error::{Error, Result};
use crate::log;
use crate::prefix_lock::PrefixLock;
use crate::proxy::Proxy;
use crate::serve::ResponseFuture;
use crate::setup::{self, Setup};
use crate::supervisor::{Launch, Observed, Supervised};
use kong_pdk::server::Termination;

/// Options of `kong-pdk-dev gateway`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-c`: the kong.conf file (default: `/etc/kong/kong.conf` when it
    /// exists).
    pub conf: Option<PathBuf>,
    /// `--echo-upstream`: overrides `dev_echo_upstream_listen`.
    pub echo_upstream: Option<String>,
}

/// How long to wait for each started server's socket before serving.
const SOCKET_WAIT: Duration = Duration::from_secs(10);

/// Runs the gateway until `termination` (SIGTERM/SIGINT) fires; an `Err`
/// is a start-up failure. The caller installs `termination` as early as it
/// can: the earlier, the fewer signals can kill the gateway before it
/// cleans up. A signal during start-up stops the gateway there: whatever was
/// started is stopped, and no plugin server is left behind.
pub async fn run(options: Options, mut termination: Termination) -> Result<()> {
    let conf_path = options.conf.clone().or_else(|| {
        let default = Path::new("/etc/kong/kong.conf");
        default.exists().then(|| default.to_path_buf())
    });
    let mut conf = KongConf::load(conf_path.as_deref(), std::env::vars())?;
    if let Some(addr) = &options.echo_upstream {
        conf.echo_upstream_listen =
            Some(crate::conf::resolve_addr(addr).map_err(|e| Error::at("--echo-upstream", e))?);
    }
    for w in &conf.warnings {
        log::warn(w);
    }
    log::info(format!(
        "kong-pdk-dev {} starting with {} (prefix {})",
        env!("CARGO_PKG_VERSION"),
        conf.file,
        conf.prefix.display()
    ));
    std::fs::create_dir_all(&conf.prefix).map_err(|e| {
        Error::at(
            format!("{}: prefix", conf.file),
            format!("cannot create {}: {e}", conf.prefix.display()),
        )
    })?;
    // Like Kong, refuse a prefix another gateway is running in: it would
    // take over that one's plugin sockets.
    let _lock = PrefixLock::take(&conf.prefix)?;

    let decl = match &conf.declarative_config {
        Some(path) => declarative::load(path)?,
        None => {
            log::warn(format!(
                "{}: declarative_config is not set: no routes, every request gets 404",
                conf.file
            ));
            Declarative::default()
        }
    };
    for w in &decl.warnings {
        log::warn(w);
    }

    let servers = tokio::select! {
        servers = setup::query_servers(&conf) => servers?,
        name = termination.recv() => {
            log::info(format!("{name} received during start-up; nothing was started"));
            return Ok(());
        }
    };
    for s in &servers {
        log::info(format!(
            "pluginserver '{}': plugin '{}' {} priority {} phases [{}] socket {}",
            s.server,
            s.info.name,
            s.info.version,
            s.info.priority,
            s.info
                .phases
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            s.socket.display()
        ));
    }
    let setup = Setup::new(&conf, decl, servers, 0)?;

    // Bind before starting anything, so a busy port is reported first.
    let mut proxy_listeners = Vec::new();
    for addr in &conf.proxy_listen {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::at(
                format!("{}: proxy_listen", conf.file),
                format!("cannot listen on {addr}: {e}"),
            )
        })?;
        proxy_listeners.push(listener);
    }
    let echo_listener = match conf.echo_upstream_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            Error::at(
                format!("{}: dev_echo_upstream_listen", conf.file),
                format!("cannot listen on {addr}: {e}"),
            )
        })?),
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(listener) = echo_listener {
        let addr = listener.local_addr().ok();
        log::info(format!(
            "echo upstream listening on http://{}",
            addr.map_or("?".into(), |a| a.to_string())
        ));
        tasks.push(tokio::spawn(crate::echo::run(listener, stop_rx.clone())));
    }

    // Start the plugin servers like Kong's worker 0.
    let mut supervised = Vec::new();
    for ps in &conf.pluginservers {
        let Some(cmd) = &ps.start_cmd else { continue };
        remove_stale_socket(&ps.socket);
        let server = setup.servers.iter().find(|s| s.server == ps.name).cloned();
        let reset = move || {
            if let Some(s) = &server {
                s.reset();
            }
        };
        let launch = Launch {
            name: ps.name.clone(),
            cmd: cmd.value.clone(),
            dir: conf.dir.clone(),
            env: conf.server_env.clone(),
        };
        supervised.push(Supervised::start(launch, reset));
    }
    let interrupted = tokio::select! {
        () = wait_for_sockets(&setup, &supervised) => None,
        name = termination.recv() => Some(name),
    };
    if let Some(name) = interrupted {
        log::info(format!("{name} received during start-up; stopping"));
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        stop_all(supervised).await;
        return Ok(());
    }

    let body_dir = conf.prefix.join("client_body_temp");
    let proxy = Arc::new(Proxy::new(setup, body_dir));
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for listener in proxy_listeners {
        if let Ok(a) = listener.local_addr() {
            addrs.push(a);
        }
        let proxy = Arc::clone(&proxy);
        let handle = move |req, peer, local| -> ResponseFuture {
            Box::pin(Arc::clone(&proxy).handle(req, peer, local))
        };
        tasks.push(tokio::spawn(crate::serve::serve(
            listener,
            stop_rx.clone(),
            handle,
        )));
    }
    tasks.push(tokio::spawn(watch_declarative(
        conf.clone(),
        Arc::clone(&proxy),
        stop_rx.clone(),
    )));
    let current = proxy.setup();
    log::info(format!(
        "kong-pdk-dev ready: proxy listening on {} ({} routes, {} plugins)",
        if addrs.is_empty() {
            "nothing (proxy_listen = off)".to_owned()
        } else {
            addrs
                .iter()
                .map(|a| format!("http://{a}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        current.decl.routes.len(),
        current.plugins.len()
    ));
    drop(current);

    let name = termination.recv().await;
    log::info(format!("{name} received, shutting down"));
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    proxy.tasks.drain(Duration::from_secs(10)).await;
    stop_all(supervised).await;
    log::info("stopped");
    Ok(())
}

/// Stops every plugin server (SIGTERM, in parallel) and waits for them.
async fn stop_all(supervised: Vec<Supervised>) {
    let stopping: Vec<_> = supervised
        .into_iter()
        .map(|s| tokio::spawn(s.stop()))
        .collect();
    for s in stopping {
        let _ = s.await;
    }
}

/// Reloads `declarative_config` when the file changes (checked every
/// second) or on SIGHUP. As when Kong rebuilds its plugins iterator, every
/// plugin config gets a new `__seq__`: instances are started anew on first
/// use and the replaced ones closed. An invalid file keeps the previous
/// configuration.
async fn watch_declarative(conf: KongConf, proxy: Arc<Proxy>, mut stop: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(path) = conf.declarative_config.clone() else {
        return;
    };
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut last = stamp(&path);
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        let forced = tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
            () = async {
                match hup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending().await,
                }
            } => true,
            () = crate::serve::stopped(&mut stop) => return,
        };
        let now = stamp(&path);
        if now == last && !forced {
            continue;
        }
        last = now;
        let current = proxy.setup();
        let reloaded = declarative::load(&path)
            .and_then(|decl| Setup::new(&conf, decl, current.servers.clone(), current.last_seq));
        match reloaded {
            Ok(setup) => {
                for w in &setup.decl.warnings {
                    log::warn(w);
                }
                log::info(format!(
                    "{} reloaded: {} routes, {} plugins (instances restart with new __seq__)",
                    path.display(),
                    setup.decl.routes.len(),
                    setup.plugins.len()
                ));
                proxy.replace_setup(setup);
            }
            Err(e) => log::error(format!(
                "{} not reloaded, the previous configuration stays:\n{e}",
                path.display()
            )),
        }
    }
}

/// A socket file left by a server that did not stop cleanly would look
/// ready before the new server binds; the server it belongs to is about to
/// be started, so remove it.
fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Kong does not wait for plugin servers; a first request could then fail.
/// The gateway waits (bounded) for every socket before serving, and says
/// why one is missing when it can tell: the start command was not found,
/// or the server listens on another path than the configured socket.
async fn wait_for_sockets(setup: &Setup, supervised: &[Supervised]) {
    let deadline = tokio::time::Instant::now() + SOCKET_WAIT;
    for s in &setup.servers {
        let process = supervised.iter().find(|p| p.name() == s.server);
        let mut reason = None;
        while !s.socket.exists() && tokio::time::Instant::now() < deadline {
            reason = process.and_then(|p| p.with_observed(|o| missing_socket_reason(&s.socket, o)));
            if reason.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !s.socket.exists() {
            let why = reason.unwrap_or_else(|| {
                let last = process
                    .and_then(|p| p.with_observed(|o| o.last_exit.clone()))
                    .map_or(String::new(), |e| format!(" (its last run ended: {e})"));
                format!("no socket after {} s{last}", SOCKET_WAIT.as_secs())
            });
            log::warn(format!(
                "pluginserver '{}': no socket at {}: {why}; requests using plugin '{}' fail until it appears",
                s.server,
                s.socket.display(),
                s.info.name
            ));
        }
    }
}

/// Why a server's socket cannot appear at `socket`, when its runs tell.
fn missing_socket_reason(socket: &Path, observed: &Observed) -> Option<String> {
    if observed.command_not_found {
        return Some("its start command was not found (the shell exited 127)".into());
    }
    // kong-pdk and go-pdk servers both log where they listen.
    let elsewhere = observed.last_lines.iter().find_map(|line| {
        let (_, path) = line.split_once("Listening on socket: ")?;
        let path = Path::new(path.trim());
        (path != socket).then(|| path.to_path_buf())
    })?;
    Some(format!(
        "the server listens on {} instead; give it the same prefix (-kong-prefix) or set pluginserver_<name>_socket to that path",
        elsewhere.display()
    ))
}
