//! End to end: the gateway binary with the built example plugins, a real
//! HTTP client, and the built-in echo upstream.

mod common;

use std::time::Duration;

use common::{Gateway, send};

const HELLO_YML: &str = r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}/base
    routes:
      - name: hello
        paths: [/hello]
        plugins:
          - name: rust-hello
            config: { message: tests }
"#;

#[tokio::test]
async fn proxied_requests_get_the_plugins_changes_and_kongs_headers() {
    let gw = Gateway::start(&["rust-hello"], HELLO_YML);
    let res = gw.get("/hello/x?y=1", &[("x-in", "a")]).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    assert_eq!(
        res.header("x-hello-from-rust"),
        Some(format!("Rust says tests to {}", gw.addr).as_str())
    );
    assert_eq!(res.header("via"), Some("1.1 kong-pdk-dev"));
    for h in ["x-kong-upstream-latency", "x-kong-proxy-latency"] {
        let v = res
            .header(h)
            .unwrap_or_else(|| panic!("{h} missing: {res:?}"));
        assert!(v.parse::<u64>().is_ok(), "{h}: {v}");
    }
    assert!(res.header("x-kong-request-id").is_some());
    assert!(res.header("x-kong-response-latency").is_none());
    let echo = res.json();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/base/x", "strip_path then the service path");
    assert_eq!(echo["query"], "y=1");
    assert_eq!(echo["headers"]["x-in"], "a");
    assert_eq!(echo["headers"]["host"], gw.echo.to_string());
    assert_eq!(echo["headers"]["x-forwarded-prefix"], "/hello");
    assert_eq!(echo["headers"]["x-forwarded-path"], "/hello/x");
    assert_eq!(echo["headers"]["x-real-ip"], "127.0.0.1");

    // One access log line per request.
    assert!(
        gw.wait_for("\"GET /hello/x?y=1 HTTP/1.1\" 200", Duration::from_secs(5)),
        "{}",
        gw.log()
    );

    // No route: Kong's 404, produced by the gateway itself.
    let res = gw.get("/nowhere", &[]).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["message"], "no Route matched with those values");
    assert!(res.header("x-kong-response-latency").is_some());
    assert!(res.header("via").is_none());
}

#[tokio::test]
async fn key_auth_exits_with_401_and_plugins_run_by_priority() {
    // rust-key-auth (priority 1250) runs before rust-request-transformer
    // (801), which removes the key header: in the other order every request
    // would be refused. rust-hello (1) comes last.
    let gw = Gateway::start(
        &["rust-key-auth", "rust-request-transformer", "rust-hello"],
        r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: api
        paths: [/api]
        plugins:
          - name: rust-hello
          - name: rust-request-transformer
            config:
              remove_headers: [apikey]
              set_headers: ["x-seen-by:request-transformer"]
          - name: rust-key-auth
            config:
              hide_credentials: false
              keys:
                - { key: secret-key-1, consumer: ann }
consumers:
  - username: ann
"#,
    );
    let res = gw.get("/api", &[]).await;
    assert_eq!(res.status, 401, "{}", gw.log());
    assert_eq!(res.json()["message"], "No API key found in request");
    assert_eq!(res.header("www-authenticate"), Some(r#"Key realm="kong""#));
    assert!(res.header("x-kong-response-latency").is_some());
    assert!(
        res.header("server")
            .is_some_and(|s| s.starts_with("kong-pdk-dev/"))
    );
    assert!(
        res.header("x-hello-from-rust").is_none(),
        "the exit stops later plugins"
    );

    let res = gw.get("/api", &[("x-api-key", "wrong-key")]).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.json()["message"], "Invalid authentication credentials");

    let res = gw.get("/api", &[("apikey", "secret-key-1")]).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    let echo = res.json();
    assert_eq!(echo["headers"]["x-consumer-username"], "ann");
    assert_eq!(echo["headers"]["x-seen-by"], "request-transformer");
    assert!(echo["headers"].get("apikey").is_none(), "{echo}");
    assert!(res.header("x-hello-from-rust").is_some());
}

#[tokio::test]
async fn api_auth_sets_upstream_headers_and_logs_request_getters_in_the_log_phase() {
    let gw = Gateway::start(
        &["rust-api-auth"],
        r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: api
        paths: [/api]
        plugins:
          - name: rust-api-auth
            config:
              keys:
                - { key: key-of-billing, client: billing, tenant: acme }
"#,
    );
    let res = gw.get("/api", &[]).await;
    assert_eq!(res.status, 401, "{}", gw.log());
    assert_eq!(res.json()["message"], "No credentials found in request");

    let auth = [
        ("authorization", "Bearer key-of-billing"),
        ("x-request-id", "req-1"),
        ("user-agent", "test/1"),
    ];
    let res = gw.get("/api/orders?page=2", &auth).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    assert_eq!(res.header("x-authenticated-as"), Some("billing"));
    let echo = res.json();
    assert_eq!(echo["headers"]["x-client-id"], "billing");
    assert_eq!(echo["headers"]["x-client-tenant"], "acme");
    assert_eq!(echo["headers"]["x-client-agent"], "test/1");
    assert_eq!(echo["headers"]["x-request-id"], "req-1");
    // The method, query and address come from kong.log.serialize(): Kong
    // refuses those getters in the log phase.
    assert!(
        gw.wait_for(
            "[info] [rust-api-auth] client=billing GET /api/orders?page=2 from 127.0.0.1 -> 200",
            Duration::from_secs(10)
        ),
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn request_transformer_changes_what_the_upstream_receives() {
    // The service points at a closed port: only set_target reaches the echo.
    let closed = common::free_port();
    let yml = format!(
        r#"
_format_version: "3.0"
services:
  - name: nowhere
    url: http://127.0.0.1:{closed}/svc
    routes:
      - name: rt
        paths: [/rt]
        plugins:
          - name: rust-request-transformer
            config:
              path: /replaced
              method: PUT
              set_headers: ["x-added: yes"]
              remove_headers: [x-gone]
              add_query: {{ added: "1" }}
              remove_query: [drop]
              body: new body
              target: {{ host: 127.0.0.1, port: ECHO_PORT }}
      - name: plain
        paths: [/plain]
"#
    );
    // The echo port is known only once the gateway is configured.
    let (dir, conf) = common::write_conf(&common::Config {
        plugins: &["rust-request-transformer"],
        yml: &yml,
        extra_conf: "",
    });
    let kong_yml = dir.0.path().join("kong.yml");
    let text = std::fs::read_to_string(&kong_yml).unwrap();
    std::fs::write(
        &kong_yml,
        text.replace("ECHO_PORT", &dir.2.port().to_string()),
    )
    .unwrap();
    let gw = Gateway::spawn(dir, &conf, &[]);
    assert!(
        gw.wait_for("kong-pdk-dev ready", Duration::from_secs(60)),
        "{}",
        gw.log()
    );

    let res = send(
        "POST",
        &gw.url("/rt/a?drop=1&keep=2"),
        &[("x-gone", "1")],
        "old body",
    )
    .await;
    assert_eq!(res.status, 200, "{}", gw.log());
    let echo = res.json();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/replaced");
    assert_eq!(echo["query"], "added=1&keep=2");
    assert_eq!(echo["headers"]["x-added"], "yes");
    assert!(echo["headers"].get("x-gone").is_none());
    assert_eq!(echo["body"], "new body");
    assert_eq!(echo["headers"]["content-length"], "8");

    // Without the plugin the closed port gives Kong's 502.
    let res = gw.get("/plain", &[]).await;
    assert_eq!(res.status, 502);
    assert_eq!(
        res.json()["message"],
        "An invalid response was received from the upstream server"
    );
}

#[tokio::test]
async fn response_phase_gets_the_buffered_response_and_replaces_the_body() {
    let gw = Gateway::start(
        &["rust-response-transformer"],
        r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: rt
        paths: [/rt]
        plugins:
          - name: rust-response-transformer
            config:
              add_json: { added: "yes" }
              remove_json: [headers, args]
"#,
    );
    let res = gw.get("/rt/x", &[]).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    assert_eq!(res.header("x-upstream-status"), Some("200"));
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = res.json();
    assert_eq!(body["added"], "yes");
    assert_eq!(body["path"], "/x");
    assert!(
        body.get("headers").is_none() && body.get("args").is_none(),
        "{body}"
    );
    assert_eq!(
        res.header("content-length"),
        Some(res.body.len().to_string().as_str())
    );
}

/// Undoes `Content-Encoding` as an HTTP client does, with the decoders
/// directly (not kong-pdk's wrapper around them).
fn client_decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("valid br");
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

/// The example transformer on gzip and br upstream bodies from 0 bytes to
/// 8 MiB: the client gets the edited JSON in the upstream's coding (or
/// identity with `decompress`), with a Content-Length that matches.
#[tokio::test]
async fn compressed_upstream_bodies_are_edited_and_arrive_decodable() {
    let gw = Gateway::start(
        &["rust-response-transformer"],
        r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: same-coding
        paths: [/same]
        plugins:
          - name: rust-response-transformer
            config:
              add_json: { added: "yes" }
              remove_json: [headers]
      - name: identity
        paths: [/identity]
        plugins:
          - name: rust-response-transformer
            config:
              add_json: { added: "yes" }
              remove_json: [headers]
              decompress: true
"#,
    );
    for encoding in ["gzip", "br"] {
        for (route, sent_as) in [("/same", Some(encoding)), ("/identity", None)] {
            for pad in [0usize, 1, 64 * 1024, 8 * 1024 * 1024] {
                let pad_s = pad.to_string();
                let res = gw
                    .get(
                        route,
                        &[
                            ("x-echo-content-encoding", encoding),
                            ("x-echo-pad", &pad_s),
                        ],
                    )
                    .await;
                let what = format!("{encoding} {route} pad {pad}");
                assert_eq!(res.status, 200, "{what}: {}", gw.log());
                assert_eq!(res.header("content-encoding"), sent_as, "{what}");
                assert_eq!(res.header("transfer-encoding"), None, "{what}");
                assert_eq!(
                    res.header("content-length"),
                    Some(res.body.len().to_string().as_str()),
                    "{what}"
                );
                let body: serde_json::Value = serde_json::from_slice(&client_decode(
                    res.header("content-encoding"),
                    &res.body,
                ))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(body["added"], "yes", "{what}");
                assert!(body.get("headers").is_none(), "{what}");
                assert_eq!(body["pad"].as_str().map(str::len), Some(pad), "{what}");
            }
        }
        // An empty compressed body is not JSON: it passes through untouched.
        let res = gw
            .get(
                "/same",
                &[("x-echo-content-encoding", encoding), ("x-echo-empty", "1")],
            )
            .await;
        assert_eq!(res.status, 200, "{}", gw.log());
        assert_eq!(res.header("content-encoding"), Some(encoding));
        assert_eq!(
            res.header("content-length"),
            Some(res.body.len().to_string().as_str())
        );
        assert!(client_decode(Some(encoding), &res.body).is_empty());
    }
    assert!(!gw.log().contains("disagrees with"), "{}", gw.log());
}

/// `get_body` through the gateway: the example requires body fields, read
/// from a JSON, form or multipart body sent by a real client.
#[tokio::test]
async fn request_bodies_of_each_content_type_are_parsed() {
    let gw = Gateway::start(
        &["rust-request-transformer"],
        r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: orders
        paths: [/orders]
        plugins:
          - name: rust-request-transformer
            config:
              require_body_fields: [sku, quantity]
"#,
    );
    let url = gw.url("/orders");
    let multipart = "--b1\r\nContent-Disposition: form-data; name=\"sku\"\r\n\r\na-1\r\n\
                     --b1\r\nContent-Disposition: form-data; name=\"quantity\"\r\n\r\n2\r\n--b1--\r\n";
    for (content_type, body) in [
        ("application/json", r#"{"sku":"a-1","quantity":2}"#),
        ("application/x-www-form-urlencoded", "sku=a-1&quantity=2"),
        ("multipart/form-data; boundary=b1", multipart),
    ] {
        let res = send("POST", &url, &[("content-type", content_type)], body).await;
        assert_eq!(res.status, 200, "{content_type}: {}", gw.log());
        assert_eq!(
            res.json()["body"],
            body,
            "the upstream got the body as sent"
        );
    }
    let res = send(
        "POST",
        &url,
        &[("content-type", "application/json")],
        r#"{"sku":"a-1"}"#,
    )
    .await;
    assert_eq!(res.status, 400);
    assert_eq!(
        res.json(),
        serde_json::json!({"message": "missing body fields", "fields": ["quantity"]})
    );
    let res = send("POST", &url, &[], "sku=a-1&quantity=2").await;
    assert_eq!(res.status, 400);
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .contains("missing content type"),
        "{:?}",
        res.json()
    );
}

#[tokio::test]
async fn log_phase_runs_after_the_response_on_saved_data() {
    let gw = Gateway::start(
        &["rust-log", "rust-tenant-audit", "rust-key-auth"],
        r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: audit
        paths: [/audit]
        plugins:
          - name: rust-tenant-audit
      - name: locked
        paths: [/locked]
        plugins:
          - name: rust-key-auth
plugins:
  - name: rust-log
    config: { path: "{dir}/requests.log" }
"#,
    );
    let res = gw.get("/audit/x", &[("x-tenant", "blue")]).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    assert_eq!(res.json()["headers"]["x-tenant"], "blue");
    let _ = gw.get("/locked", &[]).await;
    let _ = gw.get("/nowhere", &[]).await;

    // tenant-audit's log phase reads ctx.shared and the response status.
    assert!(
        gw.wait_for(
            "[notice] [rust-tenant-audit] tenant=blue GET /audit/x -> 200",
            Duration::from_secs(10)
        ),
        "{}",
        gw.log()
    );
    // rust-log (global) logs every request, exits and 404s included.
    let path = gw.dir.path().join("requests.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let records: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if records.len() >= 3 || std::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(records.len(), 3, "{}", gw.log());
    let audit = records
        .iter()
        .find(|r| r["request"]["uri"] == "/audit/x")
        .expect("the audit request is logged");
    assert_eq!(audit["response"]["status"], 200);
    assert_eq!(
        audit["tenant"], "blue",
        "set_serialize_value from another plugin's log phase"
    );
    assert_eq!(audit["route"]["name"], "audit");
    assert_eq!(audit["request"]["headers"]["x-tenant"], "blue");
    assert_eq!(audit["response"]["headers"]["via"], "1.1 kong-pdk-dev");
    assert!(audit["latencies"]["request"].is_number());
    let locked = records
        .iter()
        .find(|r| r["request"]["uri"] == "/locked")
        .unwrap();
    assert_eq!(locked["response"]["status"], 401);
    let lost = records
        .iter()
        .find(|r| r["request"]["uri"] == "/nowhere")
        .unwrap();
    assert_eq!(lost["response"]["status"], 404);
    assert!(lost.get("route").is_none(), "{lost}");
}

#[tokio::test]
async fn a_killed_plugin_server_is_restarted_and_the_next_request_succeeds() {
    let gw = Gateway::start(&["rust-hello"], HELLO_YML);
    assert_eq!(gw.get("/hello", &[]).await.status, 200);
    let pid = gw.server_pid("rust-hello").expect("a start line");
    common::signal(pid, "KILL");
    assert!(
        gw.wait_until(Duration::from_secs(10), |log| {
            log.contains("external pluginserver 'rust-hello' terminated: signal 9")
                && log.matches("started pluginserver 'rust-hello'").count() == 2
        }),
        "{}",
        gw.log()
    );
    assert_ne!(gw.server_pid("rust-hello"), Some(pid));
    // The socket may take a moment to appear.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = gw.get("/hello", &[]).await;
        if res.status == 200 {
            assert!(res.header("x-hello-from-rust").is_some());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_externally_restarted_server_gets_instances_again_like_kong_resets_them() {
    // No start_cmd: the test runs the server, as an external process
    // manager would, and restarts it behind the gateway's back. The
    // gateway's cached instance is then unknown to the new server, which
    // closes the connection; the gateway resets and runs the phase again.
    let prefix = tempfile::tempdir().unwrap();
    let exe = common::example("rust-hello");
    let run = || {
        std::process::Command::new(&exe)
            .arg("-kong-prefix")
            .arg(prefix.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let socket = prefix.path().join("rust-hello.socket");
    let wait_socket = || {
        for _ in 0..500 {
            if socket.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no socket");
    };
    let mut server = run();
    wait_socket();
    let (dir, conf) = common::write_conf(&common::Config {
        plugins: &[],
        yml: HELLO_YML,
        extra_conf: &format!(
            "plugins = bundled,rust-hello\npluginserver_names = rust-hello\n\
             pluginserver_rust_hello_socket = {}\npluginserver_rust_hello_query_cmd = {} -dump\n",
            socket.display(),
            exe.display()
        ),
    });
    let gw = Gateway::spawn(dir, &conf, &[]);
    assert!(
        gw.wait_for("kong-pdk-dev ready", Duration::from_secs(60)),
        "{}",
        gw.log()
    );
    assert!(gw.log().contains("assuming external process management"));
    assert_eq!(gw.get("/hello", &[]).await.status, 200, "{}", gw.log());

    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_file(&socket);
    let mut server = run();
    wait_socket();

    let res = gw.get("/hello", &[]).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    assert!(res.header("x-hello-from-rust").is_some());
    // The test reads the gateway's stderr through a pipe: wait for the lines
    // to arrive rather than racing them.
    let started = "started instance 1 of plugin 'rust-hello'";
    let arrived = gw.wait_until(Duration::from_secs(10), |log| {
        log.contains("resetting instances and running the phase again")
            && log.matches(started).count() >= 2
    });
    let log = gw.log();
    assert!(arrived, "{log}");
    assert_eq!(log.matches(started).count(), 2, "{log}");
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test]
async fn a_plugin_that_refuses_its_config_gives_kongs_500() {
    // The schema accepts any string; the plugin's init refuses "no-colon".
    let gw = Gateway::start(
        &["rust-request-transformer"],
        r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: bad
        paths: [/bad]
        plugins:
          - name: rust-request-transformer
            config: { set_headers: [no-colon] }
"#,
    );
    let res = gw.get("/bad", &[]).await;
    assert_eq!(res.status, 500, "{}", gw.log());
    assert_eq!(
        res.json(),
        serde_json::json!({"message": "An unexpected error occurred"})
    );
    // The gateway logs after answering; give the line a moment.
    assert!(
        gw.wait_for("starting instance", std::time::Duration::from_secs(5)),
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn editing_kong_yml_replaces_the_instances() {
    let gw = Gateway::start(&["rust-hello"], HELLO_YML);
    let res = gw.get("/hello", &[]).await;
    assert!(
        res.header("x-hello-from-rust")
            .unwrap()
            .starts_with("Rust says tests")
    );
    let path = gw.dir.path().join("kong.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("message: tests", "message: reloaded")).unwrap();
    assert!(
        gw.wait_for("reloaded: 1 routes, 1 plugins", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    let res = gw.get("/hello", &[]).await;
    assert!(
        res.header("x-hello-from-rust")
            .unwrap()
            .starts_with("Rust says reloaded"),
        "{res:?}"
    );
    // The new instance has __seq__ 2; the replaced one is closed.
    assert!(
        gw.wait_for("closed instance 1", Duration::from_secs(5)),
        "{}",
        gw.log()
    );

    // An invalid edit keeps the running configuration.
    std::fs::write(
        &path,
        "_format_version: \"3.0\"\nroutes: [{paths: [nope]}]\n",
    )
    .unwrap();
    assert!(
        gw.wait_for("not reloaded", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    assert_eq!(gw.get("/hello", &[]).await.status, 200);
}

#[tokio::test]
async fn sigterm_stops_the_gateway_and_its_plugin_servers() {
    let mut gw = Gateway::start(&["rust-hello"], HELLO_YML);
    assert_eq!(gw.get("/hello", &[]).await.status, 200);
    assert_eq!(gw.stop(), Some(0), "{}", gw.log());
    let log = gw.log();
    assert!(
        log.contains("successfully stopped pluginserver 'rust-hello'"),
        "{log}"
    );
    assert!(!gw.dir.path().join("rust-hello.socket").exists(), "{log}");
}

/// A MsgPack:1 plugin beside a ProtoBuf:1 one: the gateway speaks each
/// plugin's protocol, as its -dump says, and models Kong's env vault.
#[tokio::test]
async fn a_msgpack_plugin_runs_beside_protobuf_ones() {
    let config = common::Config {
        plugins: &["rust-upstream-policy", "rust-log"],
        yml: r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: policy
        paths: [/policy]
        plugins:
          - name: rust-upstream-policy
            config:
              retries: 3
              token_reference: "{vault://env/gateway-test-token}"
          - name: rust-log
            config:
              path: "{dir}/requests.log"
      - name: unresolved
        paths: [/unresolved]
        plugins:
          - name: rust-upstream-policy
            config:
              token_reference: "{vault://env/gateway-test-absent}"
"#,
        extra_conf: "",
    };
    let (dir, conf) = common::write_conf(&config);
    let log_path = dir.0.path().join("requests.log");
    let gw = Gateway::spawn(dir, &conf, &[("GATEWAY_TEST_TOKEN", "s3cr3t")]);
    gw.wait_ready();

    let res = gw.get("/policy", &[]).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    assert_eq!(res.json()["headers"]["authorization"], "Bearer s3cr3t");
    // set_serialize_value (mode "add") reached rust-log's record.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log record:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        record["upstream_policy"],
        serde_json::json!({"timeouts": [2000, 10000, 10000], "retries": 3})
    );

    let res = gw.get("/unresolved", &[]).await;
    assert_eq!(res.status, 503, "{}", gw.log());
    assert_eq!(res.json()["message"], "upstream credential unavailable");
    // The plugin's stderr reaches the gateway's log through a pipe, so
    // the line may land just after the response does.
    assert!(
        gw.wait_for(
            "cannot resolve {vault://env/gateway-test-absent}",
            Duration::from_secs(10)
        ),
        "{}",
        gw.log()
    );
}
