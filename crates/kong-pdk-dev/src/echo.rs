//! The built-in echo upstream: answers every request with `200` and a JSON
//! description of it, so the gateway can be tried without another server.
//!
//! ```json
//! {"method": "GET", "path": "/x", "query": "a=1&a=2&b",
//!  "args": {"a": ["1", "2"], "b": true},
//!  "headers": {"host": "127.0.0.1:18000", "x-tag": "a"},
//!  "body": "", "host": "127.0.0.1", "port": 18000, "scheme": "http"}
//! ```
//!
//! Header and argument names are lower-cased (arguments keep their case);
//! a name with one value maps to a string, with several to an array; an
//! argument without `=` is `true`. The body is text when it is UTF-8, else
//! an array of byte values.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::serve::{self, Body, ResponseFuture};

/// Serves the echo upstream on `listener` until `shutdown`.
pub async fn run(listener: TcpListener, shutdown: watch::Receiver<bool>) {
    serve::serve(listener, shutdown, |req, _peer, local| -> ResponseFuture {
        Box::pin(answer(req, local))
    })
    .await;
}

async fn answer(req: Request<Incoming>, local: SocketAddr) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Response::builder()
                .status(400)
                .body(serve::full(format!("cannot read the body: {e}\n")))
                .expect("valid response");
        }
    };
    let mut headers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
    }
    let query = parts.uri.query().unwrap_or("").to_owned();
    let mut args: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for seg in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = match seg.split_once('=') {
            Some((k, v)) => (decode(k), Value::String(decode(v))),
            None => (decode(seg), Value::Bool(true)),
        };
        args.entry(k).or_default().push(v);
    }
    let body_json = match std::str::from_utf8(&body) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => Value::Array(body.iter().map(|b| Value::from(*b)).collect()),
    };
    let description = json!({
        "method": parts.method.as_str(),
        "scheme": "http",
        "host": local.ip().to_string(),
        "port": local.port(),
        "path": parts.uri.path(),
        "query": query,
        "args": multimap(args),
        "headers": multimap(headers),
        "body": body_json,
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("server", "kong-pdk-dev-echo")
        .body(serve::full(format!("{description}\n")))
        .expect("valid response")
}

fn multimap(map: BTreeMap<String, Vec<Value>>) -> Value {
    Value::Object(
        map.into_iter()
            .map(|(k, mut v)| {
                let v = if v.len() == 1 {
                    v.remove(0)
                } else {
                    Value::Array(v)
                };
                (k, v)
            })
            .collect(),
    )
}

/// Query-string decoding: `%XX` and `+` → space.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_decoding() {
        assert_eq!(super::decode("a%20b+c%zz"), "a b c%zz");
    }
}
