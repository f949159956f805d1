//! 100,000 events with instance churn against the built executable: the
//! server's resident memory comes back to where it was after warm-up.

use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, EventEnd, PluginProcess, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_rust-hello");

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `events` events over one connection, starting and closing an instance
/// every 50 events (Kong closes instances when their config changes).
async fn churn(socket: &std::path::Path, worker: i64, events: usize) {
    let mut conn = Connection::connect(socket).await.unwrap();
    conn.set_sequence(worker * 10_000_000);
    let mut id = 0;
    for n in 0..events {
        if n % 50 == 0 {
            if id != 0 {
                conn.close_instance(id).await.unwrap().unwrap();
            }
            let seq = worker * 1_000_000 + n as i64;
            let config = format!(r#"{{"message":"m{n}","__seq__":{seq},"__plugin_id":"p"}}"#);
            id = conn
                .start_instance("rust-hello", &config)
                .await
                .unwrap()
                .unwrap()
                .instance_id;
        }
        let result = conn
            .handle_event(id, "access", |call| match call.method.as_str() {
                "kong.request.get_header" => Reply::message(&pb::Str {
                    v: "example.com".into(),
                }),
                _ => Reply::empty(),
            })
            .await
            .unwrap();
        assert_eq!(result.end, EventEnd::Returned);
    }
    conn.close_instance(id).await.unwrap().unwrap();
}

async fn run(socket: &std::path::Path, workers: i64, per_worker: usize) {
    let mut tasks = Vec::new();
    for w in 1..=workers {
        let socket = socket.to_owned();
        tasks.push(tokio::spawn(
            async move { churn(&socket, w, per_worker).await },
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_events_with_churn_keep_memory_flat() {
    let server = PluginProcess::start(EXE).unwrap();
    // Warm-up: allocator pools, runtime workers, connection buffers.
    run(server.socket(), 8, 1_000).await;
    let start = rss_kib(server.pid());
    run(server.socket(), 8, 12_500).await;
    let end = rss_kib(server.pid());
    eprintln!("RSS after warm-up {start} KiB, after 100000 events {end} KiB");
    assert!(
        end <= start + start / 10,
        "RSS grew from {start} KiB to {end} KiB"
    );
}
