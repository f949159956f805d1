//! Bad input and bad peers against the running `rust-hello` executable, over
//! its socket: each is refused with a clear log line and the server goes on
//! serving.

use std::time::Duration;

use kong_pdk_proto as pb;
use kong_pdk_test::{Call, Connection, EventEnd, PluginProcess, Reply};
use prost::Message;

const EXE: &str = env!("CARGO_BIN_EXE_rust-hello");
const CONFIG: &str = r#"{"message":"hi","__seq__":1,"__plugin_id":"p"}"#;

fn answer(call: &Call) -> Reply {
    match call.method.as_str() {
        "kong.request.get_header" => Reply::message(&pb::Str { v: "h".into() }),
        _ => Reply::empty(),
    }
}

async fn serves(server: &PluginProcess) {
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    let result = conn.handle_event(1, "access", answer).await.unwrap();
    assert_eq!(result.end, EventEnd::Returned, "{}", server.stderr());
}

async fn closed(conn: &mut Connection) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), conn.read_frame()).await,
        Ok(Ok(None))
    )
}

async fn wait_for_log(server: &PluginProcess, needle: &str) {
    if let Err(e) = server.wait_for_stderr(needle, Duration::from_secs(10)) {
        panic!("{e}");
    }
}

#[tokio::test]
async fn every_kind_of_bad_input_is_refused_and_logged() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.start_instance("rust-hello", CONFIG)
        .await
        .unwrap()
        .unwrap();
    serves(&server).await;

    // Malformed protobuf.
    let mut c = Connection::connect(server.socket()).await.unwrap();
    c.write_frame(&[0x0a, 0xff, 0xff]).await.unwrap();
    assert!(closed(&mut c).await);
    wait_for_log(&server, "malformed RpcCall").await;

    // A truncated frame, then the peer goes away.
    let mut c = Connection::connect(server.socket()).await.unwrap();
    c.write_raw(&[200, 0, 0, 0, 8, 2]).await.unwrap();
    drop(c);

    // A 4 GiB length header: refused before any allocation.
    let mut c = Connection::connect(server.socket()).await.unwrap();
    c.write_raw(&u32::MAX.to_le_bytes()).await.unwrap();
    assert!(closed(&mut c).await);
    wait_for_log(&server, "exceeds the maximum frame size").await;

    // An RpcCall whose command Kong's protocol does not have.
    let mut c = Connection::connect(server.socket()).await.unwrap();
    let mut unknown = pb::RpcCall {
        sequence: 5,
        call: None,
    }
    .encode_to_vec();
    unknown.extend([0xba, 0x02, 0x00]);
    c.write_frame(&unknown).await.unwrap();
    assert!(closed(&mut c).await);
    wait_for_log(&server, "holds no known command").await;

    // An unknown instance id.
    let mut c = Connection::connect(server.socket()).await.unwrap();
    let r = c.handle_event(77, "access", answer).await.unwrap();
    assert_eq!(r.end, EventEnd::ServerClosed);
    wait_for_log(&server, "no plugin instance 77").await;

    // An unknown phase name.
    let mut c = Connection::connect(server.socket()).await.unwrap();
    let r = c.handle_event(1, "body_filter", answer).await.unwrap();
    assert_eq!(r.end, EventEnd::ServerClosed);
    wait_for_log(&server, "unknown event name \"body_filter\"").await;

    // A config that is not JSON, and one with a wrong type.
    let mut c = Connection::connect(server.socket()).await.unwrap();
    assert!(
        c.start_instance("rust-hello", "{oops")
            .await
            .unwrap()
            .is_none()
    );
    wait_for_log(&server, "the config is not valid JSON").await;
    let mut c = Connection::connect(server.socket()).await.unwrap();
    let wrong = r#"{"message":42,"__seq__":9}"#;
    assert!(
        c.start_instance("rust-hello", wrong)
            .await
            .unwrap()
            .is_none()
    );
    wait_for_log(&server, "invalid type: integer `42`, expected a string").await;

    // Through all of that, the original instance still serves.
    serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_at_once() {
    let server = PluginProcess::start(EXE).unwrap();
    let mut conn = Connection::connect(server.socket()).await.unwrap();
    conn.start_instance("rust-hello", CONFIG)
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..1000_i64 {
        let socket = server.socket().to_owned();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&socket).await.unwrap();
            conn.set_sequence(n * 10);
            let r = conn.handle_event(1, "access", answer).await.unwrap();
            assert_eq!(r.end, EventEnd::Returned);
            conn
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        open.push(t.await.unwrap());
    }
    assert_eq!(open.len(), 1000);
    serves(&server).await;
}
