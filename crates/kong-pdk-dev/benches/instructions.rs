//! Instructions per event, counted by valgrind's callgrind: the server
//! (`bench-plugin`, kong-pdk's full runtime) and the baseline (`bench-raw`,
//! the framing alone) each serve N₁ and then N₂ events of one connection in
//! two runs; (I(N₂) − I(N₁)) / (N₂ − N₁) is the cost of one event with
//! start-up, instance creation and shutdown subtracted. A count, not a time:
//! it does not move with the machine's load, so a regression shows as a
//! number.
//!
//! `cargo bench -p kong-pdk-dev --bench instructions` (needs `valgrind` on
//! the PATH; without it the bench says so and measures nothing). With
//! `INSTRUCTIONS_KEEP=<dir>` the callgrind files stay there, named
//! `<server>-<calls>-<events>.out`, for `callgrind_annotate`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, Reply};

const FEW: u64 = 200;

/// A row: its label, the executable and its extra environment.
type Server = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
const MANY: u64 = 2200;

fn main() {
    if Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        println!(
            "instructions: valgrind not found; install it (apt-get install valgrind) to count instructions per event"
        );
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument picks rows.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    // The baseline makes every call a round trip, so the server is measured
    // the same way (call layer off); with it on, the 10-call event needs
    // fewer round trips, shown in its own row (not the same work).
    let plugin = env!("CARGO_BIN_EXE_bench-plugin");
    let servers: [Server; 3] = [
        ("bench-raw", env!("CARGO_BIN_EXE_bench-raw"), &[]),
        ("bench-plugin", plugin, &[("KONG_PDK_CALL_LAYER", "off")]),
        ("+ call layer", plugin, &[]),
    ];
    println!(
        "instructions per event (callgrind, one connection, ({MANY} − {FEW} events) / {})",
        MANY - FEW
    );
    println!(
        "{:<14} {:>6} {:>8} {:>12} {:>10}",
        "server", "calls", "rt/event", "instr/event", "vs raw"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for calls in [2u16, 10] {
        let mut raw = None;
        for (name, exe, env) in servers {
            if filter.as_deref().is_some_and(|f| !name.contains(f)) {
                continue;
            }
            let (few, _) = runtime.block_on(count(exe, env, calls, FEW));
            let (many, round_trips) = runtime.block_on(count(exe, env, calls, MANY));
            let per_event = many.saturating_sub(few) as f64 / (MANY - FEW) as f64;
            if name == "bench-raw" {
                raw = Some(per_event);
            }
            let ratio = raw.map_or(String::new(), |r| format!("{:.2}×", per_event / r));
            println!("{name:<14} {calls:>6} {round_trips:>8} {per_event:>12.0} {ratio:>10}");
        }
    }
}

/// Total instructions of `exe` serving `events` events of `calls` PDK calls,
/// and the round trips of one event.
async fn count(exe: &str, env: &[(&str, &str)], calls: u16, events: u64) -> (u64, usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("callgrind.out");
    let name = Path::new(exe).file_name().expect("a file name");
    let socket: PathBuf = dir
        .path()
        .join(format!("{}.socket", name.to_string_lossy()));
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .arg("-kong-prefix")
        .arg(dir.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("valgrind starts");
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{exe} under valgrind made no socket"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = Connection::connect(&socket).await.expect("connects");
    let config = format!(r#"{{"message":"bench","calls":{calls},"__seq__":1}}"#);
    let status = conn
        .start_instance(&name.to_string_lossy(), &config)
        .await
        .expect("starts an instance")
        .expect("an instance status");
    let id = status.instance_id;
    let mut round_trips = 0;
    for _ in 0..events {
        let result = conn
            .handle_event(id, "access", answer)
            .await
            .expect("the event completes");
        round_trips = result.calls.len();
    }
    drop(conn);
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    child.wait().expect("the server exits");
    if let Some(keep) = std::env::var_os("INSTRUCTIONS_KEEP") {
        let label = format!(
            "{}{}-{calls}-{events}.out",
            name.to_string_lossy(),
            if env.is_empty() { "" } else { "-env" }
        );
        std::fs::copy(&out, Path::new(&keep).join(label)).expect("keeping the callgrind file");
    }
    let text = std::fs::read_to_string(&out).expect("callgrind wrote its output");
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("a summary line");
    (total, round_trips)
}

fn answer(call: &Call) -> Reply {
    match call.method.as_str() {
        "kong.request.get_header" => Reply::message(&pb::Str {
            v: "127.0.0.1:8000".into(),
        }),
        "kong.request.get_headers" => Reply::message(&pb::Struct {
            fields: [
                "host",
                "user-agent",
                "accept",
                "x-request-id",
                "x-forwarded-for",
            ]
            .into_iter()
            .map(|h| {
                let v = pb::Value {
                    kind: Some(pb::ValueKind::StringValue("127.0.0.1:8000".into())),
                };
                (h.to_owned(), v)
            })
            .collect(),
        }),
        _ => Reply::empty(),
    }
}
