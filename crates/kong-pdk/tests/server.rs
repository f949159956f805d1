//! The server over a real Unix socket, driven by the Kong-side driver.

use std::time::Duration;

use kong_pdk::server::Server;
use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, EventEnd, Reply, TestServer};
use prost::Message;
use serde::Deserialize;
use tokio::sync::oneshot;

#[derive(Debug, Deserialize, Schema)]
struct Probe {
    #[kong(default = "hello")]
    mode: String,
    greeting: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[kong_pdk::plugin]
impl Plugin for Probe {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        match self.mode.as_str() {
            "hello" => {
                let host = kong.request().get_header("host").await?;
                let greeting = self.greeting.as_deref().unwrap_or("hi");
                kong.response()
                    .set_header("x-hello", &format!("{greeting} {host}"))
                    .await?;
                if !self.tags.is_empty() {
                    kong.response()
                        .set_header("x-tags", &self.tags.join(","))
                        .await?;
                }
            }
            "error" => return Err("the plugin says no".into()),
            "panic" => panic!("handler exploded"),
            "exit" => {
                kong.response()
                    .exit(403, b"denied", [("X-Why", "because"), ("X-Why", "twice")])
                    .await?;
                kong.response().set_header("x-after-exit", "never").await?;
            }
            "slow" => tokio::time::sleep(Duration::from_secs(30)).await,
            "two-calls" => {
                let method = kong.request().get_method().await?;
                let path = kong.request().get_path().await?;
                kong.response()
                    .set_header("x-seen", &format!("{method} {path}"))
                    .await?;
            }
            other => return Err(format!("unknown mode {other}").into()),
        }
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        if self.mode == "error" {
            return Err("log failed".into());
        }
        let record = kong.log().serialize().await?;
        kong.log().notice(format!("record {record}")).await?;
        Ok(())
    }
}

/// The in-process server plus this file's shortcuts.
struct Running(TestServer);

impl Running {
    async fn start(server: Server<Probe>) -> Running {
        Running(TestServer::start(server).await)
    }

    async fn default() -> Running {
        Running::start(Server::<Probe>::new("1.2.3", 10).name("probe")).await
    }

    fn socket(&self) -> &std::path::Path {
        self.0.socket()
    }

    async fn connect(&self) -> Connection {
        self.0.connect().await
    }

    /// Starts an instance with a Kong-shaped config and returns its id.
    async fn instance(&self, seq: i64, config: &str) -> i32 {
        let mut conn = self.connect().await;
        let json = kong_config(seq, config);
        conn.start_instance("probe", &json)
            .await
            .unwrap()
            .expect("instance starts")
            .instance_id
    }

    async fn stop(self) {
        let socket = self.socket().to_owned();
        self.0.stop().await.unwrap();
        assert!(!socket.exists(), "socket removed on shutdown");
    }
}

/// A config JSON the way Kong sends it: extra keys, nulls, scrambled order.
fn kong_config(seq: i64, fields: &str) -> String {
    let sep = if fields.is_empty() { "" } else { "," };
    format!(
        r#"{{"__key__":"plugins:probe:::::ws","route_id":null,"service_id":null,"consumer_id":null,{fields}{sep}"__seq__":{seq},"__plugin_id":"718280b4","plugin_instance_name":null,"__ws_id":"f43447a5"}}"#
    )
}

fn string_reply(s: &str) -> Reply {
    Reply::message(&pb::Str { v: s.into() })
}

fn answer_hello(call: &Call) -> Reply {
    match call.method.as_str() {
        "kong.request.get_header" => string_reply("example.com"),
        "kong.request.get_method" => string_reply("GET"),
        "kong.request.get_path" => string_reply("/p"),
        "kong.log.serialize" => string_reply(r#"{"a":1}"#),
        _ => Reply::empty(),
    }
}

#[tokio::test]
async fn start_instance_accepts_kong_shaped_config_and_uses_seq_as_id() {
    let server = Running::default().await;
    let mut conn = server.connect().await;
    conn.set_sequence(2);
    let json = kong_config(7, r#""greeting":null,"mode":"hello","tags":[]"#);
    let status = conn.start_instance("probe", &json).await.unwrap().unwrap();
    assert_eq!(
        conn.sequence(),
        2,
        "sequence echoed (checked by the driver)"
    );
    assert_eq!(status.name, "probe");
    assert_eq!(status.instance_id, 7);
    assert!(status.started_at > 1_600_000_000);

    let again = conn.instance_status_of(7).await.unwrap().unwrap();
    assert_eq!(again.instance_id, 7);
    let closed = conn.close_instance(7).await.unwrap().unwrap();
    assert_eq!(closed.instance_id, 7);
    assert!(conn.instance_status_of(7).await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn defaults_apply_when_kong_omits_or_nulls_fields() {
    let server = Running::default().await;
    // `mode` missing: its #[kong(default)] is Kong's job, but serde must not
    // choke on the nulls and extra keys around it.
    let mut conn = server.connect().await;
    let refused = conn
        .start_instance("probe", &kong_config(1, r#""greeting":null"#))
        .await
        .unwrap();
    assert!(
        refused.is_none(),
        "a required field is missing: start fails"
    );
    let id = server
        .instance(1, r#""mode":"hello","greeting":null"#)
        .await;
    assert_eq!(id, 1);
    server.stop().await;
}

#[tokio::test]
async fn arrays_in_the_config_reach_the_handler() {
    let server = Running::default().await;
    let id = server
        .instance(5, r#""mode":"hello","tags":["a","b"],"greeting":null"#)
        .await;
    let mut conn = server.connect().await;
    let result = conn.handle_event(id, "access", answer_hello).await.unwrap();
    // The call layer sends the two set_header calls as one set_headers.
    assert_eq!(result.calls.len(), 2);
    assert_eq!(result.calls[1].method, "kong.response.set_headers");
    let headers = result.calls[1].decode::<pb::Struct>();
    assert_eq!(
        headers.fields["x-tags"].kind,
        Some(pb::ValueKind::StringValue("a,b".into()))
    );
    assert_eq!(
        headers.fields["x-hello"].kind,
        Some(pb::ValueKind::StringValue("hi example.com".into()))
    );
    server.stop().await;
}

#[tokio::test]
async fn seq_zero_gets_a_server_chosen_id() {
    let server = Running::default().await;
    let a = server.instance(0, r#""mode":"hello""#).await;
    let b = server.instance(0, r#""mode":"hello""#).await;
    assert_ne!(a, b);
    assert!(a > 0 && b > 0);
    server.stop().await;
}

#[tokio::test]
async fn plugin_names_and_info() {
    let server = Running::default().await;
    let mut conn = server.connect().await;
    let ret = conn
        .rpc(pb::rpc_call::Call::CmdGetPluginNames(
            pb::CmdGetPluginNames {},
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ret.r#return,
        Some(pb::rpc_return::Return::PluginNames(pb::PluginNames {
            names: vec!["probe".into()]
        }))
    );
    let ret = conn
        .rpc(pb::rpc_call::Call::CmdGetPluginInfo(pb::CmdGetPluginInfo {
            name: "probe".into(),
        }))
        .await
        .unwrap()
        .unwrap();
    let Some(pb::rpc_return::Return::PluginInfo(info)) = ret.r#return else {
        panic!("no plugin info: {ret:?}");
    };
    assert_eq!(info.phases, ["access", "log"]);
    assert_eq!(info.version, "1.2.3");
    assert_eq!(info.priority, 10);
    let schema: serde_json::Value = serde_json::from_str(&info.schema).unwrap();
    assert_eq!(schema["name"], "probe");
    assert_eq!(schema["fields"][0]["config"]["type"], "record");
    server.stop().await;
}

#[tokio::test]
async fn event_round_trip_echoes_the_sequence() {
    let server = Running::default().await;
    let id = server
        .instance(3, r#""mode":"hello","greeting":"hey""#)
        .await;
    let mut conn = server.connect().await;
    conn.set_sequence(40);
    let result = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(
        result.methods(),
        ["kong.request.get_header", "kong.response.set_header"]
    );
    assert_eq!(result.calls[0].decode::<pb::Str>().v, "host");
    let kv = result.calls[1].decode::<pb::Kv>();
    assert_eq!(kv.k, "x-hello");
    assert_eq!(
        kv.v.unwrap().kind,
        Some(pb::ValueKind::StringValue("hey example.com".into()))
    );
    // The same connection serves the next event (Kong's keepalive pool).
    let again = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_eq!(again.end, EventEnd::Returned);
    assert_eq!(conn.sequence(), 41);
    server.stop().await;
}

#[tokio::test]
async fn empty_arguments_are_zero_length_frames() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"two-calls""#).await;
    let mut conn = server.connect().await;
    let result = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_eq!(
        result.methods(),
        [
            "kong.request.get_method",
            "kong.request.get_path",
            "kong.response.set_header"
        ]
    );
    assert!(result.calls[0].args.is_empty());
    assert!(result.calls[1].args.is_empty());
    let kv = result.calls[2].decode::<pb::Kv>();
    assert_eq!(
        kv.v.unwrap().kind,
        Some(pb::ValueKind::StringValue("GET /p".into()))
    );
    server.stop().await;
}

#[tokio::test]
async fn nil_answers_read_as_empty_values() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"hello""#).await;
    let mut conn = server.connect().await;
    let result = conn
        .handle_event(id, "access", |_| Reply::empty())
        .await
        .unwrap();
    let kv = result.calls[1].decode::<pb::Kv>();
    assert_eq!(
        kv.v.unwrap().kind,
        Some(pb::ValueKind::StringValue("hi ".into()))
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_instance_closes_the_connection() {
    let server = Running::default().await;
    let mut conn = server.connect().await;
    let result = conn.handle_event(99, "access", answer_hello).await.unwrap();
    assert_eq!(result.end, EventEnd::ServerClosed);
    assert!(result.calls.is_empty());
    // The server still serves.
    let id = server.instance(1, r#""mode":"hello""#).await;
    let mut conn = server.connect().await;
    let ok = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_eq!(ok.end, EventEnd::Returned);
    server.stop().await;
}

#[tokio::test]
async fn unknown_event_name_closes_the_connection() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"hello""#).await;
    let mut conn = server.connect().await;
    let result = conn
        .handle_event(id, "header_filter", answer_hello)
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::ServerClosed);
    server.stop().await;
}

#[tokio::test]
async fn a_phase_the_plugin_does_not_handle_just_ends() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"hello""#).await;
    let mut conn = server.connect().await;
    let result = conn
        .handle_event(id, "rewrite", answer_hello)
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    assert!(result.calls.is_empty());
    server.stop().await;
}

fn assert_500(result: &kong_pdk_test::EventResult, why: &str) {
    assert_eq!(result.methods(), ["kong.log.err", "kong.response.exit"]);
    let logged = result.calls[0].decode::<pb::ListValue>();
    let Some(pb::ValueKind::StringValue(text)) = &logged.values[0].kind else {
        panic!("log argument is not a string: {logged:?}");
    };
    assert!(text.contains(why), "{text:?} should mention {why:?}");
    let EventEnd::Exit(exit) = &result.end else {
        panic!("no exit: {:?}", result.end);
    };
    assert_eq!(exit.status, 500);
    assert_eq!(exit.body, br#"{"message":"An unexpected error occurred"}"#);
    let headers = exit.headers.as_ref().unwrap();
    assert_eq!(
        headers.fields["Content-Type"].kind,
        Some(pb::ValueKind::StringValue("application/json".into()))
    );
}

#[tokio::test]
async fn handler_error_asks_kong_for_500_and_keeps_serving() {
    let server = Running::default().await;
    let failing = server.instance(1, r#""mode":"error""#).await;
    let fine = server.instance(2, r#""mode":"hello""#).await;
    let mut conn = server.connect().await;
    let result = conn
        .handle_event(failing, "access", answer_hello)
        .await
        .unwrap();
    assert_500(&result, "access handler failed: the plugin says no");
    let mut conn = server.connect().await;
    let ok = conn
        .handle_event(fine, "access", answer_hello)
        .await
        .unwrap();
    assert_eq!(ok.end, EventEnd::Returned);
    server.stop().await;
}

#[tokio::test]
async fn handler_panic_asks_kong_for_500_and_keeps_serving() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"panic""#).await;
    for _ in 0..3 {
        let mut conn = server.connect().await;
        let result = conn.handle_event(id, "access", answer_hello).await.unwrap();
        assert_500(&result, "access handler panicked: handler exploded");
    }
    server.stop().await;
}

#[tokio::test]
async fn log_phase_errors_are_only_logged() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"error""#).await;
    let mut conn = server.connect().await;
    let result = conn.handle_event(id, "log", answer_hello).await.unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(result.methods(), ["kong.log.err"]);
    server.stop().await;
}

#[tokio::test]
async fn exit_is_terminal() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"exit""#).await;
    let mut conn = server.connect().await;
    let result = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_eq!(result.methods(), ["kong.response.exit"]);
    let EventEnd::Exit(exit) = result.end else {
        panic!("no exit")
    };
    assert_eq!(exit.status, 403);
    assert_eq!(exit.body, b"denied");
    assert_eq!(
        exit.headers.unwrap().fields["X-Why"].kind,
        Some(pb::ValueKind::ListValue(pb::ListValue {
            values: vec![
                pb::Value {
                    kind: Some(pb::ValueKind::StringValue("because".into()))
                },
                pb::Value {
                    kind: Some(pb::ValueKind::StringValue("twice".into()))
                },
            ]
        }))
    );
    // The log phase runs on a new connection, as with Kong.
    let mut conn = server.connect().await;
    let log = conn.handle_event(id, "log", answer_hello).await.unwrap();
    assert_eq!(log.end, EventEnd::Returned);
    server.stop().await;
}

#[tokio::test]
async fn exit_waits_silently_until_kong_closes() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"exit""#).await;
    let mut conn = server.connect().await;
    let seq = conn.send_event(id, "access").await.unwrap();
    assert!(seq > 0);
    assert_eq!(
        conn.read_frame().await.unwrap().unwrap(),
        b"kong.response.exit"
    );
    let args = conn.read_frame().await.unwrap().unwrap();
    assert_eq!(pb::ExitArgs::decode(&args[..]).unwrap().status, 403);
    // Nothing more comes: no end frame, no RpcReturn.
    let more = tokio::time::timeout(Duration::from_millis(300), conn.read_frame()).await;
    assert!(more.is_err(), "server wrote after exit: {more:?}");
    server.stop().await;
}

#[tokio::test]
async fn rejected_call_fails_the_handler_without_hurting_the_server() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"two-calls""#).await;
    let mut conn = server.connect().await;
    let result = conn
        .handle_event(id, "access", |call| {
            if call.method == "kong.request.get_path" {
                Reply::Reject
            } else {
                answer_hello(call)
            }
        })
        .await
        .unwrap();
    assert_eq!(
        result.end,
        EventEnd::Rejected("kong.request.get_path".into())
    );
    let mut conn = server.connect().await;
    let ok = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_eq!(ok.end, EventEnd::Returned);
    server.stop().await;
}

#[tokio::test]
async fn slow_handler_is_cancelled_with_500() {
    let server = Running::start(
        Server::<Probe>::new("1.2.3", 10)
            .name("probe")
            .handler_timeout(Duration::from_millis(200)),
    )
    .await;
    let id = server.instance(1, r#""mode":"slow""#).await;
    let mut conn = server.connect().await;
    let result = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_500(&result, "did not finish within 200ms");
    server.stop().await;
}

#[tokio::test]
async fn config_of_the_wrong_type_fails_the_start() {
    let server = Running::default().await;
    let mut conn = server.connect().await;
    let refused = conn
        .start_instance("probe", &kong_config(1, r#""mode":42"#))
        .await
        .unwrap();
    assert!(refused.is_none());
    let mut conn = server.connect().await;
    let not_json = conn.start_instance("probe", "{not json").await.unwrap();
    assert!(not_json.is_none());
    let mut conn = server.connect().await;
    let other_plugin = conn
        .start_instance("someone-else", &kong_config(1, r#""mode":"hello""#))
        .await
        .unwrap();
    assert!(other_plugin.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"hello""#).await;
    let mut tasks = Vec::new();
    for n in 0..64 {
        let socket = server.socket().to_owned();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&socket).await.unwrap();
            conn.set_sequence(1000 * n);
            for _ in 0..20 {
                let host = format!("host-{n}");
                let result = conn
                    .handle_event(id, "access", |call| match call.method.as_str() {
                        "kong.request.get_header" => string_reply(&host),
                        _ => Reply::empty(),
                    })
                    .await
                    .unwrap();
                let kv = result.calls[1].decode::<pb::Kv>();
                assert_eq!(
                    kv.v.unwrap().kind,
                    Some(pb::ValueKind::StringValue(format!("hi host-{n}")))
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_an_event_in_flight_finish() {
    let server = Running::default().await;
    let id = server.instance(1, r#""mode":"hello""#).await;
    let mut conn = server.connect().await;
    let seq = conn.send_event(id, "access").await.unwrap();
    assert_eq!(
        conn.read_frame().await.unwrap().unwrap(),
        b"kong.request.get_header"
    );
    conn.read_frame().await.unwrap().unwrap();
    // The server is told to stop while the handler waits for Kong.
    let socket = server.socket().to_owned();
    let stopping = tokio::spawn(server.0.stop());
    // Shutdown has begun once the listener is gone.
    while Connection::connect(&socket).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
    let ret = conn.read_return(seq).await.unwrap().unwrap();
    assert_eq!(ret.sequence, seq);
    stopping.await.unwrap().unwrap();
    assert!(!socket.exists());
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let server = Running::start(
        Server::<Probe>::new("1.2.3", 10)
            .name("probe")
            .max_frame_size(1024),
    )
    .await;
    let mut bad = server.connect().await;
    bad.write_raw(&u32::MAX.to_le_bytes()).await.unwrap();
    assert!(bad.read_frame().await.unwrap().is_none(), "closed");
    let mut garbage = server.connect().await;
    garbage.write_frame(&[0xff, 0xff, 0xff]).await.unwrap();
    assert!(garbage.read_frame().await.unwrap().is_none(), "closed");
    let id = server.instance(1, r#""mode":"hello""#).await;
    let mut conn = server.connect().await;
    let ok = conn.handle_event(id, "access", answer_hello).await.unwrap();
    assert_eq!(ok.end, EventEnd::Returned);
    server.stop().await;
}

#[tokio::test]
async fn stale_socket_file_is_replaced_but_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.socket");
    std::fs::write(&path, b"stale").unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let p = path.clone();
    let first = tokio::spawn(async move {
        Server::<Probe>::new("1.0.0", 1)
            .name("probe")
            .serve_at(&p, async {
                let _ = stopped.await;
            })
            .await
    });
    while Connection::connect(&path).await.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = Server::<Probe>::new("1.0.0", 1)
        .name("probe")
        .serve_at(&path, std::future::ready(()))
        .await;
    let err = second.unwrap_err();
    assert!(err.to_string().contains("already listening"), "{err}");
    stop.send(()).unwrap();
    first.await.unwrap().unwrap();
    assert!(!path.exists());

    let missing = Server::<Probe>::new("1.0.0", 1)
        .serve_at(
            &dir.path().join("nope/probe.socket"),
            std::future::ready(()),
        )
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

/// A config that reads one of Kong's own keys.
#[derive(Debug, Deserialize, Schema)]
struct ReadsRoute {
    #[kong(skip)]
    route_id: Option<String>,
}

#[kong_pdk::plugin]
impl Plugin for ReadsRoute {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let route = self.route_id.as_deref().unwrap_or("none");
        kong.response().set_header("x-route", route).await?;
        Ok(())
    }
}

/// A config that refuses unknown keys.
#[derive(Debug, Deserialize, Schema)]
#[serde(deny_unknown_fields)]
struct Strict {
    name: String,
}

#[kong_pdk::plugin]
impl Plugin for Strict {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        kong.response().set_header("x-name", &self.name).await?;
        Ok(())
    }
}

async fn one_header<P: Plugin>(name: &str, config: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("p.socket");
    let path = socket.clone();
    let name_owned = name.to_owned();
    let server = tokio::spawn(async move {
        Server::<P>::new("1.0.0", 1)
            .name(name_owned)
            .serve_at(&path, tokio::time::sleep(Duration::from_secs(10)))
            .await
    });
    while !socket.exists() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut conn = Connection::connect(&socket).await.unwrap();
    let started = conn.start_instance(name, config).await.unwrap();
    let value = match started {
        None => None,
        Some(status) => {
            let result = conn
                .handle_event(status.instance_id, "access", |_| Reply::empty())
                .await
                .unwrap();
            let kv = result.calls[0].decode::<pb::Kv>();
            match kv.v.unwrap().kind {
                Some(pb::ValueKind::StringValue(s)) => Some(s),
                other => panic!("{other:?}"),
            }
        }
    };
    server.abort();
    value
}

#[tokio::test]
async fn a_config_may_read_kongs_own_keys() {
    let got = one_header::<ReadsRoute>("r", r#"{"__seq__":1,"route_id":"r-1"}"#).await;
    assert_eq!(got.as_deref(), Some("r-1"));
    let global = one_header::<ReadsRoute>("r", r#"{"__seq__":1,"route_id":null}"#).await;
    assert_eq!(global.as_deref(), Some("none"));
}

#[tokio::test]
async fn deny_unknown_fields_configs_still_start() {
    let got = one_header::<Strict>(
        "s",
        r#"{"name":"n","__seq__":1,"__key__":"k","__plugin_id":"p","__ws_id":"w","route_id":null}"#,
    )
    .await;
    assert_eq!(got.as_deref(), Some("n"));
    let refused = one_header::<Strict>("s", r#"{"name":"n","extra":1,"__seq__":1}"#).await;
    assert_eq!(refused, None, "a key that is not Kong's is still refused");
}

#[tokio::test]
async fn socket_is_owner_only_by_default_and_configurable() {
    use std::os::unix::fs::PermissionsExt;
    let server = Running::default().await;
    let mode = std::fs::metadata(server.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    server.stop().await;
    let shared = Running::start(
        Server::<Probe>::new("1.0.0", 1)
            .name("probe")
            .socket_mode(0o660),
    )
    .await;
    let mode = std::fs::metadata(shared.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    let leftovers: Vec<_> = std::fs::read_dir(shared.socket().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary socket left: {leftovers:?}"
    );
    shared.stop().await;
}

static LOG_PHASE_ERROR: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Reads the method in the log phase, which Kong refuses.
#[derive(Debug, Deserialize, Schema)]
struct LogReadsMethod {}

#[kong_pdk::plugin]
impl Plugin for LogReadsMethod {
    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let err = kong.request().get_method().await.unwrap_err();
        *LOG_PHASE_ERROR.lock().unwrap() = err.to_string();
        Err(err.into())
    }
}

#[tokio::test]
async fn a_call_kong_refuses_in_the_log_phase_explains_what_to_do() {
    // With the call layer off, the call reaches Kong, which refuses it.
    let server = TestServer::start(
        Server::<LogReadsMethod>::new("1.0.0", 1)
            .name("lrm")
            .call_layer(false),
    )
    .await;
    let mut conn = server.connect().await;
    conn.start_instance("lrm", r#"{"__seq__":1}"#)
        .await
        .unwrap()
        .unwrap();
    let result = conn
        .handle_event(1, "log", |_| Reply::Reject)
        .await
        .unwrap();
    assert_eq!(
        result.end,
        EventEnd::Rejected("kong.request.get_method".into())
    );
    server.stop().await.unwrap();
    let message = LOG_PHASE_ERROR.lock().unwrap().clone();
    assert!(
        message.contains("kong.request.get_method in the log phase"),
        "{message}"
    );
    assert!(message.contains("kong.ctx().set_shared"), "{message}");
}
