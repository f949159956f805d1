//! Every one of Kong's 74 PDK methods, called through kong-pdk in a phase
//! where Kong allows it, gets an answer from the simulated Kong's model —
//! over ProtoBuf:1 and, with the same typed results, over MsgPack:1.

use std::cell::RefCell;
use std::collections::BTreeSet;

use kong_pdk::entities::{AuthenticatedCredential, Consumer};
use kong_pdk::{Headers, Kong, PhaseResult, Plugin, Protocol, Query, Schema};
use kong_pdk_test::{CallOutcome, Request, TestEnv, UpstreamResponse, pb};
use serde::Deserialize;
use serde_json::json;

thread_local! {
    // Per test: each test's runtime, server included, runs on its thread.
    static RESULTS: RefCell<Vec<(&'static str, String)>> = const { RefCell::new(Vec::new()) };
}

fn record<T: std::fmt::Debug>(method: &'static str, r: kong_pdk::Result<T>) {
    let text = match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("ERROR {e}"),
    };
    RESULTS.with(|r| r.borrow_mut().push((method, text)));
}

/// The same plugin in each protocol.
macro_rules! everything {
    ($name:ident, $protocol:expr) => {
        #[derive(Deserialize, Schema)]
        struct $name {}

        #[kong_pdk::plugin]
        impl Plugin for $name {
            const PROTOCOL: Protocol = $protocol;

            async fn access(&self, k: &mut Kong) -> PhaseResult {
                everything_access(k).await
            }

            async fn response(&self, k: &mut Kong) -> PhaseResult {
                everything_response(k).await
            }

            async fn log(&self, k: &mut Kong) -> PhaseResult {
                everything_log(k).await
            }
        }
    };
}

everything!(Everything, Protocol::ProtoBuf);
everything!(EverythingMsgPack, Protocol::MsgPack);

async fn everything_access(k: &mut Kong) -> PhaseResult {
    {
        record("kong.client.get_ip", k.client().get_ip().await);
        record(
            "kong.client.get_forwarded_ip",
            k.client().get_forwarded_ip().await,
        );
        record("kong.client.get_port", k.client().get_port().await);
        record(
            "kong.client.get_forwarded_port",
            k.client().get_forwarded_port().await,
        );
        record("kong.client.get_consumer", k.client().get_consumer().await);
        record(
            "kong.client.get_credential",
            k.client().get_credential().await,
        );
        record(
            "kong.client.load_consumer",
            k.client().load_consumer("bob", true).await,
        );
        let bob = Consumer::with_id("c0ffee00-0000-4000-8000-000000000002");
        let cred = AuthenticatedCredential::new("k2", &bob.id);
        record(
            "kong.client.authenticate",
            k.client().authenticate(Some(&bob), Some(&cred)).await,
        );
        record(
            "kong.client.get_protocol",
            k.client().get_protocol(true).await,
        );
        record(
            "kong.ctx.shared.set",
            k.ctx().set_shared("k", &json!({"n": [1, 2]})).await,
        );
        record(
            "kong.ctx.shared.get",
            k.ctx().get_shared::<serde_json::Value>("k").await,
        );
        record("kong.ip.is_trusted", k.ip().is_trusted("10.1.2.3").await);
        record("kong.log.alert", k.log().alert("a").await);
        record("kong.log.crit", k.log().crit("c").await);
        record("kong.log.err", k.log().err(("e", 1)).await);
        record("kong.log.warn", k.log().warn("w").await);
        record("kong.log.notice", k.log().notice("n").await);
        record("kong.log.info", k.log().info("i").await);
        record("kong.log.debug", k.log().debug("d").await);
        record(
            "kong.log.set_serialize_value",
            k.log().set_serialize_value("request.tenant", "blue").await,
        );
        record("kong.nginx.get_var", k.nginx().get_var("request_uri").await);
        record(
            "kong.nginx.get_tls1_version_str",
            k.nginx().get_tls1_version_str().await,
        );
        record("kong.nginx.set_ctx", k.nginx().set_ctx("mine", &5).await);
        record(
            "kong.nginx.get_ctx",
            k.nginx().get_ctx::<String>("from_lua").await,
        );
        record(
            "kong.nginx.req_start_time",
            k.nginx().req_start_time().await,
        );
        record("kong.nginx.get_subsystem", k.nginx().get_subsystem().await);
        record("kong.node.get_id", k.node().get_id().await);
        record(
            "kong.node.get_memory_stats",
            k.node()
                .get_memory_stats()
                .await
                .map(|m| m.workers_lua_vms.len()),
        );
        record("kong.request.get_scheme", k.request().get_scheme().await);
        record("kong.request.get_host", k.request().get_host().await);
        record("kong.request.get_port", k.request().get_port().await);
        record(
            "kong.request.get_forwarded_scheme",
            k.request().get_forwarded_scheme().await,
        );
        record(
            "kong.request.get_forwarded_host",
            k.request().get_forwarded_host().await,
        );
        record(
            "kong.request.get_forwarded_port",
            k.request().get_forwarded_port().await,
        );
        record(
            "kong.request.get_http_version",
            k.request().get_http_version().await,
        );
        record("kong.request.get_method", k.request().get_method().await);
        record("kong.request.get_path", k.request().get_path().await);
        record(
            "kong.request.get_path_with_query",
            k.request().get_path_with_query().await,
        );
        record(
            "kong.request.get_raw_query",
            k.request().get_raw_query().await,
        );
        record(
            "kong.request.get_query_arg",
            k.request().get_query_arg("x").await,
        );
        record("kong.request.get_query", k.request().get_query().await);
        record(
            "kong.request.get_header",
            k.request().get_header("X_Multi").await,
        );
        record(
            "kong.request.get_headers",
            k.request().get_headers_max(3).await,
        );
        record(
            "kong.request.get_raw_body",
            k.request().get_raw_body().await,
        );
        record(
            "kong.request.get_uri_captures",
            k.request().get_uri_captures().await,
        );
        record(
            "kong.response.set_status",
            k.response().set_status(299).await,
        );
        record(
            "kong.response.set_header",
            k.response().set_header("x-set", "1").await,
        );
        record(
            "kong.response.add_header",
            k.response().add_header("x-add", "2").await,
        );
        record(
            "kong.response.clear_header",
            k.response().clear_header("x-drop").await,
        );
        let h: Headers = [("x-many", "a"), ("x-many", "b")].into_iter().collect();
        record(
            "kong.response.set_headers",
            k.response().set_headers(&h).await,
        );
        record(
            "kong.router.get_route",
            k.router().get_route().await.map(|r| r.name),
        );
        record(
            "kong.router.get_service",
            k.router().get_service().await.map(|s| s.host),
        );
        record(
            "kong.service.set_upstream",
            k.service().set_upstream("pool").await,
        );
        record(
            "kong.service.set_target",
            k.service().set_target("10.9.9.9", 9000).await,
        );
        record(
            "kong.service.request.set_scheme",
            k.service_request().set_scheme("https").await,
        );
        record(
            "kong.service.request.set_path",
            k.service_request().set_path("/up").await,
        );
        record(
            "kong.service.request.set_raw_query",
            k.service_request().set_raw_query("raw=1").await,
        );
        record(
            "kong.service.request.set_method",
            k.service_request().set_method("PATCH").await,
        );
        let q: Query = [("b", "2"), ("a", "1")].into_iter().collect();
        record(
            "kong.service.request.set_query",
            k.service_request().set_query(&q).await,
        );
        record(
            "kong.service.request.set_header",
            k.service_request().set_header("x-s", "1").await,
        );
        record(
            "kong.service.request.add_header",
            k.service_request().add_header("x-s", "2").await,
        );
        record(
            "kong.service.request.clear_header",
            k.service_request().clear_header("x-real-ip").await,
        );
        let h: Headers = [("x-t", "t")].into_iter().collect();
        record(
            "kong.service.request.set_headers",
            k.service_request().set_headers(&h).await,
        );
        record(
            "kong.service.request.set_raw_body",
            k.service_request().set_raw_body([0u8, 255, 1]).await,
        );
        Ok(())
    }
}

async fn everything_response(k: &mut Kong) -> PhaseResult {
    record("kong.response.get_status", k.response().get_status().await);
    record(
        "kong.response.get_header",
        k.response().get_header("x-add").await,
    );
    record(
        "kong.response.get_headers",
        k.response().get_headers().await,
    );
    record("kong.response.get_source", k.response().get_source().await);
    record(
        "kong.service.response.get_status",
        k.service_response().get_status().await,
    );
    record(
        "kong.service.response.get_header",
        k.service_response().get_header("x-up").await,
    );
    record(
        "kong.service.response.get_headers",
        k.service_response().get_headers().await,
    );
    record(
        "kong.service.response.get_raw_body",
        k.service_response().get_raw_body().await,
    );
    RESULTS.with(|r| r.borrow_mut().push(("kong.response.exit", "sent".into())));
    k.response().exit(418, "teapot", [("x-exit", "1")]).await?;
    Ok(())
}

async fn everything_log(k: &mut Kong) -> PhaseResult {
    let record_json = k.log().serialize().await;
    let summary = record_json.map(|s| {
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        format!(
            "{} {} {}",
            v["request"]["tenant"], v["response"]["status"], v["upstream_uri"]
        )
    });
    record("kong.log.serialize", summary);
    Ok(())
}

#[tokio::test]
async fn every_pdk_method_gets_a_model_answer() {
    every_pdk_method::<Everything>().await;
}

#[tokio::test]
async fn every_pdk_method_gets_the_same_answer_over_msgpack() {
    every_pdk_method::<EverythingMsgPack>().await;
}

async fn every_pdk_method<P: Plugin>() {
    let request = Request::post(
        "https://Example.com:8443/items/./a//b?x=1&x=2&y=z",
        "payload",
    )
    .header("x-multi", "m1")
    .header("x-multi", "m2")
    .header("x-real-ip", "203.0.113.5")
    .header("x-forwarded-proto", "HTTP")
    .header("x-forwarded-host", "public.example")
    .header("x-forwarded-port", "444")
    .client_ip("10.0.0.9")
    .client_port(51000)
    .trusted_ips(["10.0.0.0/8"])
    .ctx("from_lua", "hello")
    .uri_captures(["items"], [("id", "a")])
    .consumer(pb::Consumer {
        id: "c0ffee00-0000-4000-8000-000000000001".into(),
        username: "ann".into(),
        ..Default::default()
    })
    .credential(pb::AuthenticatedCredential {
        id: "k1".into(),
        consumer_id: "c0ffee00-0000-4000-8000-000000000001".into(),
    });
    let mut env = TestEnv::new(request)
        .known_consumer(pb::Consumer {
            id: "c0ffee00-0000-4000-8000-000000000002".into(),
            username: "bob".into(),
            ..Default::default()
        })
        .known_upstream("pool")
        .upstream_response(UpstreamResponse::new(503).header("x-up", "u").body("down"));
    let out = env.run::<P>(json!({})).await;

    let results: Vec<(&str, String)> = RESULTS.with(|r| r.borrow().clone());
    let want: &[(&str, &str)] = &[
        ("kong.client.get_ip", r#""10.0.0.9""#),
        ("kong.client.get_forwarded_ip", r#""203.0.113.5""#),
        ("kong.client.get_port", "51000"),
        ("kong.client.get_forwarded_port", "51000"),
        (
            "kong.client.get_consumer",
            r#"Consumer { id: "c0ffee00-0000-4000-8000-000000000001", created_at: 0, username: "ann", custom_id: "", tags: [] }"#,
        ),
        (
            "kong.client.get_credential",
            r#"AuthenticatedCredential { id: "k1", consumer_id: "c0ffee00-0000-4000-8000-000000000001" }"#,
        ),
        (
            "kong.client.load_consumer",
            r#"Consumer { id: "c0ffee00-0000-4000-8000-000000000002", created_at: 0, username: "bob", custom_id: "", tags: [] }"#,
        ),
        ("kong.client.authenticate", "()"),
        ("kong.client.get_protocol", r#""https""#),
        ("kong.ctx.shared.set", "()"),
        (
            "kong.ctx.shared.get",
            r#"Object {"n": Array [Number(1), Number(2)]}"#,
        ),
        ("kong.ip.is_trusted", "true"),
        ("kong.log.alert", "()"),
        ("kong.log.crit", "()"),
        ("kong.log.err", "()"),
        ("kong.log.warn", "()"),
        ("kong.log.notice", "()"),
        ("kong.log.info", "()"),
        ("kong.log.debug", "()"),
        ("kong.log.set_serialize_value", "()"),
        ("kong.nginx.get_var", r#""/items/./a//b?x=1&x=2&y=z""#),
        ("kong.nginx.get_tls1_version_str", r#""TLSv1.3""#),
        ("kong.nginx.set_ctx", "()"),
        ("kong.nginx.get_ctx", r#""hello""#),
        ("kong.nginx.req_start_time", "1767225600.123"),
        ("kong.nginx.get_subsystem", r#""http""#),
        (
            "kong.node.get_id",
            &format!("{:?}", kong_pdk_test::DEFAULT_NODE_ID),
        ),
        ("kong.node.get_memory_stats", "1"),
        ("kong.request.get_scheme", r#""https""#),
        ("kong.request.get_host", r#""example.com""#),
        ("kong.request.get_port", "8443"),
        ("kong.request.get_forwarded_scheme", r#""http""#),
        ("kong.request.get_forwarded_host", r#""public.example""#),
        ("kong.request.get_forwarded_port", "444"),
        ("kong.request.get_http_version", "1.1"),
        ("kong.request.get_method", r#""POST""#),
        ("kong.request.get_path", r#""/items/a/b""#),
        (
            "kong.request.get_path_with_query",
            r#""/items/./a//b?x=1&x=2&y=z""#,
        ),
        ("kong.request.get_raw_query", r#""x=1&x=2&y=z""#),
        ("kong.request.get_query_arg", r#""1""#),
        (
            "kong.request.get_query",
            r#"Query({"x": ["1", "2"], "y": ["z"]})"#,
        ),
        ("kong.request.get_header", r#""m1""#),
        (
            "kong.request.get_headers",
            r#"Headers({"content-length": ["7"], "host": ["example.com:8443"], "x-multi": ["m1"]})"#,
        ),
        (
            "kong.request.get_raw_body",
            "InMemory([112, 97, 121, 108, 111, 97, 100])",
        ),
        (
            "kong.request.get_uri_captures",
            r#"UriCaptures { unnamed: [[105, 116, 101, 109, 115]], named: {"id": [97]} }"#,
        ),
        ("kong.response.set_status", "()"),
        ("kong.response.set_header", "()"),
        ("kong.response.add_header", "()"),
        ("kong.response.clear_header", "()"),
        ("kong.response.set_headers", "()"),
        ("kong.router.get_route", r#""test-route""#),
        (
            "kong.router.get_service",
            &format!("{:?}", kong_pdk_test::DEFAULT_SERVICE_HOST),
        ),
        ("kong.service.set_upstream", "true"),
        ("kong.service.set_target", "()"),
        ("kong.service.request.set_scheme", "()"),
        ("kong.service.request.set_path", "()"),
        ("kong.service.request.set_raw_query", "()"),
        ("kong.service.request.set_method", "()"),
        ("kong.service.request.set_query", "()"),
        ("kong.service.request.set_header", "()"),
        ("kong.service.request.add_header", "()"),
        ("kong.service.request.clear_header", "()"),
        ("kong.service.request.set_headers", "()"),
        ("kong.service.request.set_raw_body", "()"),
        ("kong.response.get_status", "503"),
        ("kong.response.get_header", r#""2""#),
        (
            "kong.response.get_headers",
            r#"Headers({"x-add": ["2"], "x-many": ["a", "b"], "x-set": ["1"], "x-up": ["u"]})"#,
        ),
        ("kong.response.get_source", r#""service""#),
        ("kong.service.response.get_status", "503"),
        ("kong.service.response.get_header", r#""u""#),
        // Kong's buffered headers table cannot be walked: `{}` on the wire.
        ("kong.service.response.get_headers", "Headers({})"),
        ("kong.service.response.get_raw_body", "[100, 111, 119, 110]"),
        ("kong.response.exit", "sent"),
        ("kong.log.serialize", r#""\"blue\" 418 \"/up?a=1&b=2\"""#),
    ];
    assert_eq!(want.len(), 74);
    for (i, ((method, got), (want_method, want))) in results.iter().zip(want).enumerate() {
        assert_eq!(method, want_method, "call {i}");
        assert_eq!(got, want, "{method}");
    }
    assert_eq!(results.len(), want.len());

    // The simulated Kong saw the 74 methods, each answered from the model.
    let methods: BTreeSet<&str> = out.methods().into_iter().collect();
    let listed: BTreeSet<&str> = want.iter().map(|(m, _)| *m).collect();
    assert_eq!(methods, listed);
    assert!(out.unhandled_calls.is_empty(), "{:#?}", out.unhandled_calls);
    assert!(out.rejected_calls().is_empty(), "{:#?}", out.kong_errors);
    assert!(
        out.calls
            .iter()
            .all(|c| matches!(c.outcome, CallOutcome::Answered | CallOutcome::Exit))
    );

    // And the model reflects what the plugin did.
    assert_eq!(out.response.status, 418);
    assert_eq!(out.response.body_text(), "teapot");
    assert_eq!(out.response.header("x-exit"), Some("1"));
    assert_eq!(out.response.header("x-up"), Some("u"));
    let up = &out.upstream_request;
    assert_eq!(up.method, "PATCH");
    assert_eq!(
        (up.scheme.as_str(), up.host.as_str(), up.port),
        ("https", "10.9.9.9", 9000)
    );
    assert_eq!(up.upstream, None, "set_target replaced the upstream");
    assert_eq!(up.path_with_query(), "/up?a=1&b=2");
    assert_eq!(up.headers.get_all("x-s"), ["1", "2"]);
    assert_eq!(up.header("x-t"), Some("t"));
    assert_eq!(up.header("x-real-ip"), None);
    assert_eq!(up.body, [0, 255, 1]);
    assert_eq!(
        out.consumer.as_ref().unwrap().id,
        "c0ffee00-0000-4000-8000-000000000002"
    );
    assert_eq!(out.credential.as_ref().unwrap().id, "k2");
    assert_eq!(out.nginx_ctx["mine"], 5);
    assert_eq!(out.ctx_shared["k"], json!({"n": [1, 2]}));
    assert_eq!(out.logs.len(), 7);
    assert_eq!(out.logs[2].message, "e1");
}
