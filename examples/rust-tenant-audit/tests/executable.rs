//! The built executable, driven over its socket the way Kong drives it:
//! access stores the audit in `kong.ctx.shared`, log reads it back.

use std::sync::{Arc, Mutex};

use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, EventEnd, PluginProcess, Reply};
use prost::Message;

const EXE: &str = env!("CARGO_BIN_EXE_rust-tenant-audit");

fn s(v: &str) -> Reply {
    Reply::message(&pb::Str { v: v.into() })
}

#[tokio::test]
async fn access_hands_the_tenant_to_the_log_phase() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let config = r#"{"tenant_header":"x-tenant","default_tenant":"public","__seq__":1}"#;
    conn.start_instance("rust-tenant-audit", config)
        .await
        .unwrap()
        .expect("started");
    // Kong's ctx.shared for this request.
    let shared: Arc<Mutex<Option<pb::Value>>> = Arc::default();
    let store = Arc::clone(&shared);
    let access = conn
        .handle_event(1, "access", move |call| match call.method.as_str() {
            "kong.request.get_header" => s("acme"),
            "kong.request.get_method" => s("DELETE"),
            "kong.request.get_path" => s("/orders/7"),
            "kong.ctx.shared.set" => {
                *store.lock().unwrap() = call.decode::<pb::Kv>().v;
                Reply::empty()
            }
            _ => Reply::empty(),
        })
        .await
        .unwrap();
    assert_eq!(access.end, EventEnd::Returned);
    let header = access.calls[3].decode::<pb::Kv>();
    assert_eq!(header.k, "X-Tenant");

    let saved = shared.lock().unwrap().clone().expect("stored");
    let log = conn
        .handle_event(1, "log", move |call| match call.method.as_str() {
            "kong.ctx.shared.get" => Reply::Frame(saved.encode_to_vec()),
            "kong.response.get_status" => Reply::message(&pb::Int { v: 204 }),
            _ => Reply::empty(),
        })
        .await
        .unwrap();
    assert_eq!(log.end, EventEnd::Returned);
    assert_eq!(
        log.methods(),
        [
            "kong.ctx.shared.get",
            "kong.response.get_status",
            "kong.log.set_serialize_value",
            "kong.log.notice",
        ]
    );
    let line = log.calls[3].decode::<pb::ListValue>();
    assert_eq!(
        line.values[0].kind,
        Some(pb::ValueKind::StringValue(
            "tenant=acme DELETE /orders/7 -> 204".into()
        ))
    );
}

#[tokio::test]
async fn log_without_access_does_nothing() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.start_instance(
        "rust-tenant-audit",
        r#"{"tenant_header":"x-tenant","default_tenant":"public","__seq__":1}"#,
    )
    .await
    .unwrap()
    .expect("started");
    // A nil Value, exactly as Kong sends it for a missing key.
    let log = conn
        .handle_event(1, "log", |_| Reply::Frame(vec![0x08, 0x01]))
        .await
        .unwrap();
    assert_eq!(log.methods(), ["kong.ctx.shared.get"]);
    assert_eq!(log.end, EventEnd::Returned);
}
