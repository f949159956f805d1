//! Bad peers and bad input: the server keeps serving, loses nothing and
//! leaks nothing (connection, event and instance counts return to where
//! they were).

use std::time::Duration;

use kong_pdk::server::{Server, ServerStats};
use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use kong_pdk_proto as pb;
use kong_pdk_test::{Connection, EventEnd, Reply, TestServer};
use prost::Message;
use serde::Deserialize;

#[derive(Debug, Deserialize, Schema)]
struct Robust {
    mode: String,
}

#[kong_pdk::plugin]
impl Plugin for Robust {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        match self.mode.as_str() {
            // Waits in a PDK call for Kong's answer.
            "call" => {
                kong.request().get_header("host").await?;
            }
            // Busy outside any PDK call.
            "sleep" => tokio::time::sleep(Duration::from_secs(30)).await,
            // Sends more than a socket buffer holds.
            "big" => {
                kong.service_request()
                    .set_raw_body(vec![b'x'; 8 * 1024 * 1024])
                    .await?;
            }
            _ => {
                kong.response().set_header("x-ok", "1").await?;
            }
        }
        Ok(())
    }
}

/// The in-process server plus this file's shortcuts.
struct Running(TestServer);

impl Running {
    async fn start(server: Server<Robust>) -> Running {
        Running(TestServer::start(server).await)
    }

    async fn default() -> Running {
        Running::start(Server::new("1.0.0", 1).name("robust")).await
    }

    fn stats(&self) -> &ServerStats {
        self.0.stats()
    }

    async fn connect(&self) -> Connection {
        self.0.connect().await
    }

    async fn instance(&self, seq: i64, mode: &str) -> i32 {
        let mut conn = self.connect().await;
        let config = format!(r#"{{"mode":"{mode}","__seq__":{seq}}}"#);
        conn.start_instance("robust", &config)
            .await
            .unwrap()
            .expect("started")
            .instance_id
    }

    /// Waits (up to 10 s) until `cond` holds for the server's counts.
    async fn until(&self, cond: impl Fn(&ServerStats) -> bool) {
        for _ in 0..1000 {
            if cond(self.stats()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached: {:?}", self.stats());
    }

    /// Waits until no connection and no event is left.
    async fn settles(&self) {
        for _ in 0..1000 {
            if self.stats().connections() == 0 && self.stats().events_in_flight() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "not settled: {} connections, {} events",
            self.stats().connections(),
            self.stats().events_in_flight()
        );
    }

    async fn still_serves(&self, id: i32) {
        let mut conn = self.connect().await;
        let ok = conn
            .handle_event(id, "access", |_| Reply::empty())
            .await
            .unwrap();
        assert_eq!(ok.end, EventEnd::Returned);
    }

    async fn stop(self) {
        self.0.stop().await.unwrap();
    }
}

#[tokio::test]
async fn kong_closing_mid_call_cancels_the_handler() {
    let server = Running::default().await;
    let id = server.instance(1, "call").await;
    let ok = server.instance(2, "ok").await;
    let mut conn = server.connect().await;
    conn.send_event(id, "access").await.unwrap();
    assert_eq!(
        conn.read_frame().await.unwrap().unwrap(),
        b"kong.request.get_header"
    );
    assert_eq!(server.stats().events_in_flight(), 1);
    drop(conn);
    server.settles().await;
    assert_eq!(server.stats().instances(), 2, "instances untouched");
    server.still_serves(ok).await;
    server.stop().await;
}

#[tokio::test]
async fn kong_closing_while_the_handler_is_busy_cancels_it() {
    let server = Running::default().await;
    let id = server.instance(1, "sleep").await;
    let mut conn = server.connect().await;
    conn.send_event(id, "access").await.unwrap();
    server.until(|s| s.events_in_flight() == 1).await;
    drop(conn);
    // Well before the 30 s sleep or the 50 s deadline.
    server.settles().await;
    server.stop().await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_cut_off_at_the_deadline() {
    let server = Running::start(
        Server::new("1.0.0", 1)
            .name("robust")
            .handler_timeout(Duration::from_millis(300)),
    )
    .await;
    let id = server.instance(1, "big").await;
    let ok = server.instance(2, "ok").await;
    let mut conn = server.connect().await;
    conn.send_event(id, "access").await.unwrap();
    // Read nothing: the 8 MiB body cannot be written; the deadline cancels it.
    server.until(|s| s.events_in_flight() == 0).await;
    server.still_serves(ok).await;
    drop(conn);
    server.settles().await;
    server.stop().await;
}

#[tokio::test]
async fn truncated_frames_and_garbage_lose_nothing() {
    let server = Running::default().await;
    let id = server.instance(1, "ok").await;
    // A length header cut short.
    let mut c = server.connect().await;
    c.write_raw(&[7, 0]).await.unwrap();
    drop(c);
    // A payload cut short.
    let mut c = server.connect().await;
    c.write_raw(&[10, 0, 0, 0, 8, 2]).await.unwrap();
    drop(c);
    // Not protobuf.
    let mut c = server.connect().await;
    c.write_frame(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
        .await
        .unwrap();
    assert!(c.read_frame().await.unwrap().is_none(), "closed");
    // A valid RpcCall with an unknown command number.
    let mut c = server.connect().await;
    let mut unknown = pb::RpcCall {
        sequence: 9,
        call: None,
    }
    .encode_to_vec();
    unknown.extend([0xba, 0x02, 0x00]); // field 39, empty message
    c.write_frame(&unknown).await.unwrap();
    assert!(c.read_frame().await.unwrap().is_none(), "closed");
    // A 4 GiB length header: refused without allocating it.
    let mut c = server.connect().await;
    c.write_raw(&u32::MAX.to_le_bytes()).await.unwrap();
    assert!(c.read_frame().await.unwrap().is_none(), "closed");
    server.settles().await;
    server.still_serves(id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections() {
    let server = Running::default().await;
    let id = server.instance(1, "call").await;
    let mut conns = Vec::new();
    for _ in 0..1000 {
        conns.push(server.connect().await);
    }
    // Every connection has an event waiting on Kong at the same time.
    for conn in &mut conns {
        conn.send_event(id, "access").await.unwrap();
    }
    for conn in &mut conns {
        assert_eq!(
            conn.read_frame().await.unwrap().unwrap(),
            b"kong.request.get_header"
        );
        conn.read_frame().await.unwrap().unwrap();
    }
    assert_eq!(server.stats().events_in_flight(), 1000);
    for conn in &mut conns {
        conn.write_frame(&pb::Str { v: "h".into() }.encode_to_vec())
            .await
            .unwrap();
    }
    for conn in &mut conns {
        assert_eq!(conn.read_frame().await.unwrap().unwrap(), b"");
        conn.read_frame().await.unwrap().unwrap();
    }
    assert_eq!(server.stats().events_in_flight(), 0);
    drop(conns);
    server.settles().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_churn_leaves_nothing_behind() {
    let server = Running::default().await;
    let mut conn = server.connect().await;
    for round in 0..2000_i64 {
        let seq = 100 + round;
        let config = format!(r#"{{"mode":"ok","__seq__":{seq}}}"#);
        let id = conn
            .start_instance("robust", &config)
            .await
            .unwrap()
            .unwrap()
            .instance_id;
        for _ in 0..4 {
            let r = conn
                .handle_event(id, "access", |_| Reply::empty())
                .await
                .unwrap();
            assert_eq!(r.end, EventEnd::Returned);
        }
        conn.close_instance(id).await.unwrap().unwrap();
    }
    assert_eq!(server.stats().instances(), 0);
    drop(conn);
    server.settles().await;
    server.stop().await;
}

/// Fails the way its config says, in whichever phase Kong calls.
#[derive(Debug, Deserialize, Schema)]
struct Faulty {
    how: String,
}

impl Faulty {
    async fn fail(&self, kong: &mut Kong) -> PhaseResult {
        kong.request().get_header("x").await?;
        match self.how.as_str() {
            "error" => Err("it went wrong".into()),
            "panic" => panic!("it blew up"),
            _ => Ok(()),
        }
    }
}

#[kong_pdk::plugin]
impl Plugin for Faulty {
    async fn certificate(&self, kong: &mut Kong) -> PhaseResult {
        self.fail(kong).await
    }
    async fn rewrite(&self, kong: &mut Kong) -> PhaseResult {
        self.fail(kong).await
    }
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        self.fail(kong).await
    }
    async fn response(&self, kong: &mut Kong) -> PhaseResult {
        self.fail(kong).await
    }
    async fn preread(&self, kong: &mut Kong) -> PhaseResult {
        self.fail(kong).await
    }
    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        self.fail(kong).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_panics_in_every_phase_take_kongs_path_and_hurt_no_one() {
    let server = TestServer::start(Server::<Faulty>::new("1.0.0", 1).name("faulty")).await;
    let start = |how: &'static str, seq: i64| {
        let server = &server;
        async move {
            let mut conn = server.connect().await;
            let config = format!(r#"{{"how":"{how}","__seq__":{seq}}}"#);
            conn.start_instance("faulty", &config)
                .await
                .unwrap()
                .unwrap()
                .instance_id
        }
    };
    let error = start("error", 1).await;
    let panic = start("panic", 2).await;
    let fine = start("fine", 3).await;
    let answer = |_: &kong_pdk_test::Call| Reply::message(&pb::Str { v: "value".into() });
    for phase in [
        "certificate",
        "rewrite",
        "access",
        "response",
        "preread",
        "log",
    ] {
        // A healthy event runs on its own connection at the same time.
        let mut busy = server.connect().await;
        busy.send_event(fine, phase).await.unwrap();
        assert_eq!(
            busy.read_frame().await.unwrap().unwrap(),
            b"kong.request.get_header"
        );
        for id in [error, panic] {
            let mut conn = server.connect().await;
            let result = conn.handle_event(id, phase, answer).await.unwrap();
            assert_eq!(
                result.methods()[..2],
                ["kong.request.get_header", "kong.log.err"]
            );
            if matches!(phase, "certificate" | "log") {
                assert_eq!(result.end, EventEnd::Returned, "{phase}: only logged");
            } else {
                let EventEnd::Exit(exit) = &result.end else {
                    panic!("{phase}: no 500: {:?}", result.end)
                };
                assert_eq!(exit.status, 500, "{phase}");
            }
        }
        // The healthy event was not disturbed.
        busy.read_frame().await.unwrap().unwrap();
        busy.write_frame(&pb::Str { v: "v".into() }.encode_to_vec())
            .await
            .unwrap();
        assert_eq!(busy.read_frame().await.unwrap().unwrap(), b"", "{phase}");
        let ret = busy.read_frame().await.unwrap().unwrap();
        assert!(pb::RpcReturn::decode(&ret[..]).unwrap().r#return.is_none());
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn half_a_frame_is_dropped_after_the_deadline_while_idle_connections_stay() {
    let server = Running::start(
        Server::new("1.0.0", 1)
            .name("robust")
            .frame_timeout(Duration::from_millis(300)),
    )
    .await;
    let ok = server.instance(1, "ok").await;
    // A pooled connection, idle for longer than the deadline.
    let mut idle = server.connect().await;
    idle.handle_event(ok, "access", |_| Reply::empty())
        .await
        .unwrap();
    // A peer that sends part of a frame and stops.
    let mut stalled = server.connect().await;
    stalled.write_raw(&[40, 0, 0, 0, 0x0a, 0x01]).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read_frame()).await;
    assert!(
        matches!(closed, Ok(Ok(None))),
        "the stalled connection is closed: {closed:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The idle one still serves, after more than the deadline between frames.
    let result = idle
        .handle_event(ok, "access", |_| Reply::empty())
        .await
        .unwrap();
    assert_eq!(result.end, EventEnd::Returned);
    server.until(|s| s.connections() == 1).await;
    drop(idle);
    server.settles().await;
    server.stop().await;
}
