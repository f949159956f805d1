//! `kong.request().get_trace_context()` through the real server: the
//! request's W3C or B3 headers, in one round trip (none when the call layer
//! already holds the headers).

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use kong_pdk_test::{Request, TestEnv};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Schema)]
struct Traced {}

#[kong_pdk::plugin]
impl Plugin for Traced {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let seen = match kong.request().get_trace_context().await? {
            Some(t) => format!(
                "{:?} {} {} {:?}",
                t.format, t.trace_id, t.parent_id, t.sampled
            ),
            None => "none".into(),
        };
        // Already loaded: answered without a round trip.
        let again = kong.request().get_trace_context().await?;
        assert_eq!(again.is_some(), seen != "none");
        kong.response().set_header("x-trace", &seen).await?;
        Ok(())
    }
}

async fn trace(request: Request) -> (String, usize) {
    let mut env = TestEnv::new(request);
    let out = env.run::<Traced>(json!({})).await;
    let seen = out.response.header("x-trace").unwrap_or("").to_owned();
    (seen, out.round_trips_in(kong_pdk::Phase::Access))
}

#[tokio::test]
async fn w3c_then_b3_from_the_request_in_one_round_trip() {
    let w3c = Request::get("http://example.com/").header(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    let (seen, round_trips) = trace(w3c).await;
    assert_eq!(
        seen,
        "W3c 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 Some(true)"
    );
    // get_headers once, set_header once.
    assert_eq!(round_trips, 2);

    let b3 = Request::get("http://example.com/")
        .header("x-b3-traceid", "463ac35c9f6413ad")
        .header("x-b3-spanid", "a2fb4a1d1a96d312")
        .header("x-b3-sampled", "1");
    let (seen, _) = trace(b3).await;
    assert_eq!(
        seen,
        "B3Multi 0000000000000000463ac35c9f6413ad a2fb4a1d1a96d312 Some(true)"
    );

    let (seen, _) = trace(Request::get("http://example.com/")).await;
    assert_eq!(seen, "none");
}
