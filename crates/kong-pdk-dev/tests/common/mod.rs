//! Shared helpers: the example binaries, a gateway process on free loopback
//! ports, and an HTTP client.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The gateway binary.
pub const GATEWAY: &str = env!("CARGO_BIN_EXE_kong-pdk-dev");

/// The nine example plugins, sorted.
pub const EXAMPLES: [&str; 9] = [
    "rust-api-auth",
    "rust-hello",
    "rust-key-auth",
    "rust-log",
    "rust-request-transformer",
    "rust-response-transformer",
    "rust-tenant-audit",
    "rust-traced",
    "rust-upstream-policy",
];

/// The directory of the binaries this test was built with (target/<profile>),
/// which honours CARGO_TARGET_DIR and the profile.
pub fn bin_dir() -> PathBuf {
    Path::new(GATEWAY)
        .parent()
        .expect("the gateway binary has a directory")
        .to_path_buf()
}

static BUILD: Once = Once::new();

/// The path of an example binary, built (once per test process) when any
/// is missing.
pub fn example(name: &str) -> PathBuf {
    BUILD.call_once(|| {
        let dir = bin_dir();
        if EXAMPLES.iter().all(|e| dir.join(e).exists()) {
            return;
        }
        let profile = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target_dir = dir.parent().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build").arg("--target-dir").arg(target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.arg("--profile").arg(other);
            }
        }
        for e in EXAMPLES {
            cmd.arg("-p").arg(e);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the examples failed: {cmd:?}");
    });
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A gateway process with its own prefix, conf and kong.yml.
pub struct Gateway {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// Signals when the stderr reader has read everything (EOF).
    drained: std::sync::mpsc::Receiver<()>,
    /// The proxy address.
    pub addr: SocketAddr,
    /// The echo upstream address.
    pub echo: SocketAddr,
    /// The prefix (a temporary directory).
    pub dir: tempfile::TempDir,
}

/// What to put in kong.conf.
pub struct Config<'a> {
    /// The plugin servers (example names) started by the gateway.
    pub plugins: &'a [&'a str],
    /// kong.yml; `{echo}` is replaced by the echo upstream address and
    /// `{dir}` by the prefix.
    pub yml: &'a str,
    /// Extra kong.conf lines.
    pub extra_conf: &'a str,
}

impl Gateway {
    /// Writes kong.conf/kong.yml into a new prefix for `plugins` (each
    /// started by the gateway), starts the gateway and waits until ready.
    pub fn start(plugins: &[&str], yml: &str) -> Gateway {
        Gateway::start_with(Config {
            plugins,
            yml,
            extra_conf: "",
        })
    }

    /// [`Gateway::start`] with extra kong.conf lines.
    pub fn start_with(config: Config<'_>) -> Gateway {
        let (dir, conf) = write_conf(&config);
        let gw = Gateway::spawn(dir, &conf, &[]);
        gw.wait_ready();
        gw
    }

    /// Starts the gateway on `conf` in `dir` without waiting.
    pub fn spawn(
        dir: (tempfile::TempDir, SocketAddr, SocketAddr),
        conf: &Path,
        env: &[(&str, &str)],
    ) -> Gateway {
        let (dir, addr, echo) = dir;
        let mut child = Command::new(GATEWAY)
            .arg("gateway")
            .arg("-c")
            .arg(conf)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gateway starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped");
        let sink = Arc::clone(&log);
        let (done, drained) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("KONG_PDK_DEV_TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
            let _ = done.send(());
        });
        Gateway {
            child: Some(child),
            log,
            drained,
            addr,
            echo,
            dir,
        }
    }

    /// Everything the gateway logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for a log line containing `needle`; false after `limit`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        self.wait_until(limit, |log| log.contains(needle))
    }

    /// Waits until `cond(log)` holds; false after `limit`.
    pub fn wait_until(&self, limit: Duration, cond: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if cond(&self.log()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the gateway says it is ready; fails the test if it does not start.
    pub fn wait_ready(&self) {
        let ready = self.wait_until(Duration::from_secs(60), |log| {
            log.contains("kong-pdk-dev ready") || log.contains("gateway not started")
        });
        let log = self.log();
        assert!(
            ready && log.contains("kong-pdk-dev ready"),
            "the gateway did not start:\n{log}"
        );
    }

    /// Waits for the gateway to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Everything it wrote is in the log once the reader hits EOF.
                let _ = self.drained.recv_timeout(Duration::from_secs(10));
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The gateway's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) -> Option<i32> {
        let pid = self.child.as_ref()?.id();
        signal(pid, "TERM");
        self.wait_exit(Duration::from_secs(20))
    }

    /// The pid of plugin server `name` from the latest start line.
    pub fn server_pid(&self, name: &str) -> Option<u32> {
        let needle = format!("started pluginserver '{name}', pid ");
        let log = self.log();
        let at = log.rfind(&needle)?;
        log[at + needle.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// A URL on the proxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET `path` with `headers`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        send("GET", &self.url(path), headers, "").await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.is_some() && self.stop().is_none() {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Sends a signal (`"TERM"`, `"KILL"`, `"HUP"`, …) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let sig = match sig {
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        other => panic!("unknown signal {other}"),
    };
    let _ = kong_pdk_dev::supervisor::send_signal(pid, sig);
}

/// Writes kong.conf and kong.yml for `config` into a new prefix.
pub fn write_conf(config: &Config<'_>) -> ((tempfile::TempDir, SocketAddr, SocketAddr), PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let echo: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let prefix = dir.path().display().to_string();
    let yml = config
        .yml
        .replace("{echo}", &echo.to_string())
        .replace("{dir}", &prefix);
    std::fs::write(dir.path().join("kong.yml"), yml).unwrap();
    let mut conf = format!(
        "prefix = {prefix}\nproxy_listen = {addr}\ndev_echo_upstream_listen = {echo}\n\
         declarative_config = kong.yml\nplugins = bundled,{names}\npluginserver_names = {names}\n",
        names = config.plugins.join(",")
    );
    for p in config.plugins {
        let exe = example(p);
        let key = p.replace('-', "_");
        conf.push_str(&format!(
            "pluginserver_{key}_start_cmd = {exe} -kong-prefix {prefix}\npluginserver_{key}_query_cmd = {exe} -dump\n",
            exe = exe.display()
        ));
    }
    conf.push_str(config.extra_conf);
    conf.push('\n');
    let path = dir.path().join("kong.conf");
    std::fs::write(&path, conf).unwrap();
    ((dir, addr, echo), path)
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// The status.
    pub status: u16,
    /// The headers (lower-case names; repeated headers joined with ", ").
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Resp {
    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one request with hyper's client.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("the gateway answers within 30 s")
        .expect("the request succeeds");
    let status = res.status().as_u16();
    let mut out = BTreeMap::new();
    for (k, v) in res.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        out.entry(k.as_str().to_owned())
            .and_modify(|e: &mut String| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Resp {
        status,
        headers: out,
        body,
    }
}
