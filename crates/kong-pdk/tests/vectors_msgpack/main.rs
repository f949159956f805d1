//! Replays the real-Kong MsgPack:1 recordings (Kong 3.10 ⇄ Kong's Python
//! PDK, `recordings/`) against our server, with each Python plugin ported
//! to Rust (`plugins.rs`).

mod plugins;
#[path = "../support/recordings.rs"]
mod recordings;
mod replay;

use std::time::Duration;

use kong_pdk::Plugin;
use kong_pdk::server::Server;
use kong_pdk_test::TestServer;
use plugins::*;
use replay::{Ids, replay};

/// Our server for `P` under the recording's plugin name, with the call
/// layer off (the Python PDK sends every call as written).
async fn start<P: Plugin>(name: &str) -> TestServer {
    TestServer::start(
        Server::<P>::new("0.1.0", 10)
            .name(name)
            .call_layer(false)
            .handler_timeout(Duration::from_millis(500)),
    )
    .await
}

#[tokio::test]
async fn hello_first_then_second_request_on_the_same_server() {
    let server = start::<RsHello>("py-hello").await;
    let mut ids = Ids::default();
    replay(server.socket(), "hello-first-request", &mut ids).await;
    replay(server.socket(), "hello-second-request", &mut ids).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn probe_getters_typed_steps_and_generic_calls() {
    let server = start::<RsProbe>("py-kbprobe").await;
    replay(server.socket(), "probe-getters", &mut Ids::default()).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn exit_in_access_then_log_on_the_same_connection() {
    let server = start::<RsExit>("py-kbexit").await;
    replay(server.socket(), "exit-access", &mut Ids::default()).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn response_phase_with_an_empty_header_map_and_a_binary_body() {
    let server = start::<RsResp>("py-kbresp").await;
    replay(server.socket(), "response-phase", &mut Ids::default()).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn nil_results_unknown_names_and_a_call_kong_never_answers() {
    let server = start::<RsWrong>("py-kbwrong").await;
    let open = replay(server.socket(), "error-paths", &mut Ids::default()).await;
    // Kong refused the last call and will never answer it: the handler
    // deadline ends the event instead of leaving it pending for ever.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.stats().events_in_flight() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the event never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(open);
    server.stop().await.unwrap();
}

#[test]
fn the_dump_tells_kong_to_speak_msgpack() {
    let dump: serde_json::Value = serde_json::from_str(
        &Server::<RsHello>::new("0.1.0", 10)
            .name("py-hello")
            .dump(std::path::Path::new("/kong")),
    )
    .unwrap();
    assert_eq!(dump["Protocol"], "MsgPack:1");
    assert_eq!(dump["Plugins"][0]["Name"], "py-hello");
}

/// Bad input on one connection closes that connection (with a log line)
/// and nothing else: the next connection is served.
#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(
        Server::<RsHello>::new("0.1.0", 10)
            .name("py-hello")
            .max_frame_size(1024),
    )
    .await;
    let bad: [&[u8]; 4] = [
        // The reserved marker.
        &[0xc1],
        // A whole value that is not a request.
        &[0xa5, b'h', b'e', b'l', b'l', b'o'],
        // An array announcing more elements than the size limit allows.
        &[0xdd, 0x00, 0x10, 0x00, 0x00],
        // A request whose method is not a string.
        &[0x94, 0x00, 0x01, 0x07, 0x90],
    ];
    for bytes in bad {
        let mut conn = tokio::net::UnixStream::connect(server.socket())
            .await
            .unwrap();
        conn.write_all(bytes).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection");
        assert!(read.is_ok() && rest.is_empty(), "{bytes:?}: {rest:?}");
    }
    // The server still serves.
    let mut conn = kong_pdk_test::MsgPackConnection::connect(server.socket())
        .await
        .unwrap();
    let started = conn
        .start_instance("py-hello", r#"{"message":"ok","__seq__":1}"#)
        .await
        .unwrap();
    assert!(started.is_ok(), "{started:?}");
    server.stop().await.unwrap();
}
