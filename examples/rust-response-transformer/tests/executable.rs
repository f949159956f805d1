//! The built executable, driven over its socket the way Kong drives it.

use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, EventEnd, PluginProcess, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_rust-response-transformer");
const CONFIG: &str = r#"{"add_json":{"served_by":"rust"},"remove_json":["secret"],"status_header":"x-upstream-status","__seq__":1}"#;

fn upstream(content_type: &'static str, body: &'static str) -> impl FnMut(&Call) -> Reply {
    move |call| match call.method.as_str() {
        "kong.service.response.get_status" => Reply::message(&pb::Int { v: 201 }),
        "kong.service.response.get_header" => {
            let name = call.decode::<pb::Str>().v.to_ascii_lowercase();
            let v = if name == "content-type" {
                content_type
            } else {
                ""
            };
            Reply::message(&pb::Str { v: v.into() })
        }
        "kong.service.response.get_raw_body" => Reply::message(&pb::ByteString {
            v: body.as_bytes().to_vec(),
        }),
        _ => Reply::empty(),
    }
}

async fn start() -> (PluginProcess, Connection) {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.start_instance("rust-response-transformer", CONFIG)
        .await
        .unwrap()
        .expect("started");
    (server, conn)
}

#[tokio::test]
async fn replaces_a_json_body_through_exit() {
    let (_server, mut conn) = start().await;
    let result = conn
        .handle_event(
            1,
            "response",
            upstream("application/json", r#"{"id":7,"secret":"s"}"#),
        )
        .await
        .unwrap();
    let EventEnd::Exit(exit) = result.end else {
        panic!("no exit: {:?}", result.end)
    };
    assert_eq!(exit.status, 201);
    let body: serde_json::Value = serde_json::from_slice(&exit.body).unwrap();
    assert_eq!(body, serde_json::json!({"id": 7, "served_by": "rust"}));
    let kv = result.calls[2].decode::<pb::Kv>();
    assert_eq!(kv.k, "x-upstream-status");
}

#[tokio::test]
async fn leaves_other_bodies_alone() {
    let (_server, mut conn) = start().await;
    let result = conn
        .handle_event(1, "response", upstream("text/plain", "hello"))
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(
        result.methods(),
        [
            "kong.service.response.get_status",
            "kong.service.response.get_header",
            "kong.response.set_header",
        ]
    );
}

#[test]
fn declares_only_the_response_phase() {
    let out = std::process::Command::new(EXE)
        .arg("-dump")
        .output()
        .unwrap();
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        dump["Plugins"][0]["Phases"],
        serde_json::json!(["response"])
    );
}
