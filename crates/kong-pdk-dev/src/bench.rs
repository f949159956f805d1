//! `kong-pdk-dev bench`: a Kong-side load driver. It starts a plugin
//! executable the way Kong does, opens N connections (Kong's keepalive
//! pool), and on each sends `cmd_handle_event` for one instance again and
//! again, answering the plugin's PDK calls from a fixed request, like Kong's
//! worker would. It reports events/s, latency percentiles, the PDK round
//! trips per event, and the plugin process's CPU time and memory; with
//! `--compare-layer` the same executable with its call layer off
//! (`KONG_PDK_CALL_LAYER=off`) is measured in the same run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kong_pdk::Protocol;
use kong_pdk_proto as pb;
use kong_pdk_proto::prost::Message;
use kong_pdk_test::{AnyConnection, Call, EventEnd, PluginProcess, Reply};

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// The plugin executable under test.
    pub executable: PathBuf,
    /// Connection counts; each is a separate run.
    pub connections: Vec<usize>,
    /// The minimal server measured side by side, if any.
    pub baseline: Option<PathBuf>,
    /// Print JSON instead of a table.
    pub json: bool,
    /// Load before measuring.
    pub warmup: Duration,
    /// How long to measure.
    pub duration: Duration,
    /// Measured events at most.
    pub max_events: u64,
    /// The instance config (JSON object, without Kong's keys).
    pub config: String,
    /// The event sent.
    pub phase: String,
    /// Also measure the executable with `KONG_PDK_CALL_LAYER=off`.
    pub compare_layer: bool,
    /// Also measure the executable in the other protocol
    /// (`KONG_PDK_PROTOCOL`).
    pub compare_protocol: bool,
    /// Other plugin executables measured side by side (same config and
    /// request; each in the protocol its `-dump` names).
    pub compare: Vec<PathBuf>,
    /// Also measure the executable with each of these environment
    /// variables set (`NAME=value`).
    pub also_env: Vec<(String, String)>,
    /// Measurements per server, interleaved; the median is reported.
    pub rounds: usize,
    /// Threads of the driver.
    pub driver_threads: usize,
}

/// `bench --help`.
pub const BENCH_USAGE: &str = "\
Usage: kong-pdk-dev bench [options] <plugin-executable>

  -c, --connections N   concurrent connections; a list runs each (default 1,8,64)
  -b, --baseline EXE    the minimal server to compare with (default: bench-raw
                        next to this executable; \"none\" to skip). It replays
                        the PDK calls the plugin made in a sanity event, so
                        both sides put the same traffic on the socket
      --json            print the results as JSON instead of a table
  -w, --warmup SECS     warm-up before measuring (default 1)
  -d, --duration SECS   measured time (default 5)
  -n, --max-events N    stop after N measured events (default 10000000)
      --config JSON     instance config; the schema's defaults fill the rest
                        (default {}: defaults only)
      --phase NAME      event to send (default access)
      --compare-layer   also measure the executable with its call layer off
                        (KONG_PDK_CALL_LAYER=off), side by side
      --compare-protocol
                        also measure the executable in Kong's other protocol
                        (ProtoBuf:1 / MsgPack:1, via KONG_PDK_PROTOCOL)
      --compare EXE     also measure another plugin executable doing the same
                        job (e.g. a go-pdk or Python build), repeatable; it
                        gets the same config, request and answers
      --also-env K=V    also measure the executable with K=V in its
                        environment (repeatable), e.g.
                        --also-env KONG_PDK_RUNTIME=per-core
  -r, --rounds N        measurements per server, interleaved; the median (by
                        events/s) is reported (default 1)
  -t, --driver-threads N
                        threads of the driver playing Kong (default 1). Its
                        CPU is reported (drv% of its threads); at 90 % or more
                        it was the bottleneck and the row says so

Kong's answers describe one request (see REQUEST_HEADERS in bench.rs):
GET /orders?page=2 with Host, User-Agent, Accept, X-Request-ID,
X-Forwarded-For and Authorization: Bearer bench-key-0001; every consumer
exists. A plugin that answers it with kong.response.exit needs a --config
that lets it through, e.g. for rust-key-auth:
  --config '{\"key_names\":[\"authorization\"],\"keys\":[{\"key\":\"Bearer bench-key-0001\",\"consumer\":\"bench\"}]}'
A build path with a `debug` component gets a warning: measure release builds.
";

impl BenchArgs {
    /// Parses the arguments after `bench`.
    pub fn parse(args: &[String]) -> Result<BenchArgs, String> {
        let mut out = BenchArgs {
            executable: PathBuf::new(),
            connections: vec![1, 8, 64],
            baseline: default_baseline(),
            json: false,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            max_events: 10_000_000,
            config: "{}".into(),
            phase: "access".into(),
            compare_layer: false,
            compare_protocol: false,
            compare: Vec::new(),
            also_env: Vec::new(),
            rounds: 1,
            driver_threads: 1,
        };
        let mut it = args.iter();
        let mut exe = None;
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            let secs = |v: String, name: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{name}: not a number of seconds: {v}"))
            };
            match arg.as_str() {
                "-c" | "--connections" => {
                    let v = value(arg)?;
                    out.connections = v
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| format!("{arg}: not a list of positive numbers: {v}"))?;
                }
                "-b" | "--baseline" => {
                    let v = value(arg)?;
                    out.baseline = (v != "none").then(|| PathBuf::from(v));
                }
                "--json" => out.json = true,
                "-w" | "--warmup" => out.warmup = secs(value(arg)?, arg)?,
                "-d" | "--duration" => out.duration = secs(value(arg)?, arg)?,
                "-n" | "--max-events" => {
                    let v = value(arg)?;
                    out.max_events = v.parse().map_err(|_| format!("{arg}: not a number: {v}"))?;
                }
                "--config" => out.config = value(arg)?,
                "--phase" => out.phase = value(arg)?,
                "--compare-layer" => out.compare_layer = true,
                "--compare-protocol" => out.compare_protocol = true,
                "--compare" => out.compare.push(PathBuf::from(value(arg)?)),
                "--also-env" => {
                    let v = value(arg)?;
                    let (k, val) = v
                        .split_once('=')
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| format!("{arg}: expected NAME=value, got {v}"))?;
                    out.also_env.push((k.to_owned(), val.to_owned()));
                }
                "-t" | "--driver-threads" => {
                    let v = value(arg)?;
                    out.driver_threads = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{arg}: not a positive number: {v}"))?;
                }
                "-r" | "--rounds" => {
                    let v = value(arg)?;
                    out.rounds = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{arg}: not a positive number: {v}"))?;
                }
                other if other.starts_with('-') => return Err(format!("unknown option {other}")),
                other => {
                    if exe.replace(PathBuf::from(other)).is_some() {
                        return Err("give one plugin executable".into());
                    }
                }
            }
        }
        out.executable = exe.ok_or("no plugin executable given")?;
        Ok(out)
    }
}

/// `bench-raw` beside the running executable, if it is there.
fn default_baseline() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let raw = exe.with_file_name("bench-raw");
    raw.exists().then_some(raw)
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Measured events.
    pub events: u64,
    /// Measured time.
    pub elapsed: Duration,
    /// Every event's latency (µs), sorted.
    pub latencies_us: Vec<u32>,
    /// The plugin process's CPU time while measuring.
    pub server_cpu: Duration,
    /// Its resident memory at the end (KiB).
    pub server_rss_kib: u64,
    /// Its peak resident memory (KiB).
    pub server_peak_rss_kib: u64,
    /// Its thread count at the end.
    pub server_threads: u64,
    /// PDK calls Kong answered during the measured events (round trips;
    /// `kong.response.exit` included).
    pub round_trips: u64,
    /// The driver's (this process's) CPU time while measuring.
    pub driver_cpu: Duration,
    /// The driver's threads.
    pub driver_threads: usize,
}

impl Report {
    /// Throughput.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency percentile in microseconds.
    pub fn percentile(&self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[rank.min(self.latencies_us.len() - 1)]
    }

    /// PDK round trips per event.
    pub fn round_trips_per_event(&self) -> f64 {
        self.round_trips as f64 / self.events.max(1) as f64
    }

    /// Server CPU time per event, in microseconds.
    pub fn cpu_us_per_event(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.events.max(1) as f64
    }

    /// How busy the driver's threads were, in percent of their capacity.
    pub fn driver_busy_percent(&self) -> f64 {
        let capacity = self.elapsed.as_secs_f64() * self.driver_threads.max(1) as f64;
        100.0 * self.driver_cpu.as_secs_f64() / capacity.max(f64::MIN_POSITIVE)
    }

    /// Whether the driver, not the server, limited the rate: its threads
    /// were 90 % busy or more.
    pub fn driver_saturated(&self) -> bool {
        self.driver_busy_percent() >= 90.0
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "events": self.events,
            "seconds": self.elapsed.as_secs_f64(),
            "events_per_sec": self.events_per_sec(),
            "latency_us": {
                "p50": self.percentile(50.0),
                "p90": self.percentile(90.0),
                "p99": self.percentile(99.0),
                "max": self.latencies_us.last().copied().unwrap_or(0),
            },
            "cpu_us_per_event": self.cpu_us_per_event(),
            "round_trips_per_event": self.round_trips_per_event(),
            "rss_kib": self.server_rss_kib,
            "peak_rss_kib": self.server_peak_rss_kib,
            "threads": self.server_threads,
            "driver_cpu_us_per_event": self.driver_cpu.as_secs_f64() * 1e6 / self.events.max(1) as f64,
            "driver_busy_percent": self.driver_busy_percent(),
            "driver_threads": self.driver_threads,
            "driver_saturated": self.driver_saturated(),
        })
    }
}

/// The request Kong's answers describe: `GET /orders?page=2` from
/// 127.0.0.1 with these headers (names as nginx gives them, lower case).
pub const REQUEST_HEADERS: [(&str, &str); 6] = [
    ("host", "127.0.0.1:8000"),
    ("user-agent", "kong-pdk-bench/1"),
    ("accept", "*/*"),
    ("x-request-id", "bench-request-1"),
    ("x-forwarded-for", "10.0.0.1"),
    ("authorization", "Bearer bench-key-0001"),
];

/// Kong's encoded answers for that request, built once.
struct Answers {
    headers: Vec<u8>,
    query: Vec<u8>,
    serialize: Vec<u8>,
}

fn answers() -> &'static Answers {
    static ANSWERS: std::sync::OnceLock<Answers> = std::sync::OnceLock::new();
    ANSWERS.get_or_init(|| {
        let text = |v: &str| pb::Value {
            kind: Some(pb::ValueKind::StringValue(v.into())),
        };
        let headers = pb::Struct {
            fields: REQUEST_HEADERS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), text(v)))
                .collect(),
        };
        let query = pb::Struct {
            fields: [("page".to_owned(), text("2"))].into_iter().collect(),
        };
        let record = serde_json::json!({
            "request": {
                "method": "GET",
                "uri": "/orders?page=2",
                "url": "http://127.0.0.1:8000/orders?page=2",
                "querystring": {"page": "2"},
                "headers": REQUEST_HEADERS
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                    .collect::<serde_json::Map<_, _>>(),
            },
            "response": {"status": 200},
            "client_ip": "127.0.0.1",
        });
        Answers {
            headers: headers.encode_to_vec(),
            query: query.encode_to_vec(),
            serialize: pb::Str {
                v: record.to_string(),
            }
            .encode_to_vec(),
        }
    })
}

/// Answers like Kong would for that request.
fn answer(call: &Call) -> Reply {
    let s = |v: &str| Reply::message(&pb::Str { v: v.into() });
    match call.method.as_str() {
        "kong.request.get_header" => {
            let name = call
                .decode::<pb::Str>()
                .v
                .to_ascii_lowercase()
                .replace('_', "-");
            let value = REQUEST_HEADERS.iter().find(|(k, _)| *k == name);
            s(value.map_or("", |(_, v)| v))
        }
        "kong.request.get_headers" => Reply::Frame(answers().headers.clone()),
        "kong.request.get_query" => Reply::Frame(answers().query.clone()),
        "kong.request.get_query_arg" => {
            let name = call.decode::<pb::Str>().v;
            s(if name == "page" { "2" } else { "" })
        }
        "kong.request.get_method" => s("GET"),
        "kong.request.get_path" => s("/orders"),
        "kong.request.get_raw_query" => s("page=2"),
        "kong.request.get_scheme" => s("http"),
        "kong.request.get_host" => s("127.0.0.1"),
        "kong.client.get_ip" | "kong.client.get_forwarded_ip" => s("127.0.0.1"),
        "kong.log.serialize" => Reply::Frame(answers().serialize.clone()),
        // Every consumer exists.
        "kong.client.load_consumer" => {
            let by = call.decode::<pb::ConsumerSpec>();
            Reply::message(&pb::Consumer {
                id: "5a1c0b8e-0000-4000-8000-00000000bea7".into(),
                username: if by.by_username { by.id } else { String::new() },
                ..pb::Consumer::default()
            })
        }
        "kong.response.get_status" | "kong.service.response.get_status" => {
            Reply::message(&pb::Int { v: 200 })
        }
        _ => Reply::empty(),
    }
}

/// Starts an instance and runs the load on an already started server.
pub async fn drive(
    socket: &Path,
    name: &str,
    args: &BenchArgs,
    pid: u32,
    connections: usize,
    config: &str,
    protocol: Protocol,
) -> Result<Report, String> {
    let mut conn = AnyConnection::connect(socket, protocol)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    let status = conn
        .start_instance(name, config)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the plugin refused to start an instance with the config")?;
    let id = status.instance_id;

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let per_conn_cap = (args.max_events / connections as u64).max(1);
    let mut tasks = Vec::new();
    for n in 0..connections {
        let socket = socket.to_owned();
        let (measuring, stop) = (Arc::clone(&measuring), Arc::clone(&stop));
        let phase = args.phase.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = AnyConnection::connect(&socket, protocol)
                .await
                .map_err(|e| e.to_string())?;
            conn.set_sequence(1 + n as i64 * 1_000_000_000);
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut round_trips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = conn
                    .handle_event(id, &phase, answer)
                    .await
                    .map_err(|e| e.to_string())?;
                if result.end != EventEnd::Returned {
                    return Err(match &result.end {
                        EventEnd::Exit(exit) => format!(
                            "the event ended with kong.response.exit({}, {:?}) (does the plugin need the other protocol?)",
                            exit.status,
                            String::from_utf8_lossy(&exit.body)
                        ),
                        other => format!("the event ended with {other:?}"),
                    });
                }
                if measuring.load(Ordering::Relaxed) {
                    let us = started.elapsed().as_micros();
                    latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                    round_trips += result.calls.len() as u64;
                    if latencies.len() as u64 >= per_conn_cap {
                        break;
                    }
                }
            }
            Ok::<_, String>((latencies, round_trips))
        }));
    }
    tokio::time::sleep(args.warmup).await;
    let cpu_before = process_cpu(pid);
    let driver_before = process_cpu(std::process::id());
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + args.duration;
    while Instant::now() < deadline && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    let mut round_trips = 0;
    for t in tasks {
        let (latencies, calls) = t.await.map_err(|e| e.to_string())??;
        latencies_us.extend(latencies);
        round_trips += calls;
    }
    let elapsed = started.elapsed();
    let server_cpu = process_cpu(pid).saturating_sub(cpu_before);
    let driver_cpu = process_cpu(std::process::id()).saturating_sub(driver_before);
    latencies_us.sort_unstable();
    let (rss, peak, threads) = process_memory(pid);
    Ok(Report {
        events: latencies_us.len() as u64,
        elapsed,
        latencies_us,
        server_cpu,
        server_rss_kib: rss,
        server_peak_rss_kib: peak,
        server_threads: threads,
        round_trips,
        driver_cpu,
        driver_threads: args.driver_threads,
    })
}

/// The config as Kong sends it: defaults from the plugin's schema (when
/// given), then Kong's extra keys. `given` says whether `--config` was
/// set, for the error.
fn kong_config(
    name: &str,
    fields: &str,
    schema: Option<&serde_json::Value>,
) -> Result<String, String> {
    let json: serde_json::Value =
        serde_json::from_str(fields).map_err(|e| format!("--config is not JSON: {e}"))?;
    if !json.is_object() {
        return Err("--config must be a JSON object".into());
    }
    let json = match schema {
        Some(schema) => kong_pdk::schema::validate_config(schema, &json).map_err(|errors| {
            let required = required_without_default(schema);
            let mut message = format!(
                "the config {fields} (with the schema's defaults) is not valid for {name}: {}",
                errors.join("; ")
            );
            if !required.is_empty() {
                message.push_str(&format!(
                    "\n{name} needs --config with: {} (required, no default)",
                    required.join(", ")
                ));
            }
            message
        })?,
        None => json,
    };
    Ok(kong_pdk_test::KongKeys::global(1)
        .add_to(name, json)
        .to_string())
}

/// The config fields a plugin's schema requires and gives no default.
fn required_without_default(schema: &serde_json::Value) -> Vec<String> {
    let config_fields = schema["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|f| f.get("config"))
        .and_then(|c| c["fields"].as_array());
    config_fields
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_object()?.iter().next())
        .filter(|(_, def)| def["required"] == true && def.get("default").is_none())
        .map(|(name, _)| name.clone())
        .collect()
}

/// The PDK calls the plugin makes for one event, recorded from two sanity
/// events (the second, so that anything done once per instance is past)
/// so that the baseline can replay them: `None` when they change from
/// event to event, `Err` when the event does not run to its end.
fn record_calls(
    exe: &Path,
    name: &str,
    phase: &str,
    config: &str,
    protocol: Protocol,
) -> Result<Option<Vec<Call>>, String> {
    let server =
        PluginProcess::start(exe).map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut conn = AnyConnection::connect(server.socket(), protocol)
            .await
            .map_err(|e| e.to_string())?;
        let id = conn
            .start_instance(name, config)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the plugin refused to start an instance with the config")?
            .instance_id;
        let mut events = Vec::new();
        for _ in 0..2 {
            let result = conn
                .handle_event(id, phase, answer)
                .await
                .map_err(|e| e.to_string())?;
            match &result.end {
                EventEnd::Returned => {}
                EventEnd::Exit(exit) => {
                    let body = String::from_utf8_lossy(&exit.body);
                    return Err(format!(
                        "the {phase} event ended with kong.response.exit({}, {:?}): bench measures events that run to their end; give a --config under which the plugin lets bench's request through (see --help for the request)",
                        exit.status,
                        body.chars().take(200).collect::<String>()
                    ));
                }
                other => return Err(format!("the {phase} event ended with {other:?}")),
            }
            events.push(result.calls);
        }
        let second = events.pop().unwrap_or_default();
        Ok((events.pop().unwrap_or_default() == second).then_some(second))
    })
}

/// The baseline's config: the plugin's, plus the calls to replay
/// (`[method, hex-encoded args]` pairs).
fn replay_config(config: &str, calls: &[Call]) -> String {
    let mut json: serde_json::Value = serde_json::from_str(config).unwrap_or_default();
    json["replay"] = calls
        .iter()
        .map(|c| serde_json::json!([c.method, hex(&c.args)]))
        .collect();
    json.to_string()
}

/// Lower-case hex, as `bench-raw` decodes it.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Schema` of `exe -dump`, when the executable gives one.
fn plugin_schema(exe: &Path) -> Option<serde_json::Value> {
    let out = std::process::Command::new(exe).arg("-dump").output().ok()?;
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(dump["Plugins"][0]["Schema"].clone()).filter(|s| s.is_object())
}

/// User + system CPU time of a process (Linux `/proc`).
fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Kernel clock ticks are 100 Hz on every Linux we run on.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Current and peak resident memory (KiB) and thread count of a process.
fn process_memory(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("Threads:"))
}

/// One server measured: an executable and its environment.
#[derive(Debug, Clone)]
struct Variant {
    /// Its row's label.
    label: String,
    /// Its key in the JSON output.
    key: String,
    exe: PathBuf,
    env: Vec<(String, String)>,
    /// Its instance config, when not the plugin's.
    config: Option<String>,
    /// The protocol it speaks (its `-dump` under its environment).
    protocol: Protocol,
}

/// Starts `variant` like Kong does and drives it.
fn measure(
    variant: &Variant,
    args: &BenchArgs,
    connections: usize,
    config: &str,
) -> Result<Report, String> {
    let exe = &variant.exe;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let env: Vec<(&str, &str)> = variant
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut server = PluginProcess::start_with_env(exe, &env)
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    // One driver thread by default: the other core is the plugin server's.
    // More when the driver saturates (its row says so).
    let rt = if args.driver_threads > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.driver_threads)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let report = rt
        .block_on(drive(
            server.socket(),
            &name,
            args,
            server.pid(),
            connections,
            config,
            variant.protocol,
        ))
        .map_err(|e| format!("{}: {e}\n{}", variant.label, server.stderr()));
    // Stop it the way Kong does (lets wrappers such as strace report).
    let _ = server.terminate();
    report
}

/// The servers one run measures: the plugin, then optionally the plugin
/// with its call layer off, then optionally the baseline, replaying
/// `recorded` calls.
fn variants(
    args: &BenchArgs,
    config: &str,
    recorded: Option<&[Call]>,
    protocol: Protocol,
) -> Vec<Variant> {
    let name = args
        .executable
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let with_env = |label: String, key: String, env: Vec<(String, String)>| {
        // The plugin's own protocol is known; another environment may
        // change it (KONG_PDK_PROTOCOL).
        let protocol = if env.is_empty() {
            protocol
        } else {
            dump_protocol(&args.executable, &env)
        };
        Variant {
            label,
            key,
            exe: args.executable.clone(),
            env,
            config: None,
            protocol,
        }
    };
    let mut out = vec![with_env(name.clone(), "plugin".into(), Vec::new())];
    if args.compare_protocol {
        let other = match out[0].protocol {
            Protocol::ProtoBuf => Protocol::MsgPack,
            Protocol::MsgPack => Protocol::ProtoBuf,
        };
        let env = vec![(
            kong_pdk::server::PROTOCOL_ENV.to_owned(),
            other.as_str().to_owned(),
        )];
        out.push(with_env(
            format!("{name} ({other})"),
            "other_protocol".into(),
            env,
        ));
    }
    if args.compare_layer {
        let env = vec![(
            kong_pdk::server::CALL_LAYER_ENV.to_owned(),
            "off".to_owned(),
        )];
        out.push(with_env(
            format!("{name} (layer off)"),
            "layer_off".into(),
            env,
        ));
    }
    for exe in &args.compare {
        let label = exe.file_name().map_or_else(
            || exe.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let protocol = dump_protocol(exe, &[]);
        out.push(Variant {
            label: format!("{label} ({protocol})"),
            key: format!("compare {label}"),
            exe: exe.clone(),
            env: Vec::new(),
            config: None,
            protocol,
        });
    }
    for (k, v) in &args.also_env {
        out.push(with_env(
            format!("{name} ({k}={v})"),
            format!("env {k}={v}"),
            vec![(k.clone(), v.clone())],
        ));
    }
    if let (Some(exe), Some(calls)) = (&args.baseline, recorded) {
        out.push(Variant {
            label: "baseline".into(),
            key: "baseline".into(),
            exe: exe.clone(),
            env: Vec::new(),
            config: Some(replay_config(config, calls)),
            protocol: Protocol::ProtoBuf,
        });
    }
    out
}

/// The protocol `exe -dump` announces with `env` set: Kong's default,
/// MsgPack:1, when the dump names none; ProtoBuf:1 when there is no dump.
fn dump_protocol(exe: &Path, env: &[(String, String)]) -> Protocol {
    let out = std::process::Command::new(exe)
        .arg("-dump")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output();
    let dump: Option<serde_json::Value> = out
        .ok()
        .and_then(|o| serde_json::from_slice(&o.stdout).ok());
    match dump
        .as_ref()
        .map(|d| d.get("Protocol").and_then(serde_json::Value::as_str))
    {
        Some(Some("MsgPack:1") | None) => Protocol::MsgPack,
        _ => Protocol::ProtoBuf,
    }
}

/// The report with the median events/s.
fn median(mut reports: Vec<Report>) -> Report {
    reports.sort_by(|a, b| a.events_per_sec().total_cmp(&b.events_per_sec()));
    reports.swap_remove(reports.len() / 2)
}

/// `a` against `b`: events/s, CPU per event and round trips per event.
fn ratio(a: &Report, b: &Report) -> serde_json::Value {
    serde_json::json!({
        "events_per_sec": a.events_per_sec() / b.events_per_sec(),
        "cpu_per_event": a.cpu_us_per_event() / b.cpu_us_per_event().max(f64::MIN_POSITIVE),
        "round_trips_per_event": a.round_trips_per_event() / b.round_trips_per_event().max(f64::MIN_POSITIVE),
    })
}

/// `kong-pdk-dev bench …`
/// Runs `bench`; the process exit code.
pub fn main(args: &[String]) -> ExitCode {
    let args = match BenchArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n\n{BENCH_USAGE}");
            return ExitCode::from(2);
        }
    };
    if args
        .executable
        .components()
        .any(|c| c.as_os_str() == "debug")
    {
        eprintln!(
            "warning: {} looks like a debug build; measure a release build (cargo build --release)",
            args.executable.display()
        );
    }
    // The plugin's defaults filled in as Kong would; the baseline gets the
    // same config.
    let schema = plugin_schema(&args.executable);
    let name = args
        .executable
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let config = match kong_config(&name, &args.config, schema.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // One sanity event before the load: it fails early with a clear
    // message, and records the calls the baseline replays.
    let protocol = dump_protocol(&args.executable, &[]);
    let recorded = match record_calls(&args.executable, &name, &args.phase, &config, protocol) {
        Ok(calls) => calls,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    // bench-raw speaks ProtoBuf:1: it cannot do a MsgPack:1 plugin's work.
    let recorded = if protocol == Protocol::MsgPack && args.baseline.is_some() {
        eprintln!(
            "no baseline comparison: the plugin speaks MsgPack:1 and bench-raw only ProtoBuf:1, so they would not do the same work (--compare-protocol measures the plugin in both)"
        );
        None
    } else {
        recorded
    };
    match (&args.baseline, &recorded) {
        (Some(exe), Some(calls)) => eprintln!(
            "baseline: {} replaying the plugin's {} PDK call(s) per event ({}), without the plugin's code",
            exe.display(),
            calls.len(),
            calls
                .iter()
                .map(|c| c.method.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Some(_), None) if protocol == Protocol::ProtoBuf => eprintln!(
            "no baseline comparison: the plugin's PDK calls change from event to event, so no fixed replay makes the same calls"
        ),
        (Some(_), None) => {}
        (None, _) => {}
    }
    let variants = variants(&args, &config, recorded.as_deref(), protocol);
    // Per connection count, each server's label, JSON key and median report.
    type Medians = Vec<(String, String, Report)>;
    let mut rows: Vec<(usize, Medians)> = Vec::new();
    for &connections in &args.connections {
        let mut runs: Vec<Vec<Report>> = vec![Vec::new(); variants.len()];
        // Interleaved, so that the machine's drift hits every server alike.
        for _ in 0..args.rounds {
            for (variant, runs) in variants.iter().zip(&mut runs) {
                let config = variant.config.as_deref().unwrap_or(&config);
                match measure(variant, &args, connections, config) {
                    Ok(r) => runs.push(r),
                    Err(e) => {
                        eprintln!("bench failed: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        let medians = variants
            .iter()
            .zip(runs)
            .map(|(v, r)| (v.label.clone(), v.key.clone(), median(r)))
            .collect();
        rows.push((connections, medians));
    }
    if args.json {
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|(c, servers)| {
                let (_, _, plugin) = &servers[0];
                let mut row = serde_json::json!({
                    "connections": c,
                    "rounds": args.rounds,
                    "plugin": plugin.json(),
                });
                for (_, key, report) in &servers[1..] {
                    row[key] = report.json();
                    row[format!("ratio_to_{key}")] = ratio(plugin, report);
                }
                row
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json).expect("JSON"));
    } else {
        if args.rounds > 1 {
            println!(
                "medians of {} interleaved rounds (by events/s)",
                args.rounds
            );
        }
        println!(
            "{:<40} {:>5} {:>10} {:>7} {:>7} {:>7} {:>8} {:>8} {:>7} {:>9} {:>7} {:>5}  vs",
            "server",
            "conns",
            "events/s",
            "p50µs",
            "p90µs",
            "p99µs",
            "maxµs",
            "cpuµs/ev",
            "rt/ev",
            "peakKiB",
            "threads",
            "drv%"
        );
        for (c, servers) in &rows {
            let (label, _, plugin) = &servers[0];
            row(label, *c, plugin, "");
            for (label, _, report) in &servers[1..] {
                let r = ratio(plugin, report);
                let vs = format!(
                    "{}: {:.2}x events/s, {:.2}x CPU, {:.2}x round trips",
                    servers[0].0,
                    r["events_per_sec"].as_f64().unwrap_or(0.0),
                    r["cpu_per_event"].as_f64().unwrap_or(0.0),
                    r["round_trips_per_event"].as_f64().unwrap_or(0.0),
                );
                row(label, *c, report, &vs);
            }
        }
    }
    ExitCode::SUCCESS
}

fn row(name: &str, connections: usize, r: &Report, ratio: &str) {
    let saturated = if r.driver_saturated() {
        " [driver saturated: the rate is the driver's; try --driver-threads]"
    } else {
        ""
    };
    println!(
        "{:<40} {:>5} {:>10.0} {:>7} {:>7} {:>7} {:>8} {:>8.1} {:>7.2} {:>9} {:>7} {:>5.0}  {}{}",
        name,
        connections,
        r.events_per_sec(),
        r.percentile(50.0),
        r.percentile(90.0),
        r.percentile(99.0),
        r.latencies_us.last().copied().unwrap_or(0),
        r.cpu_us_per_event(),
        r.round_trips_per_event(),
        r.server_peak_rss_kib,
        r.server_threads,
        r.driver_busy_percent(),
        ratio,
        saturated
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let args: Vec<String> = [
            "-c", "4", "-d", "0.5", "-n", "100", "--phase", "log", "-b", "none", "/bin/x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let a = BenchArgs::parse(&args).unwrap();
        assert_eq!(a.connections, [4]);
        assert_eq!(a.baseline, None);
        assert_eq!(a.duration, Duration::from_millis(500));
        assert_eq!(a.max_events, 100);
        assert_eq!(a.phase, "log");
        assert_eq!(a.executable, PathBuf::from("/bin/x"));
        assert!(!a.compare_layer);
        assert_eq!(a.rounds, 1);
        let b = BenchArgs::parse(&[
            "--compare-layer".into(),
            "-r".into(),
            "3".into(),
            "x".into(),
        ])
        .unwrap();
        assert!(b.compare_layer);
        assert_eq!(b.rounds, 3);
        assert_eq!(b.driver_threads, 1);
        assert!(BenchArgs::parse(&["-r".into(), "0".into(), "x".into()]).is_err());
        let t = BenchArgs::parse(&["-t".into(), "2".into(), "x".into()]).unwrap();
        assert_eq!(t.driver_threads, 2);
        assert!(BenchArgs::parse(&["--driver-threads".into(), "0".into(), "x".into()]).is_err());
        let c = BenchArgs::parse(&["--also-env".into(), "A=b=c".into(), "x".into()]).unwrap();
        assert_eq!(c.also_env, [("A".to_owned(), "b=c".to_owned())]);
        assert!(BenchArgs::parse(&["--also-env".into(), "=x".into(), "x".into()]).is_err());
        assert!(BenchArgs::parse(&["-c".into(), "0".into(), "x".into()]).is_err());
        assert!(BenchArgs::parse(&["--what".into()]).is_err());
        assert!(BenchArgs::parse(&[]).is_err());
    }

    #[test]
    fn percentiles_come_from_sorted_latencies() {
        let r = Report {
            events: 100,
            elapsed: Duration::from_secs(1),
            latencies_us: (1..=100).collect(),
            server_cpu: Duration::from_millis(50),
            driver_cpu: Duration::from_millis(950),
            driver_threads: 1,
            server_rss_kib: 1,
            server_peak_rss_kib: 2,
            server_threads: 3,
            round_trips: 250,
        };
        assert_eq!(r.percentile(50.0), 51);
        assert_eq!(r.percentile(99.0), 99);
        assert_eq!(r.events_per_sec(), 100.0);
        assert!((r.cpu_us_per_event() - 500.0).abs() < 1e-9);
        assert_eq!(r.round_trips_per_event(), 2.5);
        // 950 ms of CPU in one second on one thread: the driver was the
        // bottleneck; on two threads it was not.
        assert!((r.driver_busy_percent() - 95.0).abs() < 1e-9);
        assert!(r.driver_saturated());
        let two = Report {
            driver_threads: 2,
            ..r
        };
        assert!(!two.driver_saturated());
    }

    #[test]
    fn config_gets_kongs_keys() {
        let c: serde_json::Value =
            serde_json::from_str(&kong_config("p", r#"{"a":1}"#, None).unwrap()).unwrap();
        assert_eq!(c["__seq__"], 1);
        assert_eq!(c["a"], 1);
        assert!(kong_config("p", "[]", None).is_err());
    }

    #[test]
    fn the_fields_to_give_are_the_required_ones_without_default() {
        let schema = serde_json::json!({"fields": [
            {"protocols": {"type": "set"}},
            {"config": {"type": "record", "fields": [
                {"keys": {"type": "array", "required": true}},
                {"header": {"type": "string", "required": true, "default": "x"}},
                {"note": {"type": "string"}}
            ]}}
        ]});
        assert_eq!(required_without_default(&schema), ["keys"]);
        let err = kong_config("p", "{}", Some(&schema)).unwrap_err();
        assert!(err.contains("p needs --config with: keys"), "{err}");
    }

    #[test]
    fn the_baseline_config_carries_the_calls_in_hex() {
        let calls = [Call {
            method: "kong.request.get_header".into(),
            args: vec![0x0a, 0x01, 0xff],
        }];
        let config: serde_json::Value =
            serde_json::from_str(&replay_config(r#"{"__seq__":1}"#, &calls)).unwrap();
        assert_eq!(config["__seq__"], 1);
        assert_eq!(
            config["replay"],
            serde_json::json!([["kong.request.get_header", "0a01ff"]])
        );
    }
}
