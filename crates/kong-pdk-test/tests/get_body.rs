//! `kong.request().get_body()` against the cases of Kong's own PDK test
//! `t/01-pdk/04-request/16-get_body.t` (same requests, same expected
//! results and error texts), through the test kit, over both protocols.

use std::cell::RefCell;

use kong_pdk::pdk::BodyOptions;
use kong_pdk::{Kong, PhaseResult, Plugin, Protocol, Schema};
use kong_pdk_test::{Request, TestEnv};
use serde::Deserialize;
use serde_json::{Value, json};

thread_local! {
    static SEEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// What to call: Kong's arguments.
#[derive(Deserialize, Schema)]
struct Probe {
    mimetype: Option<String>,
    max_args: Option<u16>,
    max_file_size: Option<u64>,
}

async fn probe(p: &Probe, kong: &mut Kong) -> PhaseResult {
    let options = BodyOptions {
        mimetype: p.mimetype.clone(),
        max_args: p.max_args,
        max_file_size: p.max_file_size,
    };
    let seen = match kong.request().get_body_with::<Value>(&options).await {
        Ok(v) => v.to_string(),
        Err(kong_pdk::Error::Kong { message, .. }) => format!("error: {message}"),
        Err(e) => format!("other: {e}"),
    };
    SEEN.with(|s| *s.borrow_mut() = Some(seen));
    Ok(())
}

macro_rules! probe_plugin {
    ($name:ident, $protocol:expr) => {
        #[kong_pdk::plugin]
        impl Plugin for $name {
            const PROTOCOL: Protocol = $protocol;
            async fn access(&self, kong: &mut Kong) -> PhaseResult {
                probe(&self.0, kong).await
            }
        }
    };
}

#[derive(Deserialize, Schema)]
#[serde(transparent)]
struct OverProtobuf(Probe);
probe_plugin!(OverProtobuf, Protocol::ProtoBuf);

#[derive(Deserialize, Schema)]
#[serde(transparent)]
struct OverMsgPack(Probe);
probe_plugin!(OverMsgPack, Protocol::MsgPack);

/// Runs one case in both protocols; both must see the same.
async fn body(request: Request, args: Value) -> String {
    body_in(&[false, true], request, args).await
}

/// Runs one case in the protocols listed (MsgPack or not).
async fn body_in(protocols: &[bool], request: Request, args: Value) -> String {
    let mut seen = Vec::new();
    for &msgpack in protocols {
        let mut env = TestEnv::new(request.clone());
        if msgpack {
            env.run::<OverMsgPack>(args.clone()).await;
        } else {
            env.run::<OverProtobuf>(args.clone()).await;
        }
        seen.push(
            SEEN.with(|s| s.borrow_mut().take())
                .expect("the handler ran"),
        );
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "the protocols differ: {seen:?}"
    );
    seen.remove(0)
}

fn post(content_type: Option<&str>, body: &str) -> Request {
    let r = Request::post("http://example.com/t", body);
    match content_type {
        Some(ct) => r.header("content-type", ct),
        None => r.without_header("content-type"),
    }
}

#[tokio::test]
async fn kongs_cases_1_to_5_each_content_type_and_the_two_errors() {
    let form = "application/x-www-form-urlencoded";
    assert_eq!(
        body(post(Some(form), "test=post"), json!({})).await,
        r#"{"test":"post"}"#
    );
    assert_eq!(
        body(
            post(Some("application/json"), "{\n  \"test\": \"json\"\n}"),
            json!({})
        )
        .await,
        r#"{"test":"json"}"#
    );
    let multipart =
        "--AaB03x\nContent-Disposition: form-data; name=\"test\"\n\nform-data\n--AaB03x--";
    assert_eq!(
        body(
            post(Some("multipart/form-data; boundary=AaB03x"), multipart),
            json!({})
        )
        .await,
        r#"{"test":"form-data"}"#
    );
    assert_eq!(
        body(post(None, "test=post"), json!({})).await,
        "error: missing content type"
    );
    assert_eq!(
        body(
            post(Some("application/x-unsupported"), "test=post"),
            json!({})
        )
        .await,
        "error: unsupported content type 'application/x-unsupported'"
    );
}

#[tokio::test]
async fn kongs_cases_6_to_14_json_must_be_an_object_or_an_array() {
    for bad in ["", "null", "\"test\"", "123", "123.23", "true", "false"] {
        assert_eq!(
            body(post(Some("application/json"), bad), json!({})).await,
            "error: invalid json body",
            "{bad:?}"
        );
    }
    assert_eq!(
        body(post(Some("application/json"), "{}"), json!({})).await,
        "{}"
    );
    assert_eq!(
        body(post(Some("application/json"), "[]"), json!({})).await,
        "[]"
    );
}

#[tokio::test]
async fn kongs_cases_15_to_18_forms() {
    assert_eq!(
        body(
            post(Some("APPLICATION/x-WWW-form-Urlencoded"), "test=post"),
            json!({})
        )
        .await,
        r#"{"test":"post"}"#
    );
    let form = "application/x-www-form-urlencoded";
    assert_eq!(
        body(
            post(
                Some(form),
                "Foo=Hello&Bar=World&Accept=application%2Fjson&Accept=text%2Fhtml"
            ),
            json!({})
        )
        .await,
        r#"{"Accept":["application/json","text/html"],"Bar":"World","Foo":"Hello"}"#
    );
    assert_eq!(
        body(post(Some(form), "Foo=Hello&foo=World&fOO=Too"), json!({})).await,
        r#"{"Foo":"Hello","fOO":"Too","foo":"World"}"#
    );
}

#[tokio::test]
async fn kongs_cases_19_to_23_max_args() {
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("arg-{i}=test"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let count = |s: String| {
        serde_json::from_str::<Value>(&s)
            .unwrap()
            .as_object()
            .unwrap()
            .len()
    };
    // No Content-Type: the mimetype argument decides.
    let args = json!({"mimetype": "application/x-www-form-urlencoded"});
    assert_eq!(count(body(post(None, &many(200)), args).await), 100);
    let args = json!({"mimetype": "application/x-www-form-urlencoded", "max_args": 60});
    assert_eq!(count(body(post(None, &many(100)), args).await), 60);
    for (max, message) in [
        (0, "max_args must be >= 1"),
        (1001, "max_args must be <= 1000"),
    ] {
        let args = json!({"mimetype": "application/x-www-form-urlencoded", "max_args": max});
        let seen = body(post(None, ""), args).await;
        assert!(
            seen.starts_with("other:") && seen.contains(message),
            "{seen}"
        );
    }
}

#[tokio::test]
async fn kongs_cases_24_to_26_bodies_in_a_file_and_repeated_parts() {
    // 60000 bytes: nginx buffers it to a file.
    let big_form = "a=1".repeat(20_000);
    let request = post(Some("application/x-www-form-urlencoded"), &big_form);
    assert_eq!(
        body(request, json!({})).await,
        "error: request body in temp file not supported"
    );

    let multipart = "--AaB03x\nContent-Disposition: form-data; name=\"test\"\n\nform\n--AaB03x\nContent-Disposition: form-data; name=\"test\"\n\ndata\n--AaB03x--";
    assert_eq!(
        body(
            post(Some("multipart/form-data; boundary=AaB03x"), multipart),
            json!({})
        )
        .await,
        r#"{"test":["form","data"]}"#
    );

    let json_body = format!("{{\"b\":\"{}\"}}", "a".repeat(20_000));
    assert_eq!(json_body.len(), 20_008);
    let request = post(Some("application/json"), &json_body);
    let args = json!({"mimetype": "application/json"});
    assert_eq!(
        body(request.clone(), args).await,
        "error: request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
    );
    // Reading the file needs its path, which only ProtoBuf:1 passes on.
    let args = json!({"mimetype": "application/json", "max_file_size": 20_008});
    assert!(
        body_in(&[false], request.clone(), args.clone())
            .await
            .starts_with(r#"{"b":"aaa"#)
    );
    assert_eq!(
        body_in(&[true], request.clone(), args).await,
        "error: request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
    );
    let args = json!({"mimetype": "application/json", "max_file_size": 19_999});
    assert_eq!(
        body_in(&[false], request, args).await,
        "error: request body file too big: 20008 > 19999"
    );
}

/// The test kit's body builders give what Kong parses back: a form with a
/// repeated name and characters to escape, a multipart body with a field
/// and a file, a JSON body.
#[tokio::test]
async fn the_kits_form_multipart_and_json_builders_parse_back() {
    use kong_pdk_test::Part;
    let form = Request::post("http://example.com/t", "").form(&[
        ("tag", "a b&c=d"),
        ("tag", "é"),
        ("one", "1"),
    ]);
    assert_eq!(
        form.header_value("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        body(form, json!({})).await,
        r#"{"one":"1","tag":["a b&c=d","é"]}"#
    );
    let multipart = Request::post("http://example.com/t", "").multipart(&[
        Part::field("name", "ann"),
        Part::file("avatar", "a.txt", b"file bytes"),
    ]);
    let parsed: Value = serde_json::from_str(&body(multipart, json!({})).await).unwrap();
    assert_eq!(parsed["name"], "ann");
    assert_eq!(parsed["avatar"], "file bytes");
    let json_body = Request::post("http://example.com/t", "").json(&json!({"n": [1, 2]}));
    assert_eq!(body(json_body, json!({})).await, r#"{"n":[1,2]}"#);
}
