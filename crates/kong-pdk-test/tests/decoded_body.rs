//! `get_decoded_body` and `replace_body` through the test kit, over both
//! protocols: the same client response and the same round trips, for each
//! coding, for identity, for a body over the limit and for an unknown coding.

use kong_pdk::{Error, Kong, PhaseResult, Plugin, Protocol, Schema};
use kong_pdk_test::{Outcome, Request, TestEnv, UpstreamResponse};
use serde::Deserialize;

/// Upper-cases the decoded body; `identity` sends it uncompressed, `max`
/// sets the decode limit. Errors go to the client as a 502 with their text.
#[derive(Deserialize, Schema)]
struct Upper {
    #[serde(default)]
    identity: bool,
    #[serde(default)]
    max: Option<u64>,
}

async fn upper(config: &Upper, kong: &mut Kong) -> PhaseResult {
    let status = kong.service_response().get_status().await?;
    let decoded = match config.max {
        Some(max) => {
            kong.service_response()
                .get_decoded_body_max(max as usize)
                .await
        }
        None => kong.service_response().get_decoded_body().await,
    };
    let mut body = match decoded {
        Ok(body) => body,
        Err(e @ Error::ContentEncoding { .. }) => {
            kong.response().exit(502, e.to_string(), []).await?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    body.data.make_ascii_uppercase();
    if config.identity {
        body = body.send_identity();
    }
    kong.response()
        .replace_body(status, body, [("Content-Length", "1"), ("X-Edited", "1")])
        .await?;
    Ok(())
}

macro_rules! upper_plugin {
    ($name:ident, $protocol:expr) => {
        #[derive(Deserialize, Schema)]
        #[serde(transparent)]
        struct $name(Upper);

        #[kong_pdk::plugin]
        impl Plugin for $name {
            const PROTOCOL: Protocol = $protocol;
            async fn response(&self, kong: &mut Kong) -> PhaseResult {
                upper(&self.0, kong).await
            }
        }
    };
}
upper_plugin!(OverProtobuf, Protocol::ProtoBuf);
upper_plugin!(OverMsgPack, Protocol::MsgPack);

/// Runs the plugin in both protocols on `upstream`; both outcomes.
async fn both(upstream: UpstreamResponse, config: serde_json::Value) -> [Outcome; 2] {
    let env = || TestEnv::new(Request::get("http://api.test/")).upstream_response(upstream.clone());
    let pb = env().run::<OverProtobuf>(config.clone()).await;
    let mp = env().run::<OverMsgPack>(config).await;
    for out in [&pb, &mp] {
        assert!(out.kong_errors.is_empty(), "{:?}", out.kong_errors);
    }
    assert_eq!(pb.response.status, mp.response.status);
    assert_eq!(pb.response.body, mp.response.body);
    assert_eq!(pb.response.headers, mp.response.headers);
    let methods = |o: &Outcome| o.calls.iter().map(|c| c.method.clone()).collect::<Vec<_>>();
    assert_eq!(methods(&pb), methods(&mp));
    [pb, mp]
}

fn upstream(encoding: &str) -> UpstreamResponse {
    UpstreamResponse::new(201)
        .header("content-type", "text/plain")
        .header("x-up", "kept")
        .body("hello, compressed world")
        .content_encoding(encoding)
}

#[tokio::test]
async fn each_coding_is_decoded_and_the_edit_is_sent_back_in_it() {
    for encoding in ["gzip", "deflate", "br", "gzip, br"] {
        let [out, _] = both(upstream(encoding), serde_json::json!({})).await;
        let res = &out.response;
        assert_eq!(res.status, 201, "{encoding}");
        assert_eq!(res.header("content-encoding"), Some(encoding));
        let length = res.body.len().to_string();
        assert_eq!(res.header("content-length"), Some(&*length), "{encoding}");
        assert_eq!(res.header("x-up"), Some("kept"));
        assert_eq!(res.header("x-edited"), Some("1"));
        assert_eq!(res.decoded_body().unwrap(), b"HELLO, COMPRESSED WORLD");
        let methods: Vec<&str> = out.calls.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(
            methods,
            [
                "kong.service.response.get_status",
                "kong.service.response.get_header",
                "kong.service.response.get_raw_body",
                "kong.response.exit",
            ],
            "{encoding}: no call beyond the header and the raw body"
        );
    }
}

#[tokio::test]
async fn identity_removes_content_encoding_with_one_more_call() {
    let [out, _] = both(upstream("br"), serde_json::json!({"identity": true})).await;
    let res = &out.response;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.body, b"HELLO, COMPRESSED WORLD");
    assert_eq!(res.header("content-length"), Some("23"));
    assert!(
        out.calls
            .iter()
            .any(|c| c.method == "kong.response.clear_header")
    );

    // An identity upstream needs no clearing.
    let plain = UpstreamResponse::new(200).body("plain");
    let [out, _] = both(plain, serde_json::json!({"identity": true})).await;
    assert_eq!(out.response.body, b"PLAIN");
    assert!(
        !out.calls
            .iter()
            .any(|c| c.method == "kong.response.clear_header")
    );
}

#[tokio::test]
async fn over_the_limit_or_unknown_is_an_error_that_says_which() {
    let big = UpstreamResponse::new(200)
        .body(vec![b'a'; 100_000])
        .content_encoding("gzip");
    let [out, _] = both(big.clone(), serde_json::json!({"max": 99_999})).await;
    assert_eq!(out.response.status, 502);
    assert!(
        out.response
            .body_text()
            .contains("larger than the limit of 99999 bytes"),
        "{}",
        out.response.body_text()
    );
    let [out, _] = both(big, serde_json::json!({"max": 100_000})).await;
    assert_eq!(out.response.status, 200);

    let zstd = UpstreamResponse::new(200)
        .header("content-encoding", "zstd")
        .body("?");
    let [out, _] = both(zstd, serde_json::json!({})).await;
    assert_eq!(out.response.status, 502);
    assert!(
        out.response
            .body_text()
            .contains("unsupported Content-Encoding \"zstd\""),
        "{}",
        out.response.body_text()
    );

    let corrupt = UpstreamResponse::new(200)
        .header("content-encoding", "gzip")
        .body("not gzip");
    let [out, _] = both(corrupt, serde_json::json!({})).await;
    assert_eq!(out.response.status, 502);
    assert!(out.response.body_text().contains("not valid gzip"));
}
