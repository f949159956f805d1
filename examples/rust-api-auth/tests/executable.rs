//! The built executable over its socket, answered as Kong answers: the
//! round trips Kong sees in access and in log.

use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, EventEnd, PluginProcess, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_rust-api-auth");
const CONFIG: &str = r#"{"keys":[{"key":"k-1234567","client":"billing","tenant":"acme"}],"allow_anonymous":false,"__seq__":1}"#;

fn text(v: &str) -> Reply {
    Reply::message(&pb::Str { v: v.into() })
}

const HEADERS: [(&str, &str); 3] = [
    ("authorization", "Bearer k-1234567"),
    ("x-request-id", "req-7"),
    ("user-agent", "curl/8"),
];

fn kong(call: &Call) -> Reply {
    match call.method.as_str() {
        "kong.request.get_header" => {
            let name = call.decode::<pb::Str>().v.to_ascii_lowercase();
            text(HEADERS.iter().find(|(k, _)| *k == name).map_or("", |h| h.1))
        }
        "kong.request.get_headers" => {
            let mut st = pb::Struct::default();
            for (k, v) in HEADERS {
                let v = pb::Value {
                    kind: Some(pb::ValueKind::StringValue(v.into())),
                };
                st.fields.insert(k.into(), v);
            }
            Reply::message(&st)
        }
        "kong.request.get_path" => text("/orders"),
        "kong.response.get_status" => Reply::message(&pb::Int { v: 200 }),
        "kong.log.serialize" => text(
            r#"{"request":{"method":"GET","uri":"/orders?page=2","url":"http://api.test:80/orders?page=2","querystring":{"page":"2"}},"client_ip":"10.0.0.5"}"#,
        ),
        _ => Reply::empty(),
    }
}

/// The executable with `env`, connected, with instance 1 started.
async fn start(env: &[(&str, &str)]) -> (PluginProcess, Connection) {
    let server = PluginProcess::start_with_env(EXE, env).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.start_instance("rust-api-auth", CONFIG)
        .await
        .unwrap()
        .expect("started");
    (server, conn)
}

#[tokio::test]
async fn access_and_log_take_four_and_five_round_trips() {
    let (_server, mut conn) = start(&[]).await;
    let access = conn.handle_event(1, "access", kong).await.unwrap();
    assert_eq!(access.end, EventEnd::Returned);
    assert_eq!(
        access.methods(),
        [
            "kong.request.get_header",
            "kong.request.get_headers",
            "kong.service.request.set_headers",
            "kong.response.set_header",
        ]
    );
    let upstream = access.calls[2].decode::<pb::Struct>();
    let names: Vec<&str> = upstream.fields.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "X-Client-Agent",
            "X-Client-ID",
            "X-Client-Tenant",
            "X-Request-ID"
        ]
    );

    let log = conn.handle_event(1, "log", kong).await.unwrap();
    assert_eq!(log.end, EventEnd::Returned);
    assert_eq!(
        log.methods(),
        [
            "kong.request.get_header",
            "kong.request.get_path",
            "kong.response.get_status",
            "kong.log.serialize",
            "kong.log.info",
        ]
    );
    let line = log.calls[4].decode::<pb::ListValue>();
    assert_eq!(
        line.values[0].kind,
        Some(pb::ValueKind::StringValue(
            "client=billing GET /orders?page=2 from 10.0.0.5 -> 200".into()
        ))
    );
}

#[tokio::test]
async fn with_the_layer_turned_off_by_the_operator_every_call_goes_to_kong() {
    let (_server, mut conn) = start(&[("KONG_PDK_CALL_LAYER", "off")]).await;
    let access = conn.handle_event(1, "access", kong).await.unwrap();
    assert_eq!(access.end, EventEnd::Returned);
    assert_eq!(access.calls.len(), 8, "{:?}", access.methods());
}
