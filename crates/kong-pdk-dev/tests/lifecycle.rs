//! The gateway's process lifecycle: one gateway per prefix, SIGTERM at any
//! moment of start-up, and why a plugin server's socket is missing.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Config, Gateway};

const HELLO_YML: &str = r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: hello
        paths: [/hello]
        plugins:
          - name: rust-hello
"#;

/// A prefix with kong.conf and kong.yml serving rust-hello on `/hello`.
fn hello_conf() -> (
    (
        tempfile::TempDir,
        std::net::SocketAddr,
        std::net::SocketAddr,
    ),
    std::path::PathBuf,
) {
    common::write_conf(&Config {
        plugins: &["rust-hello"],
        yml: HELLO_YML,
        extra_conf: "",
    })
}

#[tokio::test]
async fn a_second_gateway_on_the_same_prefix_is_refused_and_the_first_keeps_serving() {
    let (dir, conf) = hello_conf();
    let first = Gateway::spawn(dir, &conf, &[]);
    assert!(
        first.wait_for("kong-pdk-dev ready", Duration::from_secs(60)),
        "{}",
        first.log()
    );
    let pid = first.pid().unwrap();
    let second = Command::new(common::GATEWAY)
        .args(["gateway", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("in use by another kong-pdk-dev (pid {pid})")),
        "{log}"
    );
    assert!(!log.contains("started pluginserver"), "{log}");
    let res = first.get("/hello", &[]).await;
    assert_eq!(res.status, 200, "{}", first.log());
    assert!(res.header("x-hello-from-rust").is_some());
}

/// Whether process `pid` is gone (exited and reaped).
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sigterm_at_any_moment_of_start_up_leaves_no_server_and_no_socket() {
    // Counted from the gateway's first line (before it, the process may not
    // have reached `main`, where the signals are held).
    for delay_ms in [0, 5, 20, 60, 150, 400, 1000] {
        let (dir, conf) = common::write_conf(&Config {
            plugins: &["rust-hello", "rust-log"],
            yml: HELLO_YML,
            extra_conf: "",
        });
        let prefix = dir.0.path().to_owned();
        let mut gw = Gateway::spawn(dir, &conf, &[]);
        assert!(gw.wait_for("starting with", Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(delay_ms));
        let code = gw.stop();
        let log = gw.log();
        assert_eq!(code, Some(0), "after {delay_ms} ms:\n{log}");
        for name in ["rust-hello", "rust-log"] {
            if let Some(pid) = gw.server_pid(name) {
                assert!(
                    gone(pid),
                    "after {delay_ms} ms: {name} ({pid}) still runs\n{log}"
                );
            }
        }
        let sockets: Vec<_> = std::fs::read_dir(&prefix)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".socket"))
            .map(|e| e.file_name())
            .collect();
        assert!(
            sockets.is_empty(),
            "after {delay_ms} ms: {sockets:?}\n{log}"
        );
    }
}

#[test]
fn a_missing_socket_is_explained() {
    // The server is started with another prefix than the gateway's.
    let elsewhere = tempfile::tempdir().unwrap();
    let exe = common::example("rust-hello");
    let cmd = format!(
        "{} -kong-prefix {}",
        exe.display(),
        elsewhere.path().display()
    );
    let (dir, conf) = hello_conf();
    let gw = Gateway::spawn(
        dir,
        &conf,
        &[("KONG_PLUGINSERVER_RUST_HELLO_START_CMD", &cmd)],
    );
    let want = format!(
        "the server listens on {}/rust-hello.socket instead",
        elsewhere.path().display()
    );
    assert!(gw.wait_for(&want, Duration::from_secs(30)), "{}", gw.log());
    drop(gw);

    // The start command does not exist.
    let (dir, conf) = hello_conf();
    let gw = Gateway::spawn(
        dir,
        &conf,
        &[(
            "KONG_PLUGINSERVER_RUST_HELLO_START_CMD",
            "/nonexistent/rust-hello",
        )],
    );
    assert!(
        gw.wait_for(
            "its start command was not found (the shell exited 127)",
            Duration::from_secs(30)
        ),
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn with_its_stderr_gone_the_gateway_serves_and_stops_cleanly() {
    let (dir, conf) = hello_conf();
    let (prefix, addr) = (dir.0.path().to_owned(), dir.1);
    let mut child = Command::new(common::GATEWAY)
        .args(["gateway", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Whoever read the gateway's output is gone.
    drop(child.stderr.take());
    let url = format!("http://{addr}/hello");
    let deadline = Instant::now() + Duration::from_secs(60);
    let res = loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await;
        if matches!(attempt, Ok(Ok(_))) {
            break common::send("GET", &url, &[], "").await;
        }
        assert!(Instant::now() < deadline, "the gateway never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(res.status, 200);
    common::signal(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!prefix.join("rust-hello.socket").exists());
    drop(dir);
}
