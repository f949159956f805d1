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
//!
//! Request headers shape the answer, to try plugins on the responses real
//! upstreams send:
//! - `x-echo-pad: N` adds a `"pad"` field of N bytes of text (bodies of
//!   several MiB);
//! - `x-echo-empty: 1` answers with an empty body (still
//!   `application/json`);
//! - `x-echo-content-encoding: gzip` (or `deflate`, `br`, a list such as
//!   `gzip, br`) compresses the body and says so in `Content-Encoding`.

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
    let mut description = description;
    let wanted = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(n) = wanted("x-echo-pad").and_then(|n| n.parse::<usize>().ok()) {
        description["pad"] = Value::String(pad(n));
    }
    let mut body = if wanted("x-echo-empty").is_some_and(|v| v == "1") {
        Vec::new()
    } else {
        format!("{description}\n").into_bytes()
    };
    let mut builder = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("server", "kong-pdk-dev-echo");
    if let Some(codings) = wanted("x-echo-content-encoding") {
        match kong_pdk::pdk::ContentEncoding::parse(codings) {
            Ok(encoding) => {
                body = encoding.encode(body);
                builder = builder.header("content-encoding", encoding.header_value());
            }
            Err(e) => {
                return Response::builder()
                    .status(400)
                    .body(serve::full(format!("x-echo-content-encoding: {e}\n")))
                    .expect("valid response");
            }
        }
    }
    builder.body(serve::full(body)).expect("valid response")
}

/// `n` bytes of varied text (words from a fixed list in a pseudo-random
/// order), so compression has real work to do. Also the input of the
/// `content_encoding` bench.
pub fn pad(n: usize) -> String {
    const WORDS: [&str; 8] = [
        "kong ",
        "rust ",
        "plugin ",
        "gateway ",
        "upstream ",
        "body ",
        "gzip ",
        "brotli ",
    ];
    let mut out = String::with_capacity(n + 8);
    let mut state: u32 = 0x2545_f491;
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.push_str(WORDS[(state % 8) as usize]);
    }
    out.truncate(n);
    out
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
