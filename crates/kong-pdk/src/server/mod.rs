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
mod shared;
mod signals;
mod socket;
mod stats;
mod steps;
mod watchdog;

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use self::cli::{Command, DEFAULT_PREFIX, UsageError, parse as parse_args, usage};
pub use self::dump::PROTOCOL;
use self::shared::Shared;
use self::signals::shutdown_signal;
pub use self::signals::{
    SignalHold, Termination, hold_termination_signals, release_termination_signals,
    termination_signal,
};
use self::socket::{DEFAULT_SOCKET_MODE, bind, socket_mode_from_env};
pub use self::stats::ServerStats;
pub use crate::calls::CALL_LAYER_ENV;

/// The environment variable that overrides the plugin's protocol
/// (`ProtoBuf:1` or `MsgPack:1`; `protobuf`/`msgpack` too). It must reach
/// both Kong's `query_cmd` (`-dump`) and `start_cmd`, or Kong and the
/// server disagree: meant for benchmarks and experiments, not deployment.
pub const PROTOCOL_ENV: &str = "KONG_PDK_PROTOCOL";

/// The protocol `KONG_PDK_PROTOCOL` names; `None` when unset or unknown
/// (reported on stderr).
fn protocol_from_env() -> Option<crate::Protocol> {
    let value = std::env::var(PROTOCOL_ENV).ok()?;
    match value.trim().to_ascii_lowercase().as_str() {
        "" => None,
        "protobuf" | "protobuf:1" => Some(crate::Protocol::ProtoBuf),
        "msgpack" | "msgpack:1" => Some(crate::Protocol::MsgPack),
        _ => {
            eprintln!(
                "{PROTOCOL_ENV}={value:?} is not a protocol (ProtoBuf:1, MsgPack:1): ignored"
            );
            None
        }
    }
}
use crate::plugin::Plugin;

/// Tunables of a [`Server`].
#[derive(Debug, Clone)]
struct Settings {
    max_frame_size: u32,
    frame_timeout: Duration,
    handler_timeout: Duration,
    instance_idle_timeout: Duration,
    shutdown_grace: Duration,
    exit_close_timeout: Duration,
    socket_mode: u32,
    call_layer: bool,
    /// Overrides the plugin's `PROTOCOL`.
    protocol: Option<crate::Protocol>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_frame_size: crate::wire::DEFAULT_MAX_FRAME,
            frame_timeout: crate::wire::DEFAULT_FRAME_TIMEOUT,
            // Kong gives up on a socket after 60 s without a frame.
            handler_timeout: Duration::from_secs(50),
            instance_idle_timeout: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(5),
            exit_close_timeout: Duration::from_secs(60),
            socket_mode: socket_mode_from_env().unwrap_or(DEFAULT_SOCKET_MODE),
            call_layer: !crate::calls::disabled_by_env(),
            protocol: protocol_from_env(),
        }
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
        let mut settings = Settings::default();
        settings.call_layer &= P::CALL_LAYER;
        Server {
            name: executable_name(),
            version: version.into(),
            priority,
            settings,
            stats: ServerStats::default(),
            _plugin: PhantomData,
        }
    }

    /// Overrides the plugin's [`Plugin::PROTOCOL`] (as does the
    /// `KONG_PDK_PROTOCOL` environment variable, which this call replaces).
    pub fn protocol(mut self, protocol: crate::Protocol) -> Self {
        self.settings.protocol = Some(protocol);
        self
    }

    /// The protocol the server speaks and `-dump` announces.
    pub fn protocol_in_use(&self) -> crate::Protocol {
        self.settings.protocol.unwrap_or(P::PROTOCOL)
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

    /// How long a frame may take to arrive once its first byte did (default
    /// 60 s, Kong's own socket timeout). A peer that sends part of a frame
    /// and stops has its connection closed, with a log line; an idle pooled
    /// connection, between frames, is never timed out.
    pub fn frame_timeout(mut self, limit: Duration) -> Self {
        self.settings.frame_timeout = limit;
        self
    }

    /// How long one phase handler may run (default 50 s, below Kong's 60 s
    /// socket timeout). A slower handler is cancelled, logged and, in
    /// `rewrite`/`access`/`response`/`preread`, answered with a 500. One
    /// watchdog thread per server keeps it, checking every `limit / 8`
    /// (5 ms to 250 ms): a handler is cancelled between `limit` and
    /// `limit` plus two of those ticks, never before.
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

    /// Whether the call layer answers and coalesces PDK calls to save round
    /// trips (default: on, unless the plugin sets `CALL_LAYER = false` or
    /// the environment has `KONG_PDK_CALL_LAYER=off`). `false` sends every
    /// call to Kong exactly as written; `true` cannot override those two.
    pub fn call_layer(mut self, on: bool) -> Self {
        self.settings.call_layer = on && P::CALL_LAYER && !crate::calls::disabled_by_env();
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
            self.protocol_in_use(),
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
        // Read first: the later, the likelier a parent that dies right away
        // is missed (we would see init as the parent).
        let parent = std::os::unix::process::parent_id();
        // Kong may send SIGTERM the moment it started us: hold it until the
        // handlers exist (see signals.rs).
        let hold = hold_termination_signals();
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
                init_logging(&self.name, &self.version);
                if let Err(e) = self.check_identity() {
                    tracing::error!("{e}");
                    return ExitCode::FAILURE;
                }
                // Measured against one current-thread runtime per core at
                // Kong-like concurrency: as fast or faster, at the same or
                // lower CPU per event (docs/BENCHMARKS.md, "Runtime").
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .on_thread_start(release_termination_signals)
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("cannot start the async runtime: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                let shutdown = {
                    let _in_runtime = runtime.enter();
                    shutdown_signal(parent)
                };
                let shutdown = match shutdown {
                    Ok(shutdown) => shutdown,
                    Err(e) => {
                        tracing::error!("cannot handle SIGTERM: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                // A signal held until now is delivered here, to the handler.
                drop(hold);
                let path = self.socket_path(&prefix);
                let served = runtime.block_on(self.serve_at(&path, shutdown));
                #[cfg(feature = "otel")]
                crate::otel::shutdown();
                match served {
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
        serve_one(Arc::new(Shared::new(self)), stream, stop_rx).await;
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
                        connections.spawn(serve_one(
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
        shared.watchdog.close_idle();
        let busy = shared.events_in_flight();
        if busy > 0 {
            tracing::info!("shutting down: waiting for {busy} event(s) in flight");
        }
        // MsgPack:1 events run apart from connections (which stay open while
        // events wait for Kong's steps): wait for both.
        let drain = async {
            while connections.join_next().await.is_some() {}
            while shared.events_in_flight() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
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

/// Serves one connection in the plugin's protocol.
async fn serve_one<P: Plugin>(
    shared: Arc<Shared<P>>,
    stream: tokio::net::UnixStream,
    stop: watch::Receiver<bool>,
) {
    match shared.settings.protocol.unwrap_or(P::PROTOCOL) {
        crate::Protocol::ProtoBuf => connection::serve(shared, stream, stop).await,
        crate::Protocol::MsgPack => steps::serve(shared, stream, stop).await,
    }
}

/// The executable's file name: the plugin name Kong knows it by.
/// The name it was started as comes first, so one binary installed under
/// several names (symlinks) answers to each; go-pdk resolves symlinks and
/// would report the target's name instead.
fn executable_name() -> String {
    let file_name = |p: PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(file_name)
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::current_exe().ok().and_then(file_name))
        .unwrap_or_else(|| "kong-plugin".to_owned())
}

/// Stderr that never fails: Kong reads it through a pipe owned by nginx
/// worker 0, which goes away on `kong reload` or a crash. A write error
/// would make tracing-subscriber report it with `eprintln!`, which panics on
/// a broken pipe, in the middle of the drain; the line is dropped instead.
struct LossyStderr;

impl io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Logs go to stderr, one line each, without colours or timestamps: Kong
/// re-logs every line of its plugin servers with its own timestamp.
/// With the `otel` feature and an OTLP endpoint in the environment, spans
/// (debug and above, whatever the log level) also go to the exporter.
fn init_logging(name: &str, version: &str) {
    let setting = std::env::var("KONG_PDK_LOG").ok();
    let (level, unknown) = match log_level(setting.as_deref()) {
        Ok(level) => (level, None),
        Err(value) => (tracing::Level::INFO, Some(value)),
    };
    #[cfg(feature = "otel")]
    let otel_problem = match crate::otel::layer_from_env(name, version) {
        Ok(Some(otel)) => {
            use tracing_subscriber::Layer;
            use tracing_subscriber::filter::{LevelFilter, filter_fn};
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::util::SubscriberInitExt;
            // A per-layer level: spans below it still reach the exporter.
            let log = log_layer().with_filter(LevelFilter::from_level(level));
            let spans = otel.with_filter(filter_fn(|meta| {
                meta.is_span() && *meta.level() <= tracing::Level::DEBUG
            }));
            let _ = tracing_subscriber::registry()
                .with(log)
                .with(spans)
                .try_init();
            None
        }
        Ok(None) => {
            init_log_only(level);
            None
        }
        Err(problem) => {
            init_log_only(level);
            Some(problem)
        }
    };
    #[cfg(not(feature = "otel"))]
    {
        let _ = (name, version);
        init_log_only(level);
    }
    #[cfg(feature = "otel")]
    if let Some(problem) = otel_problem {
        tracing::warn!("OpenTelemetry export off: {problem}");
    }
    if let Some(value) = unknown {
        tracing::warn!(
            "KONG_PDK_LOG={value:?} is not a level (trace, debug, info, warn, error): logging at info"
        );
    }
}

fn init_log_only(level: tracing::Level) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // A global level: disabled callsites cost one check.
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::from_level(level))
        .with(log_layer())
        .try_init();
}

/// The log lines' format: one line each on stderr, no colours, no time.
fn log_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(|| LossyStderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
}

/// The level `KONG_PDK_LOG` names (any case; unset or empty is `info`), or
/// the value when it names none.
fn log_level(setting: Option<&str>) -> std::result::Result<tracing::Level, &str> {
    let Some(value) = setting.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(tracing::Level::INFO);
    };
    Ok(match value.to_ascii_lowercase().as_str() {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" | "warning" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => return Err(value),
    })
}

#[cfg(test)]
mod tests {
    use super::log_level;
    use tracing::Level;

    #[test]
    fn kong_pdk_log_names_a_level_in_any_case_or_is_reported() {
        assert_eq!(log_level(None), Ok(Level::INFO));
        assert_eq!(log_level(Some("")), Ok(Level::INFO));
        assert_eq!(log_level(Some("trace")), Ok(Level::TRACE));
        assert_eq!(log_level(Some("DEBUG")), Ok(Level::DEBUG));
        assert_eq!(log_level(Some("Warning")), Ok(Level::WARN));
        assert_eq!(log_level(Some(" error ")), Ok(Level::ERROR));
        assert_eq!(log_level(Some("verbose")), Err("verbose"));
    }
}
