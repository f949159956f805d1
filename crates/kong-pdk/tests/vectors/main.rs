//! Replays the real-Kong recordings (`recordings/`) against our
//! server, with each scenario's go-pdk plugin ported to Rust: byte for byte
//! with the call layer off, and with it on by the state Kong ends in.

mod plugins;
#[path = "../support/recordings.rs"]
mod recordings;
mod replay;

use plugins::*;
use replay::{replay, replay_semantic, start};

#[tokio::test]
async fn hello_first_then_second_request_on_the_same_server() {
    let server = start::<GoHello>("go-hello", "0.2.0", 1, false).await;
    replay(&server, "hello-first-request").await;
    replay(&server, "hello-second-request").await;
    server.stop().await.unwrap();
    let server = start::<GoHello>("go-hello", "0.2.0", 1, true).await;
    replay_semantic(&server, "hello-first-request").await;
    replay_semantic(&server, "hello-second-request").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn plugin_restart_unknown_instance_then_restart() {
    let server = start::<GoHello>("go-hello", "0.2.0", 1, false).await;
    replay(&server, "plugin-restart").await;
    server.stop().await.unwrap();
    let server = start::<GoHello>("go-hello", "0.2.0", 1, true).await;
    replay_semantic(&server, "plugin-restart").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn log_phase_with_saved_request_data() {
    let server = start::<GoHelloFixture>("go-hello", "0.1.0", 1, false).await;
    replay(&server, "log-phase").await;
    server.stop().await.unwrap();
    let server = start::<GoHelloFixture>("go-hello", "0.1.0", 1, true).await;
    replay_semantic(&server, "log-phase").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn probe_getters() {
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, false).await;
    replay(&server, "probe-getters").await;
    server.stop().await.unwrap();
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, true).await;
    replay_semantic(&server, "probe-getters").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn exit_in_access() {
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, false).await;
    replay(&server, "exit-access").await;
    server.stop().await.unwrap();
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, true).await;
    replay_semantic(&server, "exit-access").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn exit_in_rewrite() {
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, false).await;
    replay(&server, "exit-rewrite").await;
    server.stop().await.unwrap();
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, true).await;
    replay_semantic(&server, "exit-rewrite").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_setters() {
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, false).await;
    replay(&server, "upstream-setters").await;
    server.stop().await.unwrap();
    let server = start::<GoKbtest>("go-kbtest", "0.1.0", 10, true).await;
    replay_semantic(&server, "upstream-setters").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn response_phase() {
    let server = start::<GoKbresp>("go-kbresp", "0.1.0", 5, false).await;
    replay(&server, "response-phase").await;
    server.stop().await.unwrap();
    let server = start::<GoKbresp>("go-kbresp", "0.1.0", 5, true).await;
    replay_semantic(&server, "response-phase").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn exit_in_response_phase() {
    let server = start::<GoKbresp>("go-kbresp", "0.1.0", 5, false).await;
    replay(&server, "response-exit").await;
    server.stop().await.unwrap();
    let server = start::<GoKbresp>("go-kbresp", "0.1.0", 5, true).await;
    replay_semantic(&server, "response-exit").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn phase_not_allowed() {
    let server = start::<GoWrongPhase>("go-wrong-phase", "0.1.0", 1, false).await;
    replay(&server, "phase-not-allowed").await;
    server.stop().await.unwrap();
    let server = start::<GoWrongPhase>("go-wrong-phase", "0.1.0", 1, true).await;
    replay_semantic(&server, "phase-not-allowed").await;
    server.stop().await.unwrap();
    assert!(
        WRONG_PHASE_CHECKED.load(std::sync::atomic::Ordering::SeqCst),
        "the handler saw a nil Value, an empty String, then ConnectionClosed and ConnectionBroken"
    );
}
