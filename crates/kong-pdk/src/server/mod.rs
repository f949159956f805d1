//! The plugin server: the executable Kong starts, queries with `-dump` and
//! talks to over `<kong-prefix>/<name>.socket`.
//!
//! Most plugins only call [`run`](crate::run) from `main`. [`Server`] is the
//! same thing with settings, and [`Server::serve`] runs it on a listener of
//! your choosing (tests, custom process management).

mod cli;
mod connection;
mod dump;
mod handler;
mod instances;

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kong_pdk_proto as pb;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use self::cli::{Command, DEFAULT_PREFIX, UsageError, parse as parse_args, usage};
pub use self::dump::PROTOCOL;
use self::instances::{Instance, Instances};
use crate::plugin::Plugin;

/// Owner read/write only: Kong's worker user (who starts the server) and root.
const DEFAULT_SOCKET_MODE: u32 = 0o600;

fn socket_mode_from_env() -> Option<u32> {
    let text = std::env::var("KONG_PDK_SOCKET_MODE").ok()?;
    match u32::from_str_radix(text.trim().trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 => Some(mode),
        _ => {
            eprintln!("ignoring KONG_PDK_SOCKET_MODE={text:?}: not an octal mode like 660");
            None
        }
    }
}

/// Tunables of a [`Server`].
#[derive(Debug, Clone)]
struct Settings {
    max_frame_size: u32,
    handler_timeout: Duration,
    instance_idle_timeout: Duration,
    shutdown_grace: Duration,
    exit_close_timeout: Duration,
    socket_mode: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_frame_size: crate::wire::DEFAULT_MAX_FRAME,
            // Kong gives up on a socket after 60 s without a frame.
            handler_timeout: Duration::from_secs(50),
            instance_idle_timeout: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(5),
            exit_close_timeout: Duration::from_secs(60),
            socket_mode: socket_mode_from_env().unwrap_or(DEFAULT_SOCKET_MODE),
        }
    }
}

/// Live counts of a running server, for tests and monitoring.
#[derive(Debug, Clone, Default)]
pub struct ServerStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    events: AtomicUsize,
    instances: AtomicUsize,
}

impl ServerStats {
    /// Open connections from Kong.
    pub fn connections(&self) -> usize {
        self.0.connections.load(Ordering::Acquire)
    }

    /// Events (phase handlers) running now.
    pub fn events_in_flight(&self) -> usize {
        self.0.events.load(Ordering::Acquire)
    }

    /// Plugin instances alive.
    pub fn instances(&self) -> usize {
        self.0.instances.load(Ordering::Acquire)
    }
}

/// Decrements a counter when dropped.
#[derive(Debug)]
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A plugin server for plugin type `P`.
///
/// ```no_run
/// # use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
/// # #[derive(serde::Deserialize, Schema)] struct Config {}
/// # #[kong_pdk::plugin] impl Plugin for Config {
/// #     async fn access(&self, _kong: &mut Kong) -> PhaseResult { Ok(()) }
/// # }
/// use std::time::Duration;
///
/// fn main() -> std::process::ExitCode {
///     kong_pdk::server::Server::<Config>::new("1.0.0", 10)
///         .handler_timeout(Duration::from_secs(5))
///         .run()
/// }
/// ```
#[derive(Debug)]
pub struct Server<P> {
    name: String,
    version: String,
    priority: i32,
    settings: Settings,
    stats: ServerStats,
    _plugin: PhantomData<fn() -> P>,
}

impl<P: Plugin> Server<P> {
    /// A server for plugin version `version` (`x.y.z`) and `priority`
    /// (Kong runs plugins from the highest priority to the lowest). The
    /// plugin name is the executable's file name, as Kong expects.
    pub fn new(version: impl Into<String>, priority: i32) -> Self {
        Server {
            name: executable_name(),
            version: version.into(),
            priority,
            settings: Settings::default(),
            stats: ServerStats::default(),
            _plugin: PhantomData,
        }
    }

    /// Overrides the plugin name (default: the executable's file name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The largest frame accepted from Kong (default 64 MiB). A larger length
    /// header closes that connection with an error log line.
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.settings.max_frame_size = bytes;
        self
    }

    /// How long one phase handler may run (default 50 s, below Kong's 60 s
    /// socket timeout). A slower handler is cancelled, logged and, in
    /// `rewrite`/`access`/`response`/`preread`, answered with a 500.
    pub fn handler_timeout(mut self, limit: Duration) -> Self {
        self.settings.handler_timeout = limit;
        self
    }

    /// How long an instance may go without events before it is dropped
    /// (default 1 h). Kong restarts a dropped instance on its next use.
    pub fn instance_idle_timeout(mut self, idle: Duration) -> Self {
        self.settings.instance_idle_timeout = idle;
        self
    }

    /// How long in-flight events may run after SIGTERM (default 5 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.settings.shutdown_grace = grace;
        self
    }

    /// The socket file's permissions (default `0o600`: only the user the
    /// server runs as, which is Kong's worker user when Kong starts it, and
    /// root). Use `0o660` and a shared group when the server runs as another
    /// user than Kong's workers. The `KONG_PDK_SOCKET_MODE` environment
    /// variable (octal, e.g. `660`) sets the default.
    pub fn socket_mode(mut self, mode: u32) -> Self {
        self.settings.socket_mode = mode;
        self
    }

    /// A handle on the server's live counts; take it before `serve`.
    pub fn stats(&self) -> ServerStats {
        self.stats.clone()
    }

    /// The plugin name.
    pub fn plugin_name(&self) -> &str {
        &self.name
    }

    /// The socket path Kong uses by default for this plugin under `prefix`.
    pub fn socket_path(&self, prefix: &Path) -> PathBuf {
        prefix.join(format!("{}.socket", self.name))
    }

    /// The plugin's Kong schema (`{"name": …, "fields": [{"config": …}]}`).
    pub fn schema(&self) -> serde_json::Value {
        crate::schema::plugin_schema::<P>(&self.name)
    }

    /// The `-dump` document for `prefix`, as one line of JSON.
    pub fn dump(&self, prefix: &Path) -> String {
        let schema = self.schema();
        let dump = dump::Dump::new(
            &self.name,
            &self.version,
            self.priority,
            P::PHASES,
            &schema,
            &self.socket_path(prefix),
        );
        serde_json::to_string(&dump).expect("the dump is plain JSON")
    }

    /// Runs the command line: `-dump`, `-help`, or serve until SIGTERM/SIGINT.
    /// Returns the process exit code.
    pub fn run(self) -> ExitCode {
        let command = match cli::parse(std::env::args_os().skip(1)) {
            Ok(command) => command,
            Err(e) => {
                eprintln!("{e}\n{}", cli::usage(&self.name));
                return ExitCode::from(2);
            }
        };
        match command {
            Command::Help => {
                eprint!("{}", cli::usage(&self.name));
                ExitCode::SUCCESS
            }
            Command::Dump { prefix } => {
                if let Err(e) = self.check_identity() {
                    eprintln!("{}: {e}", self.name);
                    return ExitCode::FAILURE;
                }
                println!("{}", self.dump(&prefix));
                ExitCode::SUCCESS
            }
            Command::Serve { prefix } => {
                init_logging();
                if let Err(e) = self.check_identity() {
                    tracing::error!("{e}");
                    return ExitCode::FAILURE;
                }
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("cannot start the async runtime: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                let path = self.socket_path(&prefix);
                match runtime.block_on(self.serve_at(&path, shutdown_signal())) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("{e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }

    /// Checks what Kong will check in the dump: a `x.y.z` version and phases.
    fn check_identity(&self) -> Result<(), String> {
        let parts: Vec<&str> = self.version.split('.').collect();
        let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if parts.len() > 3 || !parts.iter().all(numeric) {
            return Err(format!(
                "version {:?} is not of the form x.y.z that Kong requires",
                self.version
            ));
        }
        if P::PHASES.is_empty() {
            return Err("the plugin handles no phase; add #[kong_pdk::plugin] to its impl".into());
        }
        Ok(())
    }

    /// Binds `path` (replacing a stale socket file), serves until `shutdown`
    /// resolves, then removes the socket file.
    pub async fn serve_at(self, path: &Path, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let listener = bind(path, self.settings.socket_mode)?;
        tracing::info!("Listening on socket: {}", path.display());
        let result = self.serve(listener, shutdown).await;
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("cannot remove socket {}: {e}", path.display());
        }
        tracing::info!("stopped");
        result
    }

    pub(crate) fn shared(self) -> Shared<P> {
        Shared::new(self)
    }

    pub(crate) async fn serve_connection(self, stream: tokio::net::UnixStream) {
        let (_stop_tx, stop_rx) = watch::channel(false);
        connection::serve(Arc::new(Shared::new(self)), stream, stop_rx).await;
    }

    /// Serves Kong on `listener` until `shutdown` resolves; then stops
    /// accepting, lets in-flight events finish within the grace period and
    /// returns.
    pub async fn serve(
        self,
        listener: UnixListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let shared = Arc::new(Shared::<P>::new(self));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut shutdown = pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(connection::serve(
                            Arc::clone(&shared),
                            stream,
                            stop_rx.clone(),
                        ));
                    }
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!("connection task failed: {e}");
                    }
                }
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let busy = shared.events_in_flight();
        if busy > 0 {
            tracing::info!("shutting down: waiting for {busy} event(s) in flight");
        }
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(shared.settings.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutting down: {} event(s) still running after {:?}; cancelling them",
                shared.events_in_flight(),
                shared.settings.shutdown_grace
            );
            connections.abort_all();
        }
        Ok(())
    }
}

/// The executable's file name: the plugin name Kong knows it by.
fn executable_name() -> String {
    std::env::current_exe()
        .ok()
        .or_else(|| std::env::args_os().next().map(PathBuf::from))
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "kong-plugin".to_owned())
}

/// Binds the socket, replacing a stale file but never a live server's socket.
fn bind(path: &Path, mode: u32) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the Kong prefix {} does not exist or is not a directory (set it with -kong-prefix)",
                dir.display()
            ),
        ));
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another server is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot remove stale socket {}: {e}", path.display()),
            )
        })?;
    }
    // Bind under a temporary name, set the mode, then link it into place:
    // nobody can connect before the permissions are right, and the link
    // fails if another server took the path meanwhile.
    let tmp = path.with_extension(format!("socket.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create socket {}: {e}", path.display()),
        )
    })?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    placed.map_err(|e| {
        let why = if e.kind() == io::ErrorKind::AlreadyExists {
            "another server created it at the same time".to_owned()
        } else {
            e.to_string()
        };
        io::Error::new(
            e.kind(),
            format!("cannot create socket {}: {why}", path.display()),
        )
    })?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// Resolves on SIGTERM (what Kong sends) or SIGINT, with the signal's name.
/// Useful for code that runs beside [`Server::serve`] and stops with it.
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

/// Resolves on SIGTERM, SIGINT, or when the parent process (Kong) is gone.
async fn shutdown_signal() {
    tokio::select! {
        name = termination_signal() => tracing::info!("{name} received, shutting down"),
        () = parent_gone() => tracing::info!("parent process exited, shutting down"),
    }
}

/// Resolves when this process is re-parented (its parent died).
async fn parent_gone() {
    let parent = std::os::unix::process::parent_id();
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

/// Logs go to stderr, one line each, without colours or timestamps: Kong
/// re-logs every line of its plugin servers with its own timestamp.
fn init_logging() {
    let level = match std::env::var("KONG_PDK_LOG").as_deref() {
        Ok("trace") => tracing::Level::TRACE,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_max_level(level)
        .try_init();
}

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct Shared<P> {
    name: String,
    version: String,
    priority: i32,
    schema: String,
    declared_fields: HashSet<String>,
    loaded_at: i64,
    settings: Settings,
    instances: Instances<P>,
    stats: ServerStats,
}

/// Keys Kong adds to every instance config (kong-side-contract §8).
const KONG_EXTRA_KEYS: [&str; 8] = [
    "__seq__",
    "__plugin_id",
    "__key__",
    "__ws_id",
    "route_id",
    "service_id",
    "consumer_id",
    "plugin_instance_name",
];

impl<P: Plugin> Shared<P> {
    fn new(server: Server<P>) -> Self {
        let schema = server.schema();
        let declared_fields = schema["fields"][0]["config"]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_object())
            .flat_map(|f| f.keys().cloned())
            .collect();
        Shared {
            schema: schema.to_string(),
            declared_fields,
            loaded_at: unix_now(),
            instances: Instances::new(
                server.settings.instance_idle_timeout,
                Arc::clone(&server.stats.0),
            ),
            stats: server.stats,
            name: server.name,
            version: server.version,
            priority: server.priority,
            settings: server.settings,
        }
    }

    fn count_event(&self) -> Counted<'_> {
        Counted::new(&self.stats.0.events)
    }

    fn count_connection(&self) -> Counted<'_> {
        Counted::new(&self.stats.0.connections)
    }

    fn events_in_flight(&self) -> usize {
        self.stats.events_in_flight()
    }

    fn plugin_info(&self) -> pb::PluginInfo {
        pb::PluginInfo {
            name: self.name.clone(),
            updated_at: self.loaded_at,
            loaded_at: self.loaded_at,
            phases: P::PHASES.iter().map(|p| p.as_str().to_owned()).collect(),
            version: self.version.clone(),
            priority: self.priority,
            schema: self.schema.clone(),
        }
    }

    fn status(&self, instance: &Instance<P>) -> pb::InstanceStatus {
        pb::InstanceStatus {
            name: self.name.clone(),
            instance_id: instance.id,
            config: None,
            started_at: instance.started_at,
        }
    }

    /// Builds an instance from Kong's config JSON; `None` (after logging why)
    /// closes the connection, which fails the start on Kong's side.
    async fn start_instance(&self, name: &str, config: &[u8]) -> Option<pb::InstanceStatus> {
        if name != self.name {
            tracing::error!(
                "cannot start an instance of plugin {name:?}: this server runs {:?}",
                self.name
            );
            return None;
        }
        let (seq, mut plugin) = match self.decode_config(config) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::error!("cannot start an instance of {name}: {e}");
                return None;
            }
        };
        if let Err(e) = plugin.init().await {
            tracing::error!("cannot start an instance of {name}: init failed: {e}");
            return None;
        }
        let instance = self.instances.insert(seq, plugin);
        tracing::info!("started instance {} of {name}", instance.id);
        Some(self.status(&instance))
    }

    /// Kong's config JSON → (`__seq__`, plugin). `null`s count as absent.
    /// Kong's extra keys (`__seq__`, `route_id`, …) are kept, so a config
    /// type may read them (`#[kong(skip)] route_id: Option<String>`); if the
    /// type refuses them (`deny_unknown_fields`), they are removed and the
    /// config is tried again.
    pub(crate) fn decode_config(&self, config: &[u8]) -> Result<(i32, P), String> {
        let json: serde_json::Value = serde_json::from_slice(config)
            .map_err(|e| format!("the config is not valid JSON: {e}"))?;
        let serde_json::Value::Object(object) = crate::value::strip_nulls(json) else {
            return Err("the config is not a JSON object".into());
        };
        let seq = object
            .get("__seq__")
            .and_then(serde_json::Value::as_i64)
            .and_then(|s| i32::try_from(s).ok())
            .unwrap_or(0);
        let with_kong_keys = serde_json::Value::Object(object.clone());
        if let Ok(plugin) = serde_json::from_value(with_kong_keys) {
            return Ok((seq, plugin));
        }
        let mut object = object;
        for key in KONG_EXTRA_KEYS {
            if !self.declared_fields.contains(key) {
                object.remove(key);
            }
        }
        let plugin = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| format!("the config does not match the plugin's config type: {e}"))?;
        Ok((seq, plugin))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
