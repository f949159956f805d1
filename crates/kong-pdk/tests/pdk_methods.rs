//! Every one of the 74 PDK methods of Kong's `service Kong`, called through
//! the real server and socket: the method name and the encoded arguments
//! are checked against the proto types, and Kong-shaped answers are checked
//! to decode into the right Rust values.

use std::collections::BTreeSet;
use std::sync::Mutex;

use kong_pdk::entities::{AuthenticatedCredential, Consumer};
use kong_pdk::server::Server;
use kong_pdk::{Headers, Kong, PhaseResult, Plugin, Query, Schema};
use kong_pdk_proto as pb;
use kong_pdk_test::{EventEnd, Reply, TestServer};
use prost::Message;
use serde::Deserialize;
use serde_json::json;

/// The rpc names of Kong's `service Kong` (kong/include/kong/pluginsocket.proto).
const KONG_RPCS: [&str; 74] = [
    "Client_GetIp",
    "Client_GetForwardedIp",
    "Client_GetPort",
    "Client_GetForwardedPort",
    "Client_GetCredential",
    "Client_LoadConsumer",
    "Client_GetConsumer",
    "Client_Authenticate",
    "Client_GetProtocol",
    "Ctx_SetShared",
    "Ctx_GetShared",
    "Ip_IsTrusted",
    "Log_Alert",
    "Log_Crit",
    "Log_Err",
    "Log_Warn",
    "Log_Notice",
    "Log_Info",
    "Log_Debug",
    "Log_SetSerializeValue",
    "Log_Serialize",
    "Nginx_GetVar",
    "Nginx_GetTls1VersionStr",
    "Nginx_SetCtx",
    "Nginx_GetCtx",
    "Nginx_ReqStartTime",
    "Nginx_GetSubsystem",
    "Node_GetId",
    "Node_GetMemoryStats",
    "Request_GetScheme",
    "Request_GetHost",
    "Request_GetPort",
    "Request_GetForwardedScheme",
    "Request_GetForwardedHost",
    "Request_GetForwardedPort",
    "Request_GetHttpVersion",
    "Request_GetMethod",
    "Request_GetPath",
    "Request_GetPathWithQuery",
    "Request_GetRawQuery",
    "Request_GetQueryArg",
    "Request_GetQuery",
    "Request_GetHeader",
    "Request_GetHeaders",
    "Request_GetRawBody",
    "Request_GetUriCaptures",
    "Response_GetStatus",
    "Response_GetHeader",
    "Response_GetHeaders",
    "Response_GetSource",
    "Response_SetStatus",
    "Response_SetHeader",
    "Response_AddHeader",
    "Response_ClearHeader",
    "Response_SetHeaders",
    "Response_Exit",
    "Router_GetRoute",
    "Router_GetService",
    "Service_SetUpstream",
    "Service_SetTarget",
    "Service_Request_SetScheme",
    "Service_Request_SetPath",
    "Service_Request_SetRawQuery",
    "Service_Request_SetMethod",
    "Service_Request_SetQuery",
    "Service_Request_SetHeader",
    "Service_Request_AddHeader",
    "Service_Request_ClearHeader",
    "Service_Request_SetHeaders",
    "Service_Request_SetRawBody",
    "Service_Response_GetStatus",
    "Service_Response_GetHeader",
    "Service_Response_GetHeaders",
    "Service_Response_GetRawBody",
];

/// Kong's rule (pb_rpc.lua): `_` → `.`, a lower-case letter (plus digits)
/// before an upper-case one gets a `_`, all lower-cased, under `kong.`;
/// `Ctx_SetShared`/`Ctx_GetShared` carry an explicit name.
fn kong_method_name(rpc: &str) -> String {
    match rpc {
        "Ctx_SetShared" => return "kong.ctx.shared.set".into(),
        "Ctx_GetShared" => return "kong.ctx.shared.get".into(),
        _ => {}
    }
    let dotted = rpc.replace('_', ".");
    let chars: Vec<char> = dotted.chars().collect();
    let mut out = String::from("kong.");
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            // Look back over digits to a lower-case letter.
            let mut j = i;
            while j > 0 && chars[j - 1].is_ascii_digit() {
                j -= 1;
            }
            if j > 0 && chars[j - 1].is_ascii_lowercase() {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn s(v: &str) -> pb::Str {
    pb::Str { v: v.into() }
}

fn sv(v: &str) -> pb::Value {
    pb::Value {
        kind: Some(pb::ValueKind::StringValue(v.into())),
    }
}

fn list(values: Vec<pb::Value>) -> pb::Value {
    pb::Value {
        kind: Some(pb::ValueKind::ListValue(pb::ListValue { values })),
    }
}

fn strukt(fields: Vec<(&str, pb::Value)>) -> pb::Struct {
    pb::Struct {
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

fn kv(k: &str, v: pb::Value) -> pb::Kv {
    pb::Kv {
        k: k.into(),
        v: Some(v),
    }
}

/// One PDK call: the exact request Kong must receive and the answer it gives.
struct Case {
    method: &'static str,
    args: Vec<u8>,
    reply: Vec<u8>,
    /// Debug of the Rust value the call returned.
    result: String,
}

fn case<A: Message, R: Message>(method: &'static str, args: A, reply: R, result: &str) -> Case {
    Case {
        method,
        args: args.encode_to_vec(),
        reply: reply.encode_to_vec(),
        result: result.to_owned(),
    }
}

fn cases() -> Vec<Case> {
    let consumer = pb::Consumer {
        id: "c1".into(),
        created_at: 1_700_000_000,
        username: "ann".into(),
        custom_id: "x".into(),
        tags: vec!["t".into()],
    };
    let credential = pb::AuthenticatedCredential {
        id: "k1".into(),
        consumer_id: "c1".into(),
    };
    let headers = strukt(vec![
        ("x-multi", list(vec![sv("a"), sv("b")])),
        ("host", sv("h")),
    ]);
    let query = strukt(vec![
        ("a", list(vec![sv("1"), sv("2")])),
        (
            "flag",
            pb::Value {
                kind: Some(pb::ValueKind::BoolValue(true)),
            },
        ),
    ]);
    vec![
        case("kong.client.get_ip", (), s("10.0.0.1"), r#"Ok("10.0.0.1")"#),
        case(
            "kong.client.get_forwarded_ip",
            (),
            s("10.0.0.2"),
            r#"Ok("10.0.0.2")"#,
        ),
        case(
            "kong.client.get_port",
            (),
            pb::Int { v: 46620 },
            "Ok(46620)",
        ),
        case(
            "kong.client.get_forwarded_port",
            (),
            pb::Int { v: 443 },
            "Ok(443)",
        ),
        case(
            "kong.client.get_credential",
            (),
            credential.clone(),
            r#"Ok(AuthenticatedCredential { id: "k1", consumer_id: "c1" })"#,
        ),
        case(
            "kong.client.load_consumer",
            pb::ConsumerSpec {
                id: "ann".into(),
                by_username: true,
            },
            consumer.clone(),
            r#"Ok(Consumer { id: "c1", created_at: 1700000000, username: "ann", custom_id: "x", tags: ["t"] })"#,
        ),
        case(
            "kong.client.get_consumer",
            (),
            (),
            r#"Ok(Consumer { id: "", created_at: 0, username: "", custom_id: "", tags: [] })"#,
        ),
        case(
            "kong.client.authenticate",
            pb::AuthenticateArgs {
                consumer: Some(pb::Consumer {
                    id: "c1".into(),
                    ..Default::default()
                }),
                credential: Some(credential.clone()),
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.client.get_protocol",
            pb::Bool { v: true },
            s("https"),
            r#"Ok("https")"#,
        ),
        case(
            "kong.ctx.shared.set",
            kv(
                "k",
                pb::Value {
                    kind: Some(pb::ValueKind::StructValue(strukt(vec![
                        (
                            "n",
                            pb::Value {
                                kind: Some(pb::ValueKind::NumberValue(1.0)),
                            },
                        ),
                        (
                            "l",
                            list(vec![
                                sv("x"),
                                pb::Value {
                                    kind: Some(pb::ValueKind::NullValue(0)),
                                },
                            ]),
                        ),
                    ]))),
                },
            ),
            (),
            "Ok(())",
        ),
        case(
            "kong.ctx.shared.get",
            s("k"),
            pb::Value {
                kind: Some(pb::ValueKind::NumberValue(42.0)),
            },
            "Ok(Some(42))",
        ),
        case(
            "kong.ip.is_trusted",
            s("127.0.0.1"),
            pb::Bool { v: true },
            "Ok(true)",
        ),
        case(
            "kong.log.alert",
            pb::ListValue {
                values: vec![sv("a")],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.log.crit",
            pb::ListValue {
                values: vec![sv("c")],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.log.err",
            pb::ListValue {
                values: vec![
                    sv("status="),
                    pb::Value {
                        kind: Some(pb::ValueKind::NumberValue(403.0)),
                    },
                    pb::Value {
                        kind: Some(pb::ValueKind::BoolValue(true)),
                    },
                ],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.log.warn",
            pb::ListValue {
                values: vec![sv("w")],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.log.notice",
            pb::ListValue {
                values: vec![sv("n")],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.log.info",
            pb::ListValue {
                values: vec![sv("i")],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.log.debug",
            pb::ListValue {
                values: vec![sv("d")],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.log.set_serialize_value",
            kv("request.extra", sv("v")),
            (),
            "Ok(())",
        ),
        case(
            "kong.log.serialize",
            (),
            s(r#"{"a":1}"#),
            r#"Ok("{\"a\":1}")"#,
        ),
        case(
            "kong.nginx.get_var",
            s("request_uri"),
            s("/p?q"),
            r#"Ok("/p?q")"#,
        ),
        case(
            "kong.nginx.get_tls1_version_str",
            (),
            s("TLSv1.3"),
            r#"Ok("TLSv1.3")"#,
        ),
        case("kong.nginx.set_ctx", kv("kbtest", sv("v1")), (), "Ok(())"),
        case(
            "kong.nginx.get_ctx",
            s("KONG_ACCESS_START"),
            pb::Value {
                kind: Some(pb::ValueKind::NumberValue(1795990480998.0)),
            },
            "Ok(1795990480998)",
        ),
        case(
            "kong.nginx.req_start_time",
            (),
            pb::Number { v: 1795990480.998 },
            "Ok(1795990480.998)",
        ),
        case("kong.nginx.get_subsystem", (), s("http"), r#"Ok("http")"#),
        case("kong.node.get_id", (), s("node-1"), r#"Ok("node-1")"#),
        case(
            "kong.node.get_memory_stats",
            (),
            pb::MemoryStats {
                lua_shared_dicts: Some(pb::memory_stats::LuaSharedDicts {
                    kong: Some(pb::memory_stats::lua_shared_dicts::DictStats {
                        allocated_slabs: 40960,
                        capacity: 5242880,
                    }),
                    kong_db_cache: None,
                }),
                workers_lua_vms: vec![pb::memory_stats::WorkerLuaVm {
                    http_allocated_gc: 1900346,
                    pid: 27781,
                }],
            },
            r#"Ok(MemoryStats { lua_shared_dicts: {"kong": DictStats { allocated_slabs: 40960, capacity: 5242880 }}, workers_lua_vms: [WorkerMemory { http_allocated_gc: 1900346, pid: 27781 }] })"#,
        ),
        case("kong.request.get_scheme", (), s("https"), r#"Ok("https")"#),
        case(
            "kong.request.get_host",
            (),
            s("example.com"),
            r#"Ok("example.com")"#,
        ),
        case("kong.request.get_port", (), pb::Int { v: 8443 }, "Ok(8443)"),
        case(
            "kong.request.get_forwarded_scheme",
            (),
            s("http"),
            r#"Ok("http")"#,
        ),
        case(
            "kong.request.get_forwarded_host",
            (),
            s("f.example"),
            r#"Ok("f.example")"#,
        ),
        case(
            "kong.request.get_forwarded_port",
            (),
            pb::Int { v: 80 },
            "Ok(80)",
        ),
        case(
            "kong.request.get_http_version",
            (),
            pb::Number { v: 1.1 },
            "Ok(1.1)",
        ),
        case("kong.request.get_method", (), s("PATCH"), r#"Ok("PATCH")"#),
        case("kong.request.get_path", (), s("/a/b"), r#"Ok("/a/b")"#),
        case(
            "kong.request.get_path_with_query",
            (),
            s("/a/b?x=1"),
            r#"Ok("/a/b?x=1")"#,
        ),
        case("kong.request.get_raw_query", (), s("x=1"), r#"Ok("x=1")"#),
        case("kong.request.get_query_arg", s("x"), s("1"), r#"Ok("1")"#),
        case(
            "kong.request.get_query",
            pb::Int { v: 100 },
            query,
            r#"Ok(Query({"a": ["1", "2"], "flag": [""]}))"#,
        ),
        case("kong.request.get_header", s("x-absent"), (), r#"Ok("")"#),
        case(
            "kong.request.get_headers",
            pb::Int { v: 7 },
            headers.clone(),
            r#"Ok(Headers({"host": ["h"], "x-multi": ["a", "b"]}))"#,
        ),
        case(
            "kong.request.get_raw_body",
            (),
            pb::RawBodyResult {
                kind: Some(pb::raw_body_result::Kind::BodyFilepath("/tmp/0001".into())),
            },
            r#"Ok(File("/tmp/0001"))"#,
        ),
        case(
            "kong.request.get_uri_captures",
            (),
            pb::UriCapturesResult {
                unnamed: vec![b"all".to_vec(), b"one".to_vec()],
                named: [("name".to_owned(), b"one".to_vec())].into_iter().collect(),
            },
            r#"Ok(UriCaptures { unnamed: [[97, 108, 108], [111, 110, 101]], named: {"name": [111, 110, 101]} })"#,
        ),
        case(
            "kong.response.get_status",
            (),
            pb::Int { v: 201 },
            "Ok(201)",
        ),
        case("kong.response.get_header", s("x-r"), s("rv"), r#"Ok("rv")"#),
        case(
            "kong.response.get_headers",
            pb::Int { v: 100 },
            (),
            "Ok(Headers({}))",
        ),
        case(
            "kong.response.get_source",
            (),
            s("service"),
            r#"Ok("service")"#,
        ),
        case("kong.response.set_status", pb::Int { v: 418 }, (), "Ok(())"),
        case("kong.response.set_header", kv("x-a", sv("1")), (), "Ok(())"),
        case("kong.response.add_header", kv("x-a", sv("2")), (), "Ok(())"),
        case("kong.response.clear_header", s("x-b"), (), "Ok(())"),
        case(
            "kong.response.set_headers",
            strukt(vec![
                ("x-multi", list(vec![sv("a"), sv("b")])),
                ("host", sv("h")),
            ]),
            (),
            "Ok(())",
        ),
        case(
            "kong.router.get_route",
            (),
            pb::Route {
                id: "r1".into(),
                paths: vec!["/".into()],
                strip_path: true,
                service: Some(pb::ServiceKey { id: "s1".into() }),
                ..Default::default()
            },
            r#"Ok(Route { id: "r1", created_at: 0, updated_at: 0, name: "", protocols: [], methods: [], hosts: [], paths: ["/"], headers: [], https_redirect_status_code: 0, regex_priority: 0, strip_path: true, preserve_host: false, snis: [], sources: [], destinations: [], tags: [], service_id: Some("s1") })"#,
        ),
        case(
            "kong.router.get_service",
            (),
            pb::Service {
                id: "s1".into(),
                host: "up".into(),
                port: 18000,
                client_certificate: Some(pb::CertificateKey { id: String::new() }),
                ..Default::default()
            },
            r#"Ok(Service { id: "s1", created_at: 0, updated_at: 0, name: "", retries: 0, protocol: "", host: "up", port: 18000, path: "", connect_timeout: 0, write_timeout: 0, read_timeout: 0, tags: [], client_certificate_id: None })"#,
        ),
        // Kong drops the error of a failed set_upstream: a nil Bool.
        case("kong.service.set_upstream", s("nope"), (), "Ok(false)"),
        case(
            "kong.service.set_target",
            pb::Target {
                host: "10.1.1.1".into(),
                port: 8080,
            },
            (),
            "Ok(())",
        ),
        case("kong.service.request.set_scheme", s("https"), (), "Ok(())"),
        case("kong.service.request.set_path", s("/new"), (), "Ok(())"),
        case(
            "kong.service.request.set_raw_query",
            s("q=2&z=%20y"),
            (),
            "Ok(())",
        ),
        case("kong.service.request.set_method", s("POST"), (), "Ok(())"),
        case(
            "kong.service.request.set_query",
            strukt(vec![("a", list(vec![sv("1"), sv("2")])), ("b", sv("x"))]),
            (),
            "Ok(())",
        ),
        case(
            "kong.service.request.set_header",
            kv("x-s", sv("1")),
            (),
            "Ok(())",
        ),
        case(
            "kong.service.request.add_header",
            kv("x-s", sv("2")),
            (),
            "Ok(())",
        ),
        case("kong.service.request.clear_header", s("x-t"), (), "Ok(())"),
        case(
            "kong.service.request.set_headers",
            strukt(vec![("x-one", sv("1"))]),
            (),
            "Ok(())",
        ),
        case(
            "kong.service.request.set_raw_body",
            pb::ByteString {
                v: vec![0, 159, 146, 150, 255],
            },
            (),
            "Ok(())",
        ),
        case(
            "kong.service.response.get_status",
            (),
            pb::Int { v: 503 },
            "Ok(503)",
        ),
        case(
            "kong.service.response.get_header",
            s("server"),
            s("echo"),
            r#"Ok("echo")"#,
        ),
        case(
            "kong.service.response.get_headers",
            pb::Int { v: 100 },
            headers,
            r#"Ok(Headers({"host": ["h"], "x-multi": ["a", "b"]}))"#,
        ),
        case(
            "kong.service.response.get_raw_body",
            (),
            pb::ByteString {
                v: vec![0xff, 0x00, b'x'],
            },
            "Ok([255, 0, 120])",
        ),
        case(
            "kong.response.exit",
            pb::ExitArgs {
                status: 401,
                body: br#"{"message":"no"}"#.to_vec(),
                headers: Some(strukt(vec![
                    ("Content-Type", sv("application/json")),
                    ("WWW-Authenticate", sv("Key")),
                ])),
            },
            (),
            r#""never returns""#,
        ),
    ]
}

static RESULTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record<T: std::fmt::Debug>(r: T) {
    RESULTS.lock().unwrap().push(format!("{r:?}"));
}

#[derive(Deserialize, Schema)]
struct AllMethods {}

#[kong_pdk::plugin]
impl Plugin for AllMethods {
    async fn access(&self, k: &mut Kong) -> PhaseResult {
        record(k.client().get_ip().await);
        record(k.client().get_forwarded_ip().await);
        record(k.client().get_port().await);
        record(k.client().get_forwarded_port().await);
        record(k.client().get_credential().await);
        record(k.client().load_consumer("ann", true).await);
        record(k.client().get_consumer().await);
        let cred = AuthenticatedCredential::new("k1", "c1");
        record(
            k.client()
                .authenticate(Some(&Consumer::with_id("c1")), Some(&cred))
                .await,
        );
        record(k.client().get_protocol(true).await);
        record(
            k.ctx()
                .set_shared("k", &json!({"n": 1, "l": ["x", null]}))
                .await,
        );
        record(k.ctx().get_shared::<Option<u32>>("k").await);
        record(k.ip().is_trusted("127.0.0.1").await);
        record(k.log().alert("a").await);
        record(k.log().crit(String::from("c")).await);
        record(k.log().err(("status=", 403, true)).await);
        record(k.log().warn(&"w".to_owned()).await);
        record(k.log().notice("n").await);
        record(k.log().info("i").await);
        record(k.log().debug("d").await);
        record(k.log().set_serialize_value("request.extra", "v").await);
        record(k.log().serialize().await);
        record(k.nginx().get_var("request_uri").await);
        record(k.nginx().get_tls1_version_str().await);
        record(k.nginx().set_ctx("kbtest", "v1").await);
        record(k.nginx().get_ctx::<u64>("KONG_ACCESS_START").await);
        record(k.nginx().req_start_time().await);
        record(k.nginx().get_subsystem().await);
        record(k.node().get_id().await);
        record(k.node().get_memory_stats().await);
        record(k.request().get_scheme().await);
        record(k.request().get_host().await);
        record(k.request().get_port().await);
        record(k.request().get_forwarded_scheme().await);
        record(k.request().get_forwarded_host().await);
        record(k.request().get_forwarded_port().await);
        record(k.request().get_http_version().await);
        record(k.request().get_method().await);
        record(k.request().get_path().await);
        record(k.request().get_path_with_query().await);
        record(k.request().get_raw_query().await);
        record(k.request().get_query_arg("x").await);
        record(k.request().get_query().await);
        record(k.request().get_header("x-absent").await);
        record(k.request().get_headers_max(7).await);
        record(k.request().get_raw_body().await);
        record(k.request().get_uri_captures().await);
        record(k.response().get_status().await);
        record(k.response().get_header("x-r").await);
        record(k.response().get_headers().await);
        record(k.response().get_source().await);
        record(k.response().set_status(418).await);
        record(k.response().set_header("x-a", "1").await);
        record(k.response().add_header("x-a", "2").await);
        record(k.response().clear_header("x-b").await);
        let headers: Headers = [("x-multi", "a"), ("x-multi", "b"), ("host", "h")]
            .into_iter()
            .collect();
        record(k.response().set_headers(&headers).await);
        record(k.router().get_route().await);
        record(k.router().get_service().await);
        record(k.service().set_upstream("nope").await);
        record(k.service().set_target("10.1.1.1", 8080).await);
        record(k.service_request().set_scheme("https").await);
        record(k.service_request().set_path("/new").await);
        record(k.service_request().set_raw_query("q=2&z=%20y").await);
        record(k.service_request().set_method("POST").await);
        let query: Query = [("a", "1"), ("a", "2"), ("b", "x")].into_iter().collect();
        record(k.service_request().set_query(&query).await);
        record(k.service_request().set_header("x-s", "1").await);
        record(k.service_request().add_header("x-s", "2").await);
        record(k.service_request().clear_header("x-t").await);
        let one: Headers = [("x-one", "1")].into_iter().collect();
        record(k.service_request().set_headers(&one).await);
        record(
            k.service_request()
                .set_raw_body([0, 159, 146, 150, 255])
                .await,
        );
        record(k.service_response().get_status().await);
        record(k.service_response().get_header("server").await);
        record(k.service_response().get_headers().await);
        record(k.service_response().get_raw_body().await);
        record("never returns");
        k.response()
            .exit_json(
                401,
                &json!({"message": "no"}),
                [("WWW-Authenticate", "Key")],
            )
            .await?;
        record("the handler went on after exit");
        Ok(())
    }
}

#[test]
fn the_method_table_covers_kongs_74_rpcs_with_kongs_names() {
    let ours: BTreeSet<&str> = cases().iter().map(|c| c.method).collect();
    let kong: BTreeSet<String> = KONG_RPCS.iter().map(|r| kong_method_name(r)).collect();
    assert_eq!(kong.len(), 74);
    assert_eq!(
        kong_method_name("Nginx_GetTls1VersionStr"),
        "kong.nginx.get_tls1_version_str"
    );
    assert_eq!(
        kong_method_name("Service_Response_GetRawBody"),
        "kong.service.response.get_raw_body"
    );
    let ours: BTreeSet<String> = ours.into_iter().map(str::to_owned).collect();
    assert_eq!(ours, kong);
}

#[tokio::test]
async fn every_method_encodes_its_arguments_and_decodes_kongs_answer() {
    let server = TestServer::start(Server::<AllMethods>::new("1.0.0", 1).name("all")).await;
    let mut conn = server.connect().await;
    let id = conn
        .start_instance("all", r#"{"__seq__":1}"#)
        .await
        .unwrap()
        .unwrap()
        .instance_id;
    let table = cases();
    let mut next = 0;
    let mut mismatches = Vec::new();
    let result = conn
        .handle_event(id, "access", |call| {
            let case = &table[next];
            next += 1;
            if call.method != case.method {
                mismatches.push(format!(
                    "call {next}: {} instead of {}",
                    call.method, case.method
                ));
            } else if call.args != case.args {
                mismatches.push(format!(
                    "{}: args {:?} instead of {:?}",
                    case.method, call.args, case.args
                ));
            }
            Reply::Frame(case.reply.clone())
        })
        .await
        .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    let EventEnd::Exit(exit) = &result.end else {
        panic!("no exit: {:?}", result.end);
    };
    let want_exit = pb::ExitArgs::decode(&table[73].args[..]).unwrap();
    assert_eq!(exit, &want_exit);
    assert_eq!(result.calls.len(), 74);
    server.stop().await.unwrap();

    let results = RESULTS.lock().unwrap().clone();
    let want: Vec<&str> = table.iter().map(|c| c.result.as_str()).collect();
    assert_eq!(results.len(), want.len(), "{results:#?}");
    for (i, (got, want)) in results.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "result of {}", table[i].method);
    }
}

#[tokio::test]
async fn max_outside_kongs_limits_is_refused_before_sending() {
    #[derive(Deserialize, Schema)]
    struct Bad {}
    #[kong_pdk::plugin]
    impl Plugin for Bad {
        async fn access(&self, k: &mut Kong) -> PhaseResult {
            let zero = k.request().get_headers_max(0).await.unwrap_err();
            assert!(zero.to_string().contains("between 1 and 1000"), "{zero}");
            let big = k.request().get_query_max(1001).await.unwrap_err();
            assert!(big.to_string().contains("1001"), "{big}");
            let neither = k.client().authenticate(None, None).await.unwrap_err();
            assert!(neither.to_string().contains("consumer"), "{neither}");
            k.response().set_header("x-checked", "yes").await?;
            Ok(())
        }
    }
    let server = TestServer::start(Server::<Bad>::new("1.0.0", 1).name("bad")).await;
    let mut conn = server.connect().await;
    conn.start_instance("bad", r#"{"__seq__":1}"#)
        .await
        .unwrap()
        .unwrap();
    let result = conn
        .handle_event(1, "access", |_| Reply::empty())
        .await
        .unwrap();
    assert_eq!(result.methods(), ["kong.response.set_header"]);
    assert_eq!(result.end, EventEnd::Returned);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_body_buffered_to_a_file_can_be_read_with_a_limit() {
    use kong_pdk::pdk::RawBody;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("0000000001");
    std::fs::write(&file, b"a large body").unwrap();
    let body = RawBody::File(file.clone());
    assert_eq!(
        body.clone().into_bytes(1024).await.unwrap(),
        b"a large body"
    );
    let too_big = body.into_bytes(4).await.unwrap_err();
    assert!(
        too_big.to_string().contains("exceed the limit of 4"),
        "{too_big}"
    );
    let missing = RawBody::File(dir.path().join("gone"))
        .into_bytes(1024)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("gone"), "{missing}");
    let in_memory = RawBody::InMemory(b"x".to_vec())
        .into_bytes(0)
        .await
        .unwrap();
    assert_eq!(in_memory, b"x");
}
