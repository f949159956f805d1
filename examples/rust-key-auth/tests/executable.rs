//! The built executable, driven over its socket the way Kong drives it.

use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, EventEnd, PluginProcess, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_rust-key-auth");
const CONFIG: &str = r#"{"key_names":["apikey","x-api-key"],"keys":[{"key":"secret-key-1","consumer":"ann"}],"hide_credentials":true,"__seq__":1,"__plugin_id":"p","__key__":"k","__ws_id":"w","route_id":null}"#;

fn kong(header: &'static str) -> impl FnMut(&Call) -> Reply {
    move |call| match call.method.as_str() {
        "kong.request.get_header" => {
            let name = call.decode::<pb::Str>().v;
            let v = if name == "x-api-key" { header } else { "" };
            Reply::message(&pb::Str { v: v.into() })
        }
        // The call layer fetches all headers when a second one is read.
        "kong.request.get_headers" => {
            let mut headers = pb::Struct::default();
            if !header.is_empty() {
                let v = pb::Value {
                    kind: Some(pb::ValueKind::StringValue(header.into())),
                };
                headers.fields.insert("x-api-key".into(), v);
            }
            Reply::message(&headers)
        }
        "kong.client.load_consumer" => Reply::message(&pb::Consumer {
            id: "c-1".into(),
            username: call.decode::<pb::ConsumerSpec>().id,
            ..Default::default()
        }),
        _ => Reply::empty(),
    }
}

async fn start() -> (PluginProcess, Connection) {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.start_instance("rust-key-auth", CONFIG)
        .await
        .unwrap()
        .expect("started");
    (server, conn)
}

#[tokio::test]
async fn valid_key_authenticates_the_consumer_and_hides_the_key() {
    let (_server, mut conn) = start().await;
    let result = conn
        .handle_event(1, "access", kong("secret-key-1"))
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(
        result.methods(),
        [
            // `apikey`, then all headers at the second name (`x-api-key`).
            "kong.request.get_header",
            "kong.request.get_headers",
            "kong.client.load_consumer",
            "kong.client.authenticate",
            // Both upstream headers in one call.
            "kong.service.request.set_headers",
            "kong.service.request.clear_header",
        ]
    );
    let spec = result.calls[2].decode::<pb::ConsumerSpec>();
    assert_eq!((spec.id.as_str(), spec.by_username), ("ann", true));
    let auth = result.calls[3].decode::<pb::AuthenticateArgs>();
    assert_eq!(auth.consumer.unwrap().id, "c-1");
    assert_eq!(auth.credential.unwrap().consumer_id, "c-1");
    let upstream = result.calls[4].decode::<pb::Struct>();
    assert_eq!(upstream.fields.len(), 2);
    assert!(upstream.fields.contains_key("X-Consumer-Username"));
    assert_eq!(result.calls[5].decode::<pb::Str>().v, "x-api-key");
}

#[tokio::test]
async fn missing_or_wrong_key_exits_401_with_json() {
    let (_server, mut conn) = start().await;
    for (key, message) in [
        ("", "No API key found in request"),
        ("secret-key-2", "Invalid authentication credentials"),
    ] {
        let result = conn.handle_event(1, "access", kong(key)).await.unwrap();
        let EventEnd::Exit(exit) = result.end else {
            panic!("no exit for {key:?}: {:?}", result.end)
        };
        assert_eq!(exit.status, 401);
        let body: serde_json::Value = serde_json::from_slice(&exit.body).unwrap();
        assert_eq!(body["message"], message);
        let headers = exit.headers.unwrap();
        assert!(headers.fields.contains_key("WWW-Authenticate"));
        assert!(headers.fields.contains_key("Content-Type"));
        // Kong closes the connection after an exit; take a new one.
        conn = Connection::connect(_server.socket()).await.unwrap();
    }
}

#[test]
fn the_schema_marks_keys_as_secrets() {
    let out = std::process::Command::new(EXE)
        .arg("-dump")
        .output()
        .unwrap();
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = &dump["Plugins"][0]["Schema"]["fields"][0]["config"]["fields"];
    let keys = &fields[1]["keys"]["elements"]["fields"][0]["key"];
    assert_eq!(keys["len_min"], 8);
    assert_eq!(keys["encrypted"], true);
    assert_eq!(keys["referenceable"], true);
}
