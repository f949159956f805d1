//! `kong-pdk-dev check <plugin-executable>`: runs a plugin executable the
//! way Kong does and checks it keeps Kong's side of the contract.
//!
//! | Check | Kong's expectation |
//! |---|---|
//! | `-h` | usage, exit 0 (Go `flag` style) |
//! | `-dump` | exactly one JSON document on stdout, fast, exit 0 |
//! | dump contents | `Protocol` `ProtoBuf:1`, `Name`, integer `Priority`, `x.y.z` `Version`, known phases |
//! | schema | passes Kong's metaschema; a config can be built from it |
//! | `-dump` side effects | no socket or file created |
//! | start | binds `<prefix>/<name>.socket`, replacing a stale socket |
//! | start instance | accepts a Kong-shaped config (defaults, `null`s, `__seq__`, …); instance id = `__seq__` |
//! | phases | every declared phase runs on a simulated request without breaking Kong's rules |
//! | unknown instance | the server closes the connection |
//! | close instance | answers, then treats the id as unknown |
//! | SIGTERM | exits 0 and removes its socket |

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kong_pdk::Phase;
use kong_pdk_test::live::Exchange;
use kong_pdk_test::{AnyConnection, EventEnd, PhaseEnd, Request};
use serde_json::{Map, Value, json};

use crate::dump::{self, PluginInfo};
use crate::setup::{NODE_ID, WORKSPACE_ID};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Kong's expectation holds.
    Pass,
    /// Kong's expectation does not hold.
    Fail,
    /// Worth a look, but Kong works with it.
    Warn,
    /// Could not be checked.
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
        })
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What was checked.
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// Details.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The rows, in the order they ran.
    pub rows: Vec<Row>,
    /// The server's stderr while it ran (for failures).
    pub server_output: String,
}

impl Report {
    fn add(&mut self, name: &str, status: Status, detail: impl Into<String>) -> Status {
        self.rows.push(Row {
            name: name.to_owned(),
            status,
            detail: detail.into(),
        });
        status
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.status != Status::Fail)
    }

    /// The row named `name`.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in &self.rows {
            let mut lines = r.detail.lines();
            writeln!(
                f,
                "  {}  {:width$}  {}",
                r.status,
                r.name,
                lines.next().unwrap_or_default()
            )?;
            for more in lines {
                writeln!(f, "        {:width$}  {more}", "")?;
            }
        }
        let count = |s| self.rows.iter().filter(|r| r.status == s).count();
        if !self.passed() && !self.server_output.trim().is_empty() {
            writeln!(f, "\nplugin server output:")?;
            for line in self
                .server_output
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                writeln!(f, "  | {line}")?;
            }
        }
        writeln!(
            f,
            "\nresult: {}: {} of {} checks ok ({} failed, {} warnings, {} skipped)",
            if self.passed() { "PASS" } else { "FAIL" },
            count(Status::Pass),
            self.rows.len(),
            count(Status::Fail),
            count(Status::Warn),
            count(Status::Skip),
        )
    }
}

/// Options of `kong-pdk-dev check`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// The plugin executable.
    pub executable: PathBuf,
    /// The plugin config to use (default: built from the schema).
    pub config: Option<Value>,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// The `__seq__` of the checked instance (non-zero, so the server should
/// use it as the instance id).
const SEQ: i32 = 7;

/// Runs every check.
pub async fn run(options: &Options) -> Report {
    let mut report = Report::default();
    let exe = options.executable.clone();
    let exe = if exe.is_relative() && exe.components().count() > 1 {
        std::env::current_dir().map_or(exe.clone(), |d| d.join(&exe))
    } else {
        exe
    };
    let file_name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_executable(&exe) {
        report.add(
            "executable",
            Status::Fail,
            format!("{} is not an executable file", exe.display()),
        );
        return report;
    }
    report.add("executable", Status::Pass, exe.display().to_string());
    let Ok(work) = tempfile::tempdir() else {
        report.add("setup", Status::Fail, "cannot create a temporary directory");
        return report;
    };
    let cmd = shell_quote(&exe.display().to_string());

    // -h
    match dump::run_shell(&format!("{cmd} -h"), work.path(), TIMEOUT).await {
        Ok(out) => {
            let usage = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            let mentions = usage.contains("-dump") && usage.contains("-kong-prefix");
            let status = if out.code == Some(0) && mentions {
                Status::Pass
            } else if out.code == Some(0) || out.code == Some(2) {
                Status::Warn
            } else {
                Status::Fail
            };
            report.add(
                "-h",
                status,
                format!(
                    "exit {}; usage {} -dump and -kong-prefix",
                    out.code.map_or("by signal".into(), |c| c.to_string()),
                    if mentions { "lists" } else { "does not list" }
                ),
            );
        }
        Err(e) => {
            report.add("-h", Status::Fail, e);
        }
    }

    // -dump, with no other flag (Kong's default query_cmd), in an empty dir.
    let info = match dump::run_shell(&format!("{cmd} -dump"), work.path(), TIMEOUT).await {
        Err(e) => {
            report.add("-dump", Status::Fail, e);
            None
        }
        Ok(out) => {
            let elapsed = out.elapsed.as_millis();
            match dump::validate(&out.stdout) {
                Ok(info) => {
                    let slow = out.elapsed > Duration::from_secs(2);
                    let status = if out.code != Some(0) {
                        Status::Fail
                    } else if slow {
                        Status::Warn
                    } else {
                        Status::Pass
                    };
                    report.add(
                        "-dump",
                        status,
                        format!(
                            "one JSON document in {elapsed} ms, exit {}{}",
                            out.code.map_or("by signal".into(), |c| c.to_string()),
                            if slow {
                                " (slow: Kong runs it at every start)"
                            } else {
                                ""
                            }
                        ),
                    );
                    let warnings = if info.warnings.is_empty() {
                        String::new()
                    } else {
                        format!("\n{}", info.warnings.join("\n"))
                    };
                    report.add(
                        "plugin info",
                        if info.warnings.is_empty() {
                            Status::Pass
                        } else {
                            Status::Warn
                        },
                        format!(
                            "{} {} priority {} phases [{}]{warnings}",
                            info.name,
                            info.version,
                            info.priority,
                            info.phases
                                .iter()
                                .map(|p| p.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    report.add("schema", Status::Pass, "passes Kong's metaschema");
                    Some(info)
                }
                Err(errors) => {
                    let schema_only = errors.iter().all(|e| e.starts_with("Schema: "));
                    if schema_only {
                        report.add(
                            "-dump",
                            Status::Pass,
                            format!("one JSON document in {elapsed} ms"),
                        );
                        report.add("schema", Status::Fail, errors.join("\n"));
                    } else {
                        report.add("-dump", Status::Fail, errors.join("\n"));
                    }
                    None
                }
            }
        }
    };
    let Some(info) = info else {
        return report;
    };
    if info.name != file_name {
        report.add(
            "name",
            Status::Warn,
            format!(
                "the plugin is named {:?} but the executable {:?}: name the pluginserver after the executable or set pluginserver_<name>_socket",
                info.name, file_name
            ),
        );
    }

    // -dump has no side effects.
    let Ok(side) = tempfile::tempdir() else {
        return report;
    };
    let dumped = dump::run_shell(
        &format!(
            "{cmd} -dump -kong-prefix {}",
            shell_quote(&side.path().display().to_string())
        ),
        work.path(),
        TIMEOUT,
    )
    .await;
    let created: Vec<String> = std::fs::read_dir(side.path())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let socket_path = side.path().join(format!("{file_name}.socket"));
    match dumped {
        Ok(out) if created.is_empty() => {
            let dump: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            match dump.get("SocketPath").and_then(Value::as_str) {
                Some(p) if Path::new(p) != socket_path => report.add(
                    "-dump side effects",
                    Status::Warn,
                    format!("none, but SocketPath is {p}, not {}", socket_path.display()),
                ),
                _ => report.add(
                    "-dump side effects",
                    Status::Pass,
                    "none (no socket, no files)",
                ),
            };
        }
        Ok(_) => {
            report.add(
                "-dump side effects",
                Status::Fail,
                format!("created {} under -kong-prefix", created.join(", ")),
            );
        }
        Err(e) => {
            report.add("-dump side effects", Status::Fail, e);
        }
    }

    // A Kong-shaped config.
    let global = info.has(Phase::Rewrite) || info.has(Phase::Certificate);
    let config = match kong_shaped_config(&info, options.config.as_ref(), global) {
        Ok((config, how)) => {
            report.add("config", Status::Pass, format!("{how}: {config}"));
            Some(config)
        }
        // A config the user gave and the schema refuses is a failure (Kong
        // would refuse it too); one the check could not build is a skip.
        Err(e) if options.config.is_some() => {
            report.add("config", Status::Fail, e);
            None
        }
        Err(e) => {
            report.add("config", Status::Skip, e);
            None
        }
    };

    serve_checks(&mut report, &exe, &file_name, &info, config, global).await;
    report
}

/// The checks that need the server running.
async fn serve_checks(
    report: &mut Report,
    exe: &Path,
    file_name: &str,
    info: &PluginInfo,
    config: Option<Value>,
    global: bool,
) {
    let Ok(prefix) = tempfile::tempdir() else {
        report.add("start", Status::Fail, "cannot create a temporary prefix");
        return;
    };
    let socket = prefix.path().join(format!("{file_name}.socket"));
    // A stale socket, as a crashed server leaves it.
    let stale = std::os::unix::net::UnixListener::bind(&socket)
        .map(drop)
        .is_ok();
    let stderr_path = prefix.path().join("server.log");
    let Ok(stderr_file) = std::fs::File::create(&stderr_path) else {
        report.add("start", Status::Fail, "cannot create the log file");
        return;
    };
    let stdout_file = stderr_file.try_clone().ok();
    let started_at = Instant::now();
    let child = tokio::process::Command::new(exe)
        .arg("-kong-prefix")
        .arg(prefix.path())
        .current_dir(prefix.path())
        .stdin(Stdio::null())
        .stdout(stdout_file.map_or_else(Stdio::null, Stdio::from))
        .stderr(Stdio::from(stderr_file))
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            report.add("start", Status::Fail, format!("cannot start: {e}"));
            return;
        }
    };
    let pid = child.id().unwrap_or(0);
    let output = |report: &mut Report| {
        report.server_output = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    };

    // Wait until the socket accepts connections.
    let mut connected = None;
    while started_at.elapsed() < TIMEOUT {
        if let Ok(Some(status)) = child.try_wait() {
            report.add(
                "start",
                Status::Fail,
                format!("exited with {status} before serving"),
            );
            output(report);
            return;
        }
        if let Ok(c) = AnyConnection::connect(&socket, info.protocol).await {
            connected = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Some(mut conn) = connected else {
        report.add(
            "start",
            Status::Fail,
            format!(
                "no connectable socket at {} after {} s",
                socket.display(),
                TIMEOUT.as_secs()
            ),
        );
        output(report);
        return;
    };
    report.add(
        "start",
        Status::Pass,
        format!(
            "serving on <prefix>/{file_name}.socket in {} ms{}",
            started_at.elapsed().as_millis(),
            if stale {
                ", replacing a stale socket"
            } else {
                ""
            }
        ),
    );

    if let Some(config) = config {
        instance_checks(report, &mut conn, &socket, info, &config, SEQ, global).await;
    } else {
        report.add("start instance", Status::Skip, "no config (see above)");
    }

    // An unknown instance: the server must close the connection.
    match AnyConnection::connect(&socket, info.protocol).await {
        Ok(mut c) => match tokio::time::timeout(
            TIMEOUT,
            c.handle_event(987_654, "access", |_| kong_pdk_test::Reply::empty()),
        )
        .await
        {
            Ok(Ok(r)) if r.end == EventEnd::ServerClosed => {
                report.add(
                    "unknown instance",
                    Status::Pass,
                    match info.protocol {
                        kong_pdk::Protocol::ProtoBuf => "the server closed the connection",
                        kong_pdk::Protocol::MsgPack => "the server answered \"no plugin instance\"",
                    },
                );
            }
            Ok(Ok(r)) => {
                report.add(
                    "unknown instance",
                    Status::Fail,
                    format!("expected Kong's \"no plugin instance\" signal (ProtoBuf:1: closing the connection; MsgPack:1: that error reply), got {:?}", r.end),
                );
            }
            Ok(Err(e)) if e.to_string().contains("closed") => {
                report.add(
                    "unknown instance",
                    Status::Pass,
                    "the server closed the connection",
                );
            }
            Ok(Err(e)) => {
                report.add(
                    "unknown instance",
                    Status::Fail,
                    format!("protocol error: {e}"),
                );
            }
            Err(_) => {
                report.add(
                    "unknown instance",
                    Status::Fail,
                    "no answer and no close within 10 s",
                );
            }
        },
        Err(e) => {
            report.add(
                "unknown instance",
                Status::Fail,
                format!("cannot connect: {e}"),
            );
        }
    }
    drop(conn);

    // SIGTERM: exit 0, socket removed.
    let _ = crate::supervisor::send_signal(pid, libc::SIGTERM);
    match tokio::time::timeout(TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => {
            let removed = !socket.exists();
            let ok = status.success() && removed;
            report.add(
                "SIGTERM",
                if ok { Status::Pass } else { Status::Fail },
                format!(
                    "{}; socket {}",
                    status
                        .code()
                        .map_or_else(|| format!("killed ({status})"), |c| format!("exit {c}")),
                    if removed { "removed" } else { "left behind" }
                ),
            );
        }
        Ok(Err(e)) => {
            report.add("SIGTERM", Status::Fail, format!("wait failed: {e}"));
        }
        Err(_) => {
            report.add("SIGTERM", Status::Fail, "still running 10 s after SIGTERM");
            let _ = child.kill().await;
        }
    }
    output(report);
}

/// Instance start, the phases, instance close.
async fn instance_checks(
    report: &mut Report,
    conn: &mut AnyConnection,
    socket: &Path,
    info: &PluginInfo,
    config: &Value,
    seq: i32,
    global: bool,
) {
    let started = tokio::time::timeout(
        TIMEOUT,
        conn.start_instance(&info.name, &config.to_string()),
    )
    .await;
    let id = match started {
        Ok(Ok(Some(status))) => {
            let matches_seq = status.instance_id == seq;
            report.add(
                "start instance",
                if matches_seq { Status::Pass } else { Status::Warn },
                format!(
                    "instance {}{}",
                    status.instance_id,
                    if matches_seq {
                        " = __seq__".to_owned()
                    } else {
                        format!(" (Kong's __seq__ was {seq}; reusing it keeps ids stable across Kong workers)")
                    }
                ),
            );
            status.instance_id
        }
        Ok(Ok(None)) => {
            report.add(
                "start instance",
                Status::Fail,
                "the server refused the config (see its output)",
            );
            return;
        }
        Ok(Err(e)) => {
            report.add(
                "start instance",
                Status::Fail,
                format!("protocol error: {e}"),
            );
            return;
        }
        Err(_) => {
            report.add("start instance", Status::Fail, "no answer within 10 s");
            return;
        }
    };

    // Every declared phase, in Kong's order, on one simulated request.
    let body_dir = tempfile::tempdir().ok();
    // A TLS request when the plugin has a certificate phase (Kong runs it
    // only for TLS connections).
    let url = if info.has(Phase::Certificate) {
        "https://localhost:8443/kong-pdk-check/path?probe=1&probe=2"
    } else {
        "http://localhost:8000/kong-pdk-check/path?probe=1&probe=2"
    };
    let request = Request::get(url)
        .header("user-agent", "kong-pdk-dev-check")
        .header("accept", "application/json")
        .header("x-tenant", "check");
    let mut ex = Exchange::new(
        request,
        Vec::new(),
        NODE_ID,
        WORKSPACE_ID,
        body_dir
            .as_ref()
            .map_or_else(std::env::temp_dir, |d| d.path().to_owned()),
    );
    ex.set_buffered(info.has(Phase::Response));
    let mut answered = false;
    let mut proxied = false;
    for phase in [
        Phase::Certificate,
        Phase::Rewrite,
        Phase::Access,
        Phase::Response,
        Phase::Preread,
        Phase::Log,
    ] {
        if !info.has(phase) {
            continue;
        }
        let label = format!("phase {phase}");
        match phase {
            Phase::Rewrite if !global => continue,
            Phase::Response if answered => {
                report.add(
                    &label,
                    Status::Skip,
                    "an earlier phase answered the request",
                );
                continue;
            }
            _ => {}
        }
        if phase == Phase::Response || (phase == Phase::Log && !answered && !proxied) {
            let sent = ex.upstream_request();
            let res = sent.echo();
            ex.proxy(sent, res);
            proxied = true;
        }
        if !conn.is_open() {
            match AnyConnection::connect(socket, info.protocol).await {
                Ok(c) => *conn = c,
                Err(e) => {
                    report.add(&label, Status::Fail, format!("cannot connect: {e}"));
                    continue;
                }
            }
        }
        ex.set_phase(phase);
        let ran = tokio::time::timeout(
            TIMEOUT,
            conn.handle_event(id, phase.as_str(), |call| ex.answer(call)),
        )
        .await;
        let result = match ran {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                report.add(&label, Status::Fail, format!("protocol error: {e}"));
                *conn = match AnyConnection::connect(socket, info.protocol).await {
                    Ok(c) => c,
                    Err(_) => return,
                };
                continue;
            }
            Err(_) => {
                report.add(&label, Status::Fail, "the event did not end within 10 s");
                return;
            }
        };
        let closed = result.end == EventEnd::ServerClosed;
        let methods: Vec<String> = result.methods().iter().map(|m| (*m).to_owned()).collect();
        let end = ex.finish_event(phase, result);
        let errors = ex.take_kong_errors();
        let _ = ex.take_logs();
        let calls = if methods.is_empty() {
            "no PDK calls".to_owned()
        } else {
            format!("{} PDK calls", methods.len())
        };
        let (status, detail) = match end {
            PhaseEnd::Returned => (Status::Pass, format!("returned ({calls})")),
            PhaseEnd::Exit { status } => {
                answered = true;
                let body = ex.client_response().body_text();
                if status == 500 && body.contains("An unexpected error occurred") {
                    (
                        Status::Warn,
                        format!(
                            "the handler failed on the simulated request (500, {calls}); see the server output"
                        ),
                    )
                } else {
                    (
                        Status::Pass,
                        format!("kong.response.exit({status}) ({calls})"),
                    )
                }
            }
            PhaseEnd::Failed { reason } if closed => (
                Status::Fail,
                format!(
                    "the server closed the connection during the event ({reason}): Kong would reset its instances and run the phase again; report handler errors with kong.response.exit(500) instead"
                ),
            ),
            PhaseEnd::Failed { reason } => {
                if phase != Phase::Log {
                    answered = true;
                }
                (
                    Status::Fail,
                    format!(
                        "Kong raises an error: {reason}{}",
                        if errors.len() > 1 {
                            format!(" (+{} more)", errors.len() - 1)
                        } else {
                            String::new()
                        }
                    ),
                )
            }
        };
        report.add(&label, status, detail);
    }

    // Close the instance; the id is then unknown.
    let mut c = match AnyConnection::connect(socket, info.protocol).await {
        Ok(c) => c,
        Err(e) => {
            report.add(
                "close instance",
                Status::Fail,
                format!("cannot connect: {e}"),
            );
            return;
        }
    };
    match tokio::time::timeout(TIMEOUT, c.close_instance(id)).await {
        Ok(Ok(true)) => {
            let mut c2 = match AnyConnection::connect(socket, info.protocol).await {
                Ok(c) => c,
                Err(_) => return,
            };
            let after = tokio::time::timeout(
                TIMEOUT,
                c2.handle_event(id, "access", |_| kong_pdk_test::Reply::empty()),
            )
            .await;
            let closed = match after {
                Ok(Ok(r)) => r.end == EventEnd::ServerClosed,
                Ok(Err(e)) => e.to_string().contains("closed"),
                Err(_) => false,
            };
            report.add(
                "close instance",
                if closed { Status::Pass } else { Status::Fail },
                if closed {
                    "closed; an event for it then gets \"no plugin instance\"".to_owned()
                } else {
                    "closed, but the instance still handles events".to_owned()
                },
            );
        }
        Ok(Ok(false)) => {
            report.add(
                "close instance",
                Status::Fail,
                "the server refused (closed the connection, or an error reply)",
            );
        }
        Ok(Err(e)) => {
            report.add(
                "close instance",
                Status::Fail,
                format!("protocol error: {e}"),
            );
        }
        Err(_) => {
            report.add("close instance", Status::Fail, "no answer within 10 s");
        }
    }
}

/// The config Kong would send: the user's or one built from the schema,
/// completed and validated, with Kong's extra keys.
fn kong_shaped_config(
    info: &PluginInfo,
    given: Option<&Value>,
    global: bool,
) -> Result<(Value, &'static str), String> {
    let (config, how) = match given {
        Some(c) => (
            kong_pdk::schema::validate_config(&info.schema, c)
                .map_err(|e| format!("--config is not valid for the schema:\n{}", e.join("\n")))?,
            "--config",
        ),
        None => match kong_pdk::schema::validate_config(&info.schema, &Value::Null) {
            Ok(c) => (c, "schema defaults"),
            Err(_) => {
                let synthesized = synthesize(&info.schema);
                match kong_pdk::schema::validate_config(&info.schema, &synthesized) {
                    Ok(c) => (c, "schema defaults + sample values"),
                    Err(e) => {
                        return Err(format!(
                            "cannot build a valid config from the schema ({}); pass one with --config '{{...}}'",
                            e.join("; ")
                        ));
                    }
                }
            }
        },
    };
    let keys = kong_pdk_test::KongKeys {
        seq: SEQ.into(),
        plugin_id: "d1a2b3c4-0000-4000-8000-00000000c0de".into(),
        workspace_id: WORKSPACE_ID.into(),
        route_id: (!global).then(|| kong_pdk_test::DEFAULT_ROUTE_ID.to_owned()),
        service_id: (!global).then(|| kong_pdk_test::DEFAULT_SERVICE_ID.to_owned()),
        consumer_id: None,
        instance_name: None,
    };
    Ok((keys.add_to(&info.name, config), how))
}

/// Sample values for required fields without defaults.
fn synthesize(schema: &Value) -> Value {
    let config = schema
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|f| f.get("config"));
    config.map_or(Value::Null, sample_record)
}

fn sample_record(def: &Value) -> Value {
    let mut out = Map::new();
    for entry in def
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some((name, field)) = entry.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let required = field.get("required") == Some(&Value::Bool(true));
        if required && field.get("default").is_none() {
            out.insert(name.clone(), sample(field));
        }
    }
    Value::Object(out)
}

fn sample(field: &Value) -> Value {
    if let Some(first) = field
        .get("one_of")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.clone();
    }
    match field
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string")
    {
        "string" => {
            let min = field.get("len_min").and_then(Value::as_u64).unwrap_or(1) as usize;
            Value::String(
                "kong-pdk-dev-check"
                    .chars()
                    .cycle()
                    .take(min.max(18))
                    .collect(),
            )
        }
        "integer" | "number" => {
            let lo = field
                .get("between")
                .and_then(|b| b.get(0))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            json!(lo.max(1))
        }
        "boolean" => json!(false),
        "array" | "set" => {
            let min = field.get("len_min").and_then(Value::as_u64).unwrap_or(0) as usize;
            let element = field.get("elements").map_or(Value::Null, sample);
            Value::Array(std::iter::repeat_n(element, min).collect())
        }
        "map" => json!({}),
        "record" => sample_record(field),
        _ => Value::Null,
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Quotes a word for `sh`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_satisfy_required_fields() {
        let schema = json!({"name": "p", "fields": [{"config": {"type": "record", "fields": [
            {"path": {"type": "string", "required": true}},
            {"key": {"type": "string", "required": true, "len_min": 24}},
            {"mode": {"type": "string", "required": true, "one_of": ["a", "b"]}},
            {"n": {"type": "integer", "required": true, "between": [5, 10]}},
            {"opt": {"type": "string"}},
        ]}}]});
        let s = synthesize(&schema);
        assert!(
            kong_pdk::schema::validate_config(&schema, &s).is_ok(),
            "{s}"
        );
        assert_eq!(s["mode"], "a");
        assert_eq!(s["n"], 5);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b-c"), "/a/b-c");
        assert_eq!(shell_quote("it's here"), r"'it'\''s here'");
    }
}
