//! Kong's real process lifecycle against the `rust-hello` executable:
//! SIGTERM with an event in flight, its stderr pipe gone (worker 0 exited on
//! `kong reload`), SIGTERM the moment it started, instance sequences beyond
//! int32.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, EventEnd, PluginProcess, Reply};
use prost::Message;

const EXE: &str = env!("CARGO_BIN_EXE_rust-hello");

fn sigterm(pid: u32) {
    let pid = libc::pid_t::try_from(pid).unwrap();
    // SAFETY: sending a signal to our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

/// Waits (up to 10 s) for the child to exit.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts the server as Kong does, in a new prefix, with `stderr`; waits for
/// its socket.
fn start(stderr: Stdio) -> (tempfile::TempDir, PathBuf, Child) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rust-hello.socket");
    let mut child = Command::new(EXE)
        .arg("-kong-prefix")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    wait_for_socket(&socket, &mut child);
    (dir, socket, child)
}

fn wait_for_socket(socket: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(child.try_wait().unwrap().is_none(), "exited before binding");
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Starts instance 1 and an access event whose handler now waits for
/// Kong's answer to its first call (`kong.request.get_header`).
async fn event_in_flight(socket: &Path) -> (Connection, i64) {
    let mut conn = Connection::connect(socket).await.unwrap();
    conn.start_instance("rust-hello", r#"{"message":"hi","__seq__":1}"#)
        .await
        .unwrap()
        .expect("started");
    let seq = conn.send_event(1, "access").await.unwrap();
    assert_eq!(
        conn.read_frame().await.unwrap().unwrap(),
        b"kong.request.get_header"
    );
    conn.read_frame().await.unwrap().unwrap();
    (conn, seq)
}

/// Answers the waiting call and finishes the event as Kong does.
async fn finish_event(conn: &mut Connection, seq: i64) {
    conn.write_frame(&pb::Str { v: "h".into() }.encode_to_vec())
        .await
        .unwrap();
    assert_eq!(
        conn.read_frame().await.unwrap().unwrap(),
        b"kong.response.set_header"
    );
    conn.read_frame().await.unwrap().unwrap();
    conn.write_frame(b"").await.unwrap();
    assert_eq!(conn.read_frame().await.unwrap().unwrap(), b"");
    assert_eq!(conn.read_return(seq).await.unwrap().unwrap().sequence, seq);
}

/// Waits until the server no longer accepts connections: its shutdown began.
async fn until_shutdown_began(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Connection::connect(socket).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server did not begin to stop"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn sigterm_lets_an_event_in_flight_finish_then_removes_the_socket() {
    let mut server = PluginProcess::start(EXE).unwrap();
    let (mut conn, seq) = event_in_flight(server.socket()).await;
    sigterm(server.pid());
    server
        .wait_for_stderr("SIGTERM received", Duration::from_secs(10))
        .unwrap();
    finish_event(&mut conn, seq).await;
    let status = server.terminate().unwrap();
    assert!(status.success(), "{status}");
    assert!(!server.socket().exists());
}

#[tokio::test]
async fn with_its_stderr_pipe_closed_the_server_still_drains_and_exits_0() {
    let (_dir, socket, mut child) = start(Stdio::piped());
    // The reader of the pipe goes away, as nginx worker 0 does on reload:
    // from here every log line hits a broken pipe.
    drop(child.stderr.take());
    let (mut conn, seq) = event_in_flight(&socket).await;
    sigterm(child.id());
    until_shutdown_began(&socket).await;
    finish_event(&mut conn, seq).await;
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!socket.exists(), "the socket is removed");
}

#[test]
fn sigterm_the_moment_the_socket_appears_exits_0_and_leaves_no_socket() {
    for round in 0..20 {
        let (_dir, socket, mut child) = start(Stdio::null());
        sigterm(child.id());
        let status = wait_exit(&mut child);
        assert_eq!(status.code(), Some(0), "round {round}: {status}");
        assert!(!socket.exists(), "round {round}: socket left behind");
    }
}

fn greeting(call: &Call) -> Option<String> {
    (call.method == "kong.response.set_header").then(|| {
        match call.decode::<pb::Kv>().v.and_then(|v| v.kind) {
            Some(pb::ValueKind::StringValue(s)) => s,
            other => panic!("{other:?}"),
        }
    })
}

#[tokio::test]
async fn instances_with_sequences_beyond_int32_keep_their_own_configs() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let mut ids = Vec::new();
    for (seq, message) in [((1i64 << 31) + 1, "first"), ((1i64 << 32) + 1, "second")] {
        let config = format!(r#"{{"message":"{message}","__seq__":{seq}}}"#);
        let status = conn
            .start_instance("rust-hello", &config)
            .await
            .unwrap()
            .expect("started");
        ids.push(status.instance_id);
    }
    assert_ne!(ids[0], ids[1], "{ids:?}");
    // Kong starts the second again (e.g. after a reset): same sequence, so
    // it replaces that instance under the same id.
    let config = format!(r#"{{"message":"third","__seq__":{}}}"#, (1i64 << 32) + 1);
    let again = conn
        .start_instance("rust-hello", &config)
        .await
        .unwrap()
        .expect("started");
    assert_eq!(again.instance_id, ids[1]);
    let answer = |_: &Call| Reply::message(&pb::Str { v: "h".into() });
    for (id, message) in ids.iter().zip(["first", "third"]) {
        let result = conn.handle_event(*id, "access", answer).await.unwrap();
        assert_eq!(result.end, EventEnd::Returned);
        let said = result.calls.iter().find_map(greeting).unwrap();
        assert_eq!(said, format!("Rust says {message} to h"));
    }
}
