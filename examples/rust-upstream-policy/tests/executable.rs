//! The built executable tells Kong to speak MsgPack:1, and serves it.

use kong_pdk_test::rmpv::Value;
use kong_pdk_test::{MpEnd, MpReply, MsgPackConnection, PluginProcess};

const EXE: &str = env!("CARGO_BIN_EXE_rust-upstream-policy");

#[test]
fn dump_says_msgpack() {
    let out = std::process::Command::new(EXE)
        .arg("-dump")
        .output()
        .unwrap();
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dump["Protocol"], "MsgPack:1");
    assert_eq!(dump["Plugins"][0]["Name"], "rust-upstream-policy");
    assert_eq!(dump["Plugins"][0]["Phases"], serde_json::json!(["access"]));
}

#[tokio::test]
async fn serves_kong_over_msgpack_on_its_socket() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = MsgPackConnection::connect(server.socket()).await.unwrap();
    let id = conn
        .start_instance("rust-upstream-policy", r#"{"retries":2,"__seq__":1}"#)
        .await
        .unwrap();
    // Kong fills the schema's defaults before it starts an instance.
    let missing = id.unwrap_err();
    assert!(
        missing.contains("missing field `connect_timeout`"),
        "{missing}"
    );
    let config = r#"{"connect_timeout":1,"write_timeout":2,"read_timeout":3,"retries":2,
        "token_header":"authorization","__seq__":1}"#;
    let id = conn
        .start_instance("rust-upstream-policy", config)
        .await
        .unwrap()
        .unwrap();
    let result = conn
        .handle_event(id, "access", |_| MpReply::Value(None))
        .await
        .unwrap();
    assert_eq!(result.end, MpEnd::Returned);
    assert_eq!(
        result.methods(),
        [
            "kong.service.set_timeouts",
            "kong.service.set_retries",
            "kong.log.set_serialize_value"
        ]
    );
    assert_eq!(result.calls[1].args, [Value::from(2)]);
}
