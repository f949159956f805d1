//! `kong.request.get_body`, rebuilt from the raw body the way Kong's Lua
//! does it (`kong/pdk/request.lua`): the content type picks the parser —
//! `application/x-www-form-urlencoded` as `ngx.req.get_post_args`,
//! `application/json` as `cjson.safe` (objects and arrays only),
//! `multipart/form-data` as Kong's `multipart` module (0.5.9) — and the
//! result is the table Kong's function returns, as JSON. ProtoBuf:1 has no
//! `get_body` (go-pdk#29), so the typed PDK parses what `get_raw_body`
//! returns; Kong's error texts are kept word for word.

use serde_json::{Map, Value};

/// The three bodies Kong parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`.
    Json,
    /// `multipart/form-data`.
    Multipart,
}

impl BodyType {
    /// Kong's name for it (`get_body`'s third return value).
    pub const fn mimetype(self) -> &'static str {
        match self {
            BodyType::Form => "application/x-www-form-urlencoded",
            BodyType::Json => "application/json",
            BodyType::Multipart => "multipart/form-data",
        }
    }
}

/// The body type a `Content-Type` names, as Kong decides it: lower-cased,
/// cut at the first `;`, then matched by prefix (so `application/json;
/// charset=utf-8` and `application/jsonp` are JSON; `application/vnd.api+json`
/// is not). `Err` is Kong's message.
pub(crate) fn body_type(content_type: &str) -> Result<BodyType, String> {
    let lower = content_type.to_ascii_lowercase();
    let essence = lower.split(';').next().unwrap_or("");
    [BodyType::Form, BodyType::Json, BodyType::Multipart]
        .into_iter()
        .find(|t| essence.starts_with(t.mimetype()))
        .ok_or_else(|| format!("unsupported content type '{content_type}'"))
}

/// `ngx.req.get_post_args(max)`: `&`-separated pairs split at the first
/// `=`, `+` and `%XX` decoded in names and values, a name without `=` is
/// `true`, an empty name is dropped, a repeated name collects an array.
/// Only the first `max` `&`-terminated pairs are read (the last pair is
/// never counted); truncation is silent, as in Kong.
pub(crate) fn parse_form(body: &[u8], max: usize) -> Value {
    let mut out = Map::new();
    let mut add = |segment: &[u8]| {
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(at) => (
                unescape(&segment[..at]),
                Value::String(unescape(&segment[at + 1..])),
            ),
            None => (unescape(segment), Value::Bool(true)),
        };
        if name.is_empty() {
            return;
        }
        match out.get_mut(&name) {
            None => {
                out.insert(name, value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => {
                let first = first.take();
                out.insert(name, Value::Array(vec![first, value]));
            }
        }
    };
    let segments: Vec<&[u8]> = body.split(|&b| b == b'&').collect();
    let (last, terminated) = segments.split_last().expect("split yields one segment");
    let mut count = 0;
    for segment in terminated {
        add(segment);
        count += 1;
        if count == max {
            return Value::Object(out);
        }
    }
    add(last);
    Value::Object(out)
}

/// nginx's URI-component unescaping: `+` is a space, `%XX` a byte; a
/// malformed `%` stays as it is. Lua strings are bytes: invalid UTF-8 is
/// replaced here.
fn unescape(bytes: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `cjson.safe.decode`, where only a table is a body: an object or an
/// array; anything else, an empty body included, is `invalid json body`.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
        _ => Err("invalid json body".into()),
    }
}

/// Kong's `multipart` module (0.5.9) and `get_all_with_arrays()`: name →
/// value, or an array of values for a repeated name. Filenames and part
/// headers are dropped, as in Kong. The boundary comes from
/// `;%s*boundary=(%S+)` in `content_type` (quotes removed); without one the
/// body has no parts. The module's quirks are kept: lines end at every
/// `\r` or `\n`, a boundary line is any line starting with `--boundary`,
/// a part's name is what lies between the first and last characters after
/// `name=`, and a last part with no closing boundary replaces the earlier
/// parts of its name.
pub(crate) fn parse_multipart(body: &[u8], content_type: &str) -> Value {
    let Some(boundary) = multipart_boundary(content_type) else {
        return Value::Object(Map::new());
    };
    let marker = [b"--".as_slice(), boundary.as_bytes()].concat();
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut name: Option<String> = None;
    let mut value: Vec<u8> = Vec::new();
    let mut in_value = false;
    let mut position = 0;
    loop {
        let separator = body[position..]
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .map(|p| position + p);
        let line = &body[position..separator.unwrap_or(body.len())];
        if let Some(s) = separator {
            position = s + 1;
        }
        let crlf_crlf = |s: Option<usize>| s.is_some_and(|s| body[s..].starts_with(b"\r\n\r\n"));
        if line.is_empty() {
            if let (Some(s), true) = (separator, in_value) {
                value.push(body[s]);
            }
        } else if line.starts_with(&marker) {
            in_value = false;
            if let Some(n) = name.take() {
                if value.ends_with(b"\n") {
                    value.pop();
                    if value.ends_with(b"\r") {
                        value.pop();
                    }
                }
                parts.push((n, std::mem::take(&mut value)));
            }
        } else if !in_value
            && line.len() >= 19
            && line[..19].eq_ignore_ascii_case(b"content-disposition")
        {
            let text = String::from_utf8_lossy(line);
            for segment in text.split(';').filter(|s| !s.is_empty()) {
                if is_header(segment) {
                    continue;
                }
                let trimmed = segment.trim_start();
                if trimmed.len() >= 5 && trimmed[..5].eq_ignore_ascii_case("name=") {
                    let raw = trimmed[5..]
                        .trim_start()
                        .split('=')
                        .next()
                        .unwrap_or("")
                        .trim_end();
                    // The first and last characters go, quotes or not.
                    let mut chars = raw.chars();
                    chars.next();
                    chars.next_back();
                    name = Some(chars.as_str().to_owned());
                }
            }
            if crlf_crlf(separator) {
                in_value = true;
                position = separator.expect("checked") + 4;
            }
        } else if !in_value && is_header(&String::from_utf8_lossy(line)) {
            if crlf_crlf(separator) {
                in_value = true;
                position = separator.expect("checked") + 4;
            }
        } else {
            in_value = true;
            value.extend_from_slice(line);
            if let Some(s) = separator {
                value.push(body[s]);
            }
        }
        if separator.is_none() || position > body.len() {
            break;
        }
    }
    let mut out = Map::new();
    let text = |v: &[u8]| Value::String(String::from_utf8_lossy(v).into_owned());
    for (n, v) in &parts {
        match out.get_mut(n) {
            None => {
                out.insert(n.clone(), text(v));
            }
            Some(Value::Array(values)) => values.push(text(v)),
            Some(first) => {
                let first = first.take();
                out.insert(n.clone(), Value::Array(vec![first, text(v)]));
            }
        }
    }
    // A last part without a closing boundary replaces its name's parts.
    if let Some(n) = name {
        out.insert(n, text(&value));
    }
    Value::Object(out)
}

/// `;%s*boundary=(%S+)`, with matching quotes removed; `None` when absent
/// or empty.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut rest = content_type;
    while let Some(at) = rest.find(';') {
        rest = &rest[at + 1..];
        let after = rest.trim_start();
        if let Some(value) = after.strip_prefix("boundary=") {
            let value: String = value.chars().take_while(|c| !c.is_whitespace()).collect();
            if value.is_empty() {
                continue;
            }
            let quoted = value.len() >= 2
                && ((value.starts_with('"') && value.ends_with('"'))
                    || (value.starts_with('\'') && value.ends_with('\'')));
            let value = if quoted {
                value[1..value.len() - 1].to_owned()
            } else {
                value
            };
            return (!value.is_empty()).then_some(value);
        }
    }
    None
}

/// Lua's `%S:%s*%S`: a non-space, a colon, optional spaces, a non-space.
fn is_header(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b':'
            && i > 0
            && !b[i - 1].is_ascii_whitespace()
            && b[i + 1..]
                .iter()
                .find(|c| !c.is_ascii_whitespace())
                .is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_content_type_is_matched_like_kong() {
        assert_eq!(body_type("application/json"), Ok(BodyType::Json));
        assert_eq!(
            body_type("APPLICATION/x-WWW-form-Urlencoded"),
            Ok(BodyType::Form)
        );
        assert_eq!(
            body_type("application/json; charset=utf-8"),
            Ok(BodyType::Json)
        );
        assert_eq!(body_type("application/jsonp"), Ok(BodyType::Json));
        assert_eq!(
            body_type("multipart/form-data; boundary=x"),
            Ok(BodyType::Multipart)
        );
        assert_eq!(
            body_type("application/vnd.api+json"),
            Err("unsupported content type 'application/vnd.api+json'".into())
        );
        assert_eq!(
            body_type("Text/Plain; charset=utf-8"),
            Err("unsupported content type 'Text/Plain; charset=utf-8'".into())
        );
    }

    #[test]
    fn forms_decode_like_get_post_args() {
        assert_eq!(
            parse_form(
                b"Foo=Hello&Bar=World&Accept=application%2Fjson&Accept=text%2Fhtml",
                100
            ),
            json!({"Foo": "Hello", "Bar": "World", "Accept": ["application/json", "text/html"]})
        );
        assert_eq!(
            parse_form(b"Foo=Hello&foo=World&fOO=Too", 100),
            json!({"Foo": "Hello", "foo": "World", "fOO": "Too"})
        );
        assert_eq!(
            parse_form(b"a==b&flag&e=&=v&&sp=x+y%20z&bad=%zz&a", 100),
            json!({"a": ["=b", true], "flag": true, "e": "", "sp": "x y z", "bad": "%zz"})
        );
        assert_eq!(parse_form(b"", 100), json!({}));
        // The limit counts &-terminated pairs; the last is never counted.
        assert_eq!(parse_form(b"a=1&b=2", 1), json!({"a": "1"}));
        assert_eq!(parse_form(b"a=1&b=2", 2), json!({"a": "1", "b": "2"}));
        let many: Vec<String> = (0..200).map(|i| format!("arg-{i}=test")).collect();
        let parsed = parse_form(many.join("&").as_bytes(), 100);
        assert_eq!(parsed.as_object().unwrap().len(), 100);
    }

    #[test]
    fn json_bodies_are_tables_only() {
        assert_eq!(
            parse_json(b"{\n  \"test\": \"json\"\n}"),
            Ok(json!({"test": "json"}))
        );
        assert_eq!(parse_json(b"[]"), Ok(json!([])));
        assert_eq!(parse_json(b"{}"), Ok(json!({})));
        for bad in [
            &b""[..],
            b"null",
            b"\"test\"",
            b"123",
            b"123.23",
            b"true",
            b"false",
            b"{",
            b"{} x",
        ] {
            assert_eq!(parse_json(bad), Err("invalid json body".into()), "{bad:?}");
        }
    }

    #[test]
    fn multipart_follows_kongs_module() {
        let ct = "multipart/form-data; boundary=AaB03x";
        // Kong's TEST 3 and 25 (LF line endings).
        let body =
            b"--AaB03x\nContent-Disposition: form-data; name=\"test\"\n\nform-data\n--AaB03x--";
        assert_eq!(parse_multipart(body, ct), json!({"test": "form-data"}));
        let body = b"--AaB03x\nContent-Disposition: form-data; name=\"test\"\n\nform\n--AaB03x\nContent-Disposition: form-data; name=\"test\"\n\ndata\n--AaB03x--";
        assert_eq!(parse_multipart(body, ct), json!({"test": ["form", "data"]}));
        // CRLF, a file part (filename and type dropped), a value with
        // inner line breaks kept.
        let body = b"--AaB03x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nline1\r\nline2\r\n--AaB03x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--AaB03x--\r\n";
        assert_eq!(
            parse_multipart(body, ct),
            json!({"a": "line1\r\nline2", "f": "\u{0}\u{1}"})
        );
        // No boundary (or a bare mimetype): no parts.
        assert_eq!(parse_multipart(body, "multipart/form-data"), json!({}));
        // Quoted boundary; an unquoted name loses its first and last
        // characters, as in Kong.
        let body = b"--q\r\nContent-Disposition: form-data; name=test\r\n\r\nv\r\n--q--";
        assert_eq!(
            parse_multipart(body, "multipart/form-data; boundary=\"q\""),
            json!({"es": "v"})
        );
    }
}
