//! The call layer over the real socket: the frames Kong receives when
//! writes wait and are sent (before a read, before exit, when the handler
//! returns, fails or panics), a prefetch's answer, and the server's counts
//! of calls asked for and round trips made.

use kong_pdk::server::Server;
use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use kong_pdk_proto as pb;
use kong_pdk_test::{Call, EventEnd, Reply, TestServer};
use serde::Deserialize;

#[derive(Debug, Deserialize, Schema)]
struct Writer {
    mode: String,
}

#[kong_pdk::plugin]
impl Plugin for Writer {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        kong.response().set_header("x-1", "a").await?;
        kong.response().set_header("x-2", "b").await?;
        match self.mode.as_str() {
            "read" => {
                let host = kong.request().get_header("host").await?;
                let agent = kong.request().get_header("user-agent").await?;
                let again = kong.request().get_header("host").await?;
                kong.response()
                    .set_header("x-seen", &format!("{host} {agent} {again}"))
                    .await?;
            }
            "exit" => kong.response().exit_status(401).await?,
            "error" => return Err("refused".into()),
            "panic" => panic!("boom"),
            _ => {}
        }
        Ok(())
    }
}

async fn server() -> TestServer {
    TestServer::start(Server::<Writer>::new("1.0.0", 1).name("writer")).await
}

fn kong(call: &Call) -> Reply {
    let text = |v: &str| Reply::message(&pb::Str { v: v.into() });
    match call.method.as_str() {
        "kong.request.get_header" => text("example.com"),
        "kong.request.get_headers" => {
            let mut st = pb::Struct::default();
            for (k, v) in [("host", "example.com"), ("user-agent", "curl")] {
                let v = pb::Value {
                    kind: Some(pb::ValueKind::StringValue(v.into())),
                };
                st.fields.insert(k.into(), v);
            }
            Reply::message(&st)
        }
        _ => Reply::empty(),
    }
}

fn header_names(call: &Call) -> Vec<String> {
    call.decode::<pb::Struct>().fields.into_keys().collect()
}

async fn event(mode: &str) -> (kong_pdk_test::EventResult, TestServer) {
    let server = server().await;
    let mut conn = server.connect().await;
    let config = format!(r#"{{"mode":"{mode}","__seq__":1}}"#);
    conn.start_instance("writer", &config)
        .await
        .unwrap()
        .unwrap();
    let result = conn.handle_event(1, "access", kong).await.unwrap();
    (result, server)
}

#[tokio::test]
async fn waiting_writes_go_when_the_handler_returns() {
    let (result, server) = event("none").await;
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(result.methods(), ["kong.response.set_headers"]);
    assert_eq!(header_names(&result.calls[0]), ["x-1", "x-2"]);
    let stats = server.stats();
    assert_eq!((stats.pdk_calls(), stats.round_trips()), (2, 1));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn waiting_writes_go_before_a_read_and_reads_use_the_prefetched_table() {
    let (result, server) = event("read").await;
    assert_eq!(result.end, EventEnd::Returned);
    assert_eq!(
        result.methods(),
        [
            "kong.response.set_headers",
            "kong.request.get_header",
            "kong.request.get_headers",
            "kong.response.set_header"
        ]
    );
    let seen = result.calls[3].decode::<pb::Kv>();
    assert_eq!(
        seen.v.unwrap().kind,
        Some(pb::ValueKind::StringValue(
            "example.com curl example.com".into()
        ))
    );
    let stats = server.stats();
    assert_eq!((stats.pdk_calls(), stats.round_trips()), (6, 4));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn waiting_writes_go_before_exit() {
    let (result, server) = event("exit").await;
    assert_eq!(
        result.methods(),
        ["kong.response.set_headers", "kong.response.exit"]
    );
    assert!(matches!(result.end, EventEnd::Exit(ref e) if e.status == 401));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn waiting_writes_go_before_a_failure_is_reported() {
    for mode in ["error", "panic"] {
        let (result, server) = event(mode).await;
        assert_eq!(
            result.methods(),
            [
                "kong.response.set_headers",
                "kong.log.err",
                "kong.response.exit"
            ],
            "{mode}"
        );
        assert!(
            matches!(result.end, EventEnd::Exit(ref e) if e.status == 500),
            "{mode}"
        );
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn turned_off_the_server_sends_every_call_as_written() {
    let server = TestServer::start(
        Server::<Writer>::new("1.0.0", 1)
            .name("writer")
            .call_layer(false),
    )
    .await;
    let mut conn = server.connect().await;
    conn.start_instance("writer", r#"{"mode":"read","__seq__":1}"#)
        .await
        .unwrap()
        .unwrap();
    let result = conn.handle_event(1, "access", kong).await.unwrap();
    assert_eq!(
        result.methods(),
        [
            "kong.response.set_header",
            "kong.response.set_header",
            "kong.request.get_header",
            "kong.request.get_header",
            "kong.request.get_header",
            "kong.response.set_header"
        ]
    );
    let stats = server.stats();
    assert_eq!((stats.pdk_calls(), stats.round_trips()), (6, 6));
    server.stop().await.unwrap();
}
