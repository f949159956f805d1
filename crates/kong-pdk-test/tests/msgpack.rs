//! MsgPack:1 through the real server and socket: the typed PDK gives the
//! same Rust results as over ProtoBuf:1 for the same Kong answers, the
//! MsgPack-only calls send Kong's Lua calls, and `kong.call` under
//! ProtoBuf:1 fails at once.

use std::sync::Mutex;

use kong_pdk::pdk::SerializeMode;
use kong_pdk::server::Server;
use kong_pdk::{Kong, PhaseResult, Plugin, Protocol, Schema};
use kong_pdk_proto as pb;
use kong_pdk_test::rmpv::Value as Mp;
use kong_pdk_test::{
    Call, Connection, EventEnd, LogLevel, MpCall, MpEnd, MpReply, MsgPackConnection, Reply,
    Request, TestEnv, TestServer,
};
use serde::Deserialize;
use serde_json::json;

/// What each plugin's typed calls returned, by plugin.
static SEEN: Mutex<Vec<(&'static str, Vec<String>)>> = Mutex::new(Vec::new());

/// Typed getters, each result written down with `{:?}`.
async fn typed_getters(kong: &mut Kong) -> Result<Vec<String>, kong_pdk::BoxError> {
    let mut out = Vec::new();
    out.push(format!("{:?}", kong.request().get_header("host").await?));
    out.push(format!("{:?}", kong.request().get_header("absent").await?));
    out.push(format!("{:?}", kong.request().get_headers().await?));
    out.push(format!("{:?}", kong.request().get_query().await?));
    out.push(format!("{:?}", kong.request().get_query_arg("flag").await?));
    out.push(format!("{:?}", kong.request().get_method().await?));
    out.push(format!("{:?}", kong.request().get_port().await?));
    out.push(format!("{:?}", kong.request().get_http_version().await?));
    let body = kong
        .request()
        .get_raw_body()
        .await?
        .into_bytes(1024)
        .await?;
    out.push(format!("{body:?}"));
    out.push(format!("{:?}", kong.client().get_ip().await?));
    out.push(format!("{:?}", kong.client().get_consumer().await?));
    out.push(format!("{:?}", kong.router().get_route().await?));
    let shared: Option<serde_json::Value> = kong.ctx().get_shared("tenant").await?;
    out.push(format!("{shared:?}"));
    let missing: Option<String> = kong.ctx().get_shared("missing").await?;
    out.push(format!("{missing:?}"));
    out.push(format!("{:?}", kong.nginx().get_var("request_id").await?));
    out.push(format!("{:?}", kong.nginx().req_start_time().await?));
    out.push(format!("{:?}", kong.ip().is_trusted("10.0.0.1").await?));
    out.push(format!("{:?}", kong.node().get_memory_stats().await?));
    Ok(out)
}

macro_rules! getters_plugin {
    ($name:ident, $protocol:expr, $label:literal) => {
        #[derive(Deserialize, Schema)]
        struct $name {}

        #[kong_pdk::plugin]
        impl Plugin for $name {
            const PROTOCOL: Protocol = $protocol;
            const CALL_LAYER: bool = false;

            async fn access(&self, kong: &mut Kong) -> PhaseResult {
                let seen = typed_getters(kong).await?;
                SEEN.lock().unwrap().push(($label, seen));
                Ok(())
            }
        }
    };
}

getters_plugin!(GettersPb, Protocol::ProtoBuf, "protobuf");
getters_plugin!(GettersMp, Protocol::MsgPack, "msgpack");

/// One request, as Kong's ProtoBuf side encodes the answers.
fn answer_pb(call: &Call) -> Reply {
    let s = |v: &str| Reply::message(&pb::Str { v: v.into() });
    let text = |v: &str| pb::Value {
        kind: Some(pb::ValueKind::StringValue(v.into())),
    };
    let list = |vs: &[&str]| pb::Value {
        kind: Some(pb::ValueKind::ListValue(pb::ListValue {
            values: vs.iter().map(|v| text(v)).collect(),
        })),
    };
    match call.method.as_str() {
        "kong.request.get_header" => {
            let name = call.decode::<pb::Str>().v;
            s(if name == "host" { "example.com" } else { "" })
        }
        "kong.request.get_headers" => Reply::message(&pb::Struct {
            fields: [
                ("host".to_owned(), text("example.com")),
                ("x-multi".to_owned(), list(&["a", "b"])),
            ]
            .into_iter()
            .collect(),
        }),
        "kong.request.get_query" => Reply::message(&pb::Struct {
            fields: [
                ("a".to_owned(), list(&["1", "2"])),
                (
                    "flag".to_owned(),
                    pb::Value {
                        kind: Some(pb::ValueKind::BoolValue(true)),
                    },
                ),
                ("empty".to_owned(), text("")),
            ]
            .into_iter()
            .collect(),
        }),
        "kong.request.get_query_arg" => s(""),
        "kong.request.get_method" => s("POST"),
        "kong.request.get_port" => Reply::message(&pb::Int { v: 8000 }),
        "kong.request.get_http_version" => Reply::message(&pb::Number { v: 1.1 }),
        "kong.request.get_raw_body" => Reply::message(&pb::RawBodyResult {
            kind: Some(pb::raw_body_result::Kind::Content(vec![0, 1, 0xff])),
        }),
        "kong.client.get_ip" => s("10.0.0.7"),
        "kong.client.get_consumer" => Reply::message(&pb::Consumer {
            id: "c-1".into(),
            created_at: 1_700_000_000,
            username: "ann".into(),
            custom_id: String::new(),
            tags: vec!["gold".into()],
        }),
        "kong.router.get_route" => Reply::message(&pb::Route {
            id: "r-1".into(),
            name: "orders".into(),
            paths: vec!["/orders".into()],
            strip_path: true,
            service: Some(pb::ServiceKey { id: "s-1".into() }),
            ..pb::Route::default()
        }),
        "kong.ctx.shared.get" => {
            if call.decode::<pb::Str>().v == "tenant" {
                Reply::message(&kong_pdk::__private::value_from_json(
                    json!({"name": "blue", "tier": 2}),
                ))
            } else {
                Reply::empty()
            }
        }
        "kong.nginx.get_var" => s("req-42"),
        "kong.nginx.req_start_time" => Reply::message(&pb::Number { v: 1_700_000_000.5 }),
        "kong.ip.is_trusted" => Reply::message(&pb::Bool { v: true }),
        "kong.node.get_memory_stats" => Reply::message(&pb::MemoryStats {
            lua_shared_dicts: Some(pb::memory_stats::LuaSharedDicts {
                kong: Some(pb::memory_stats::lua_shared_dicts::DictStats {
                    allocated_slabs: 40960,
                    capacity: 5_242_880,
                }),
                kong_db_cache: None,
            }),
            workers_lua_vms: vec![pb::memory_stats::WorkerLuaVm {
                http_allocated_gc: 1024,
                pid: 7,
            }],
        }),
        _ => Reply::empty(),
    }
}

fn map(pairs: Vec<(&str, Mp)>) -> Mp {
    Mp::Map(pairs.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
}

fn strs(vs: &[&str]) -> Mp {
    Mp::Array(vs.iter().map(|v| Mp::from(*v)).collect())
}

/// The same request, as Kong's Lua functions return it over MsgPack:1
/// (multimaps with array values and `[]` for a flag, nil as no `Data`).
fn answer_mp(call: &MpCall) -> MpReply {
    let v = |x: Mp| MpReply::Value(Some(x));
    match call.method.as_str() {
        "kong.request.get_header" => {
            if call.args[0].as_str() == Some("host") {
                v(Mp::from("example.com"))
            } else {
                MpReply::Value(None)
            }
        }
        "kong.request.get_headers" => v(map(vec![
            ("host", strs(&["example.com"])),
            ("x-multi", strs(&["a", "b"])),
        ])),
        "kong.request.get_query" => v(map(vec![
            ("a", strs(&["1", "2"])),
            ("flag", strs(&[])),
            ("empty", strs(&[""])),
        ])),
        "kong.request.get_query_arg" => v(Mp::Boolean(true)),
        "kong.request.get_method" => v(Mp::from("POST")),
        "kong.request.get_port" => v(Mp::from(8000)),
        "kong.request.get_http_version" => v(Mp::F64(1.1)),
        "kong.request.get_raw_body" => v(Mp::Binary(vec![0, 1, 0xff])),
        "kong.client.get_ip" => v(Mp::from("10.0.0.7")),
        "kong.client.get_consumer" => v(map(vec![
            ("id", Mp::from("c-1")),
            ("created_at", Mp::from(1_700_000_000)),
            ("username", Mp::from("ann")),
            ("tags", strs(&["gold"])),
            ("type", Mp::from(0)),
        ])),
        "kong.router.get_route" => v(map(vec![
            ("id", Mp::from("r-1")),
            ("name", Mp::from("orders")),
            ("paths", strs(&["/orders"])),
            ("strip_path", Mp::Boolean(true)),
            ("preserve_host", Mp::Boolean(false)),
            ("service", map(vec![("id", Mp::from("s-1"))])),
            ("path_handling", Mp::from("v0")),
        ])),
        "kong.ctx.shared.get" => {
            if call.args[0].as_str() == Some("tenant") {
                v(map(vec![("name", Mp::from("blue")), ("tier", Mp::from(2))]))
            } else {
                MpReply::Value(None)
            }
        }
        "kong.nginx.get_var" => v(Mp::from("req-42")),
        "kong.nginx.req_start_time" => v(Mp::F64(1_700_000_000.5)),
        "kong.ip.is_trusted" => v(Mp::Boolean(true)),
        "kong.node.get_memory_stats" => v(map(vec![
            (
                "lua_shared_dicts",
                map(vec![(
                    "kong",
                    map(vec![
                        ("allocated_slabs", Mp::from(40960)),
                        ("capacity", Mp::from(5_242_880)),
                    ]),
                )]),
            ),
            (
                "workers_lua_vms",
                Mp::Array(vec![map(vec![
                    ("http_allocated_gc", Mp::from(1024)),
                    ("pid", Mp::from(7)),
                ])]),
            ),
        ])),
        _ => MpReply::Value(None),
    }
}

fn seen(label: &str) -> Vec<String> {
    SEEN.lock()
        .unwrap()
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| panic!("{label} recorded nothing"))
}

#[tokio::test]
async fn typed_getters_give_the_same_results_over_both_protocols() {
    let server = TestServer::start(Server::<GettersPb>::new("0.1.0", 1).name("getters")).await;
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let status = conn.start_instance("getters", "{}").await.unwrap().unwrap();
    let result = conn
        .handle_event(status.instance_id, "access", answer_pb)
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    server.stop().await.unwrap();

    let server = TestServer::start(Server::<GettersMp>::new("0.1.0", 1).name("getters")).await;
    let mut conn = MsgPackConnection::connect(server.socket()).await.unwrap();
    let id = conn.start_instance("getters", "{}").await.unwrap().unwrap();
    let result = conn.handle_event(id, "access", answer_mp).await.unwrap();
    assert_eq!(result.end, MpEnd::Returned, "{:?}", result.calls);
    server.stop().await.unwrap();

    let (pb, mp) = (seen("protobuf"), seen("msgpack"));
    assert_eq!(pb.len(), 18);
    for (n, (a, b)) in pb.iter().zip(&mp).enumerate() {
        assert_eq!(a, b, "getter {n} differs between the protocols");
    }
}

/// The calls ProtoBuf:1 cannot make.
#[derive(Deserialize, Schema)]
struct Extras {}

#[kong_pdk::plugin]
impl Plugin for Extras {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let secret = kong.vault().get("{vault://env/api-key}").await?;
        let chain = kong
            .client()
            .tls()
            .get_full_client_certificate_chain()
            .await?;
        kong.client().tls().set_client_verify("SUCCESS").await?;
        kong.service().set_timeouts(1000, 2000, 3000).await?;
        kong.service().set_retries(3).await?;
        let verify = kong.service().set_tls_verify(true).await?;
        kong.log()
            .set_serialize_value_with_mode("request.tenant", "blue", SerializeMode::Add)
            .await?;
        let stats = kong.node().get_memory_stats_scaled("k", 1).await?;
        let set = kong
            .service_request()
            .set_body(&json!({"a": 1}), Some("application/json"))
            .await?;
        let generic: Option<String> = kong.call("kong.node.get_hostname", ()).await?;
        let summary = format!(
            "{secret:?} {chain:?} {verify} {} {set} {generic:?}",
            stats.lua_shared_dicts["kong"].capacity
        );
        kong.response().set_header("x-extras", &summary).await?;
        Ok(())
    }
}

#[tokio::test]
async fn msgpack_only_calls_send_kongs_lua_calls_and_read_its_results() {
    let server = TestServer::start(Server::<Extras>::new("0.1.0", 1).name("extras")).await;
    let mut conn = MsgPackConnection::connect(server.socket()).await.unwrap();
    let id = conn.start_instance("extras", "{}").await.unwrap().unwrap();
    let result = conn
        .handle_event(id, "access", |call| match call.method.as_str() {
            "kong.vault.get" => MpReply::Value(Some(Mp::from("s3cr3t"))),
            "kong.client.tls.get_full_client_certificate_chain" => MpReply::Value(None),
            "kong.service.set_tls_verify" => MpReply::Value(Some(Mp::Boolean(true))),
            "kong.node.get_memory_stats" => MpReply::Value(Some(map(vec![
                (
                    "lua_shared_dicts",
                    map(vec![(
                        "kong",
                        map(vec![
                            ("allocated_slabs", Mp::from("40.0 KiB")),
                            ("capacity", Mp::from("5120.0 KiB")),
                        ]),
                    )]),
                ),
                ("workers_lua_vms", Mp::Array(vec![])),
            ]))),
            "kong.service.request.set_body" => MpReply::Value(Some(Mp::Boolean(true))),
            "kong.node.get_hostname" => MpReply::Value(Some(Mp::from("node-1"))),
            _ => MpReply::Value(None),
        })
        .await
        .unwrap();
    assert_eq!(result.end, MpEnd::Returned);
    let calls: Vec<(String, Mp)> = result
        .calls
        .iter()
        .map(|c| (c.method.clone(), Mp::Array(c.args.clone())))
        .collect();
    let expected = [
        (
            "kong.vault.get",
            Mp::Array(vec![Mp::from("{vault://env/api-key}")]),
        ),
        (
            "kong.client.tls.get_full_client_certificate_chain",
            Mp::Array(vec![]),
        ),
        (
            "kong.client.tls.set_client_verify",
            Mp::Array(vec![Mp::from("SUCCESS")]),
        ),
        (
            "kong.service.set_timeouts",
            Mp::Array(vec![Mp::from(1000), Mp::from(2000), Mp::from(3000)]),
        ),
        ("kong.service.set_retries", Mp::Array(vec![Mp::from(3)])),
        (
            "kong.service.set_tls_verify",
            Mp::Array(vec![Mp::Boolean(true)]),
        ),
        (
            "kong.log.set_serialize_value",
            Mp::Array(vec![
                Mp::from("request.tenant"),
                Mp::from("blue"),
                map(vec![("mode", Mp::from("add"))]),
            ]),
        ),
        (
            "kong.node.get_memory_stats",
            Mp::Array(vec![Mp::from("k"), Mp::from(1)]),
        ),
        (
            "kong.service.request.set_body",
            Mp::Array(vec![
                map(vec![("a", Mp::from(1))]),
                Mp::from("application/json"),
            ]),
        ),
        ("kong.node.get_hostname", Mp::Array(vec![])),
        (
            "kong.response.set_header",
            Mp::Array(vec![
                Mp::from("x-extras"),
                Mp::from(r#"Some("s3cr3t") None true 5120.0 KiB true Some("node-1")"#),
            ]),
        ),
    ];
    let expected: Vec<(String, Mp)> = expected
        .into_iter()
        .map(|(m, a)| (m.to_owned(), a))
        .collect();
    assert_eq!(calls, expected);
    server.stop().await.unwrap();
}

/// A ProtoBuf:1 plugin that asks for a Lua function by name.
#[derive(Deserialize, Schema)]
struct GenericOverProtobuf {}

#[kong_pdk::plugin]
impl Plugin for GenericOverProtobuf {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let _: Option<String> = kong.call("kong.vault.get", ("{vault://env/x}",)).await?;
        Ok(())
    }
}

#[tokio::test]
async fn kong_call_under_protobuf_fails_at_once_saying_to_switch() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<GenericOverProtobuf>(json!({})).await;
    assert_eq!(
        out.round_trips_in(kong_pdk::Phase::Access),
        2,
        "{:?}",
        out.methods()
    );
    // Only the server's failure report went to Kong: the error log line
    // and the 500.
    assert_eq!(out.methods(), ["kong.log.err", "kong.response.exit"]);
    let logged = out.log_messages(LogLevel::Err).join("\n");
    assert!(
        logged.contains("needs the MsgPack:1 protocol") && logged.contains("Protocol::MsgPack"),
        "{logged}"
    );
    assert_eq!(out.response.status, 500);
}

/// Kong 3.10 never answers a call its PDK refuses; other versions send
/// `plugin.StepError`.
#[derive(Deserialize, Schema)]
struct Refused {}

#[kong_pdk::plugin]
impl Plugin for Refused {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        match kong.response().get_status().await {
            Err(kong_pdk::Error::Kong { message, .. }) => {
                kong.response().set_header("x-step-error", &message).await?;
            }
            other => {
                kong.response()
                    .set_header("x-other", &format!("{other:?}"))
                    .await?;
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_step_error_is_an_error_the_handler_can_match_and_the_event_goes_on() {
    let server = TestServer::start(Server::<Refused>::new("0.1.0", 1).name("refused")).await;
    let mut conn = MsgPackConnection::connect(server.socket()).await.unwrap();
    let id = conn.start_instance("refused", "{}").await.unwrap().unwrap();
    let result = conn
        .handle_event(id, "access", |call| match call.method.as_str() {
            "kong.response.get_status" => {
                MpReply::Error("function cannot be called in access phase".into())
            }
            _ => MpReply::Value(None),
        })
        .await
        .unwrap();
    assert_eq!(result.end, MpEnd::Returned);
    assert_eq!(
        result.calls[1].args,
        [
            Mp::from("x-step-error"),
            Mp::from("function cannot be called in access phase")
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_kong_never_answers_ends_at_the_handler_deadline_and_the_server_goes_on() {
    let server = TestServer::start(
        Server::<Refused>::new("0.1.0", 1)
            .name("refused")
            .handler_timeout(std::time::Duration::from_millis(200)),
    )
    .await;
    let mut conn = MsgPackConnection::connect(server.socket()).await.unwrap();
    let id = conn.start_instance("refused", "{}").await.unwrap().unwrap();
    let result = conn
        .handle_event(id, "access", |_| MpReply::Refuse)
        .await
        .unwrap();
    assert_eq!(result.end, MpEnd::Refused);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.stats().events_in_flight() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the event never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The same pooled connection serves the next event.
    let next = conn
        .handle_event(id, "access", |_| MpReply::Value(Some(Mp::from(200))))
        .await
        .unwrap();
    assert_eq!(next.end, MpEnd::Returned);
    assert_eq!(next.event_id, result.event_id + 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_instance_asks_kong_to_start_it_again() {
    let server = TestServer::start(Server::<Refused>::new("0.1.0", 1).name("refused")).await;
    let mut conn = MsgPackConnection::connect(server.socket()).await.unwrap();
    let result = conn
        .handle_event(42, "access", |_| MpReply::Value(None))
        .await
        .unwrap();
    // Kong resets the instance and retries when the error says so.
    assert_eq!(result.end, MpEnd::RpcError("no plugin instance 42".into()));
    let bad = conn.start_instance("other-name", "{}").await.unwrap();
    assert!(bad.is_err());
    server.stop().await.unwrap();
}

/// A MsgPack:1 plugin under `TestEnv`, calling a function outside the 74.
#[derive(Deserialize, Schema)]
struct VaultUser {}

#[kong_pdk::plugin]
impl Plugin for VaultUser {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        // Kong's env vault: `{vault://env/path}` is $PATH.
        let path = kong.vault().get("{vault://env/path}").await?;
        let absent = kong
            .vault()
            .get("{vault://env/kong-pdk-test-unset}")
            .await?;
        let cluster: Option<String> = kong.call("kong.cluster.get_id", ()).await?;
        kong.response()
            .set_header(
                "x-seen",
                &format!(
                    "{host} {} {absent:?} {cluster:?}",
                    path == std::env::var("PATH").ok()
                ),
            )
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn test_env_runs_a_msgpack_plugin_and_lists_what_it_cannot_model() {
    let mut env = TestEnv::new(Request::get("http://example.com/"));
    let out = env.run::<VaultUser>(json!({})).await;
    assert_eq!(
        out.response.header("x-seen"),
        Some("example.com true None None")
    );
    let unhandled: Vec<&str> = out
        .unhandled_calls
        .iter()
        .map(|c| c.method.as_str())
        .collect();
    assert_eq!(unhandled, ["kong.cluster.get_id"]);
}
