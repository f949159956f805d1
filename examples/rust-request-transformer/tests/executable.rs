//! The built executable, driven over its socket the way Kong drives it.

use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, EventEnd, PluginProcess, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_rust-request-transformer");

fn sv(s: &str) -> pb::Value {
    pb::Value {
        kind: Some(pb::ValueKind::StringValue(s.into())),
    }
}

#[tokio::test]
async fn rewrites_the_upstream_request() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let config = r#"{"path":"/v2/items","method":"POST","set_headers":["x-added: yes"],"remove_headers":["cookie"],"add_query":{"b":"2"},"remove_query":["drop"],"body":"{\"x\":1}","target":{"host":"10.1.2.3","port":9000},"__seq__":4}"#;
    conn.start_instance("rust-request-transformer", config)
        .await
        .unwrap()
        .expect("started");
    let result = conn
        .handle_event(4, "access", |call| match call.method.as_str() {
            "kong.request.get_query" => Reply::message(&pb::Struct {
                fields: [("a".to_owned(), sv("1")), ("drop".to_owned(), sv("x"))]
                    .into_iter()
                    .collect(),
            }),
            _ => Reply::empty(),
        })
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(
        result.methods(),
        [
            "kong.service.request.set_path",
            "kong.service.request.set_method",
            "kong.request.get_query",
            "kong.service.request.set_query",
            "kong.service.request.clear_header",
            "kong.service.request.set_header",
            "kong.service.request.set_raw_body",
            "kong.service.set_target",
        ]
    );
    assert_eq!(result.calls[0].decode::<pb::Str>().v, "/v2/items");
    let query = result.calls[3].decode::<pb::Struct>();
    assert_eq!(query.fields.keys().collect::<Vec<_>>(), ["a", "b"]);
    let header = result.calls[5].decode::<pb::Kv>();
    assert_eq!(header.k, "x-added");
    assert_eq!(header.v, Some(sv("yes")));
    assert_eq!(result.calls[6].decode::<pb::ByteString>().v, br#"{"x":1}"#);
    let target = result.calls[7].decode::<pb::Target>();
    assert_eq!((target.host.as_str(), target.port), ("10.1.2.3", 9000));
}

#[tokio::test]
async fn a_malformed_header_rule_fails_the_instance_start() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let refused = conn
        .start_instance(
            "rust-request-transformer",
            r#"{"set_headers":["no-colon"],"__seq__":1}"#,
        )
        .await
        .unwrap();
    assert!(refused.is_none());
    server
        .wait_for_stderr("is not name:value", std::time::Duration::from_secs(10))
        .unwrap();
}
