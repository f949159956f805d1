//! Kong's side of the protocol for one plugin server (ProtoBuf:1 or
//! MsgPack:1, as its `-dump` says): a keepalive pool of connections, the running-instances cache keyed by plugin entity
//! (`__seq__` and `__plugin_id` must match to reuse an instance), and
//! Kong's reset-and-retry when the server closes a connection.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use kong_pdk_test::{AnyConnection as KongConn, Call, EventEnd, EventResult, Reply};
use serde_json::Value;

use crate::dump::PluginInfo;
use crate::log;

/// Idle pooled connections per server (`lua_socket_pool_size`).
const POOL_SIZE: usize = 256;
/// Idle time after which a pooled connection is dropped
/// (`lua_socket_keepalive_timeout`).
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Kong's cosocket timeouts (connect, send, read).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(60);
/// Kong retries a phase without limit when the server keeps closing the
/// connection; the gateway gives up after this many attempts.
const MAX_ATTEMPTS: usize = 5;

/// A plugin configuration as Kong sends it to the plugin server.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    /// The plugin entity's id (`__plugin_id`; the instance cache key).
    pub plugin_id: String,
    /// `__seq__`.
    pub seq: i64,
    /// The config JSON with Kong's extra keys.
    pub config: Value,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    id: i32,
    seq: i64,
}

/// Why an event failed (Kong answers 500 in `rewrite`/`access`/`response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError(pub String);

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One plugin server as Kong sees it.
#[derive(Debug)]
pub struct PluginServer {
    /// The server's name (`pluginserver_names`).
    pub server: String,
    /// The plugin it serves.
    pub info: PluginInfo,
    /// Its socket.
    pub socket: PathBuf,
    pool: Mutex<Vec<(KongConn, Instant)>>,
    sequence: AtomicI64,
    running: Mutex<HashMap<String, Running>>,
    starting: tokio::sync::Mutex<()>,
}

impl PluginServer {
    /// A server at `socket` serving `info`.
    pub fn new(server: &str, info: PluginInfo, socket: PathBuf) -> PluginServer {
        PluginServer {
            server: server.to_owned(),
            info,
            socket,
            pool: Mutex::new(Vec::new()),
            sequence: AtomicI64::new(0),
            running: Mutex::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
        }
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.info.name
    }

    /// Forgets every instance and pooled connection (Kong's
    /// `reset_instances_for_plugin`, also done when the server restarts).
    pub fn reset(&self) {
        lock(&self.running).clear();
        lock(&self.pool).clear();
    }

    async fn connection(&self) -> Result<KongConn, RpcError> {
        loop {
            let pooled = lock(&self.pool).pop();
            match pooled {
                Some((conn, since)) if since.elapsed() < POOL_IDLE => return Ok(conn),
                Some(_) => continue,
                None => break,
            }
        }
        let connect = KongConn::connect(&self.socket, self.info.protocol);
        match tokio::time::timeout(SOCKET_TIMEOUT, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(RpcError(format!(
                "trying to connect: unix:{}: {e}",
                self.socket.display()
            ))),
            Err(_) => Err(RpcError("trying to connect: timeout".into())),
        }
    }

    fn release(&self, conn: KongConn) {
        if !conn.is_open() {
            return;
        }
        let mut pool = lock(&self.pool);
        if pool.len() < POOL_SIZE {
            pool.push((conn, Instant::now()));
        }
    }

    fn next_sequence(&self) -> i64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The instance for `cfg`, started (and the replaced one closed) when
    /// needed.
    async fn instance_id(&self, cfg: &InstanceConfig) -> Result<i32, RpcError> {
        if let Some(r) = self.cached(cfg) {
            return Ok(r);
        }
        let _guard = self.starting.lock().await;
        if let Some(r) = self.cached(cfg) {
            return Ok(r);
        }
        let mut conn = self.connection().await?;
        conn.set_sequence(self.next_sequence());
        let config = cfg.config.to_string();
        let started = tokio::time::timeout(
            SOCKET_TIMEOUT,
            conn.start_instance(&self.info.name, &config),
        )
        .await;
        let status = match started {
            Ok(Ok(Some(status))) => status,
            Ok(Ok(None)) => {
                return Err(RpcError(format!(
                    "starting instance: closed (the plugin server refused the config; see its log lines above). config: {config}"
                )));
            }
            Ok(Err(e)) => return Err(RpcError(format!("starting instance: {e}"))),
            Err(_) => return Err(RpcError("starting instance: timeout".into())),
        };
        self.release(conn);
        log::info(format!(
            "started instance {} of plugin '{}' for plugin entity {} (__seq__ {})",
            status.instance_id, self.info.name, cfg.plugin_id, cfg.seq
        ));
        let old = lock(&self.running).insert(
            cfg.plugin_id.clone(),
            Running {
                id: status.instance_id,
                seq: cfg.seq,
            },
        );
        if let Some(old) = old.filter(|o| o.id != status.instance_id) {
            // Kong closes the replaced instance and ignores errors.
            if let Ok(mut conn) = self.connection().await {
                conn.set_sequence(self.next_sequence());
                if let Ok(Ok(true)) =
                    tokio::time::timeout(SOCKET_TIMEOUT, conn.close_instance(old.id)).await
                {
                    self.release(conn);
                }
            }
        }
        Ok(status.instance_id)
    }

    fn cached(&self, cfg: &InstanceConfig) -> Option<i32> {
        lock(&self.running)
            .get(&cfg.plugin_id)
            .filter(|r| r.seq == cfg.seq)
            .map(|r| r.id)
    }

    /// Runs `phase` for `cfg`, answering PDK calls with `answer`; on a
    /// closed connection the instances are reset and the phase runs again,
    /// as Kong does.
    pub async fn handle_event(
        &self,
        cfg: &InstanceConfig,
        phase: &str,
        mut answer: impl FnMut(&Call) -> Reply,
    ) -> Result<EventResult, RpcError> {
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                log::warn(format!(
                    "plugin '{}' {phase}: {last}; resetting instances and running the phase again",
                    self.info.name
                ));
                self.reset();
            }
            let id = self.instance_id(cfg).await?;
            let mut conn = self.connection().await?;
            conn.set_sequence(self.next_sequence());
            let ran =
                tokio::time::timeout(SOCKET_TIMEOUT, conn.handle_event(id, phase, &mut answer))
                    .await;
            match ran {
                Err(_) => return Err(RpcError("pluginserver error: timeout".into())),
                Ok(Ok(result)) => match result.end {
                    EventEnd::ServerClosed => last = "closed".into(),
                    EventEnd::Returned => {
                        self.release(conn);
                        return Ok(result);
                    }
                    EventEnd::Exit(_) | EventEnd::Rejected(_) => {
                        // Under MsgPack:1 Kong pooled the connection before
                        // running the call; ProtoBuf:1 closed it.
                        self.release(conn);
                        return Ok(result);
                    }
                },
                Ok(Err(e)) if is_closed(&e) => last = format!("closed ({e})"),
                Ok(Err(e)) => return Err(RpcError(format!("pluginserver error: {e}"))),
            }
        }
        Err(RpcError(format!(
            "pluginserver error: the connection closed {MAX_ATTEMPTS} times in a row ({last}); giving up"
        )))
    }
}

/// Kong matches "closed" in the error string; the io kinds below are how a
/// closed socket shows here.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    ) || e.to_string().to_lowercase().contains("closed")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
