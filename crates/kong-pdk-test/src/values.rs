//! Conversions the simulated Kong needs: protobuf values ⇄ JSON, Lua's
//! `tostring`, URL encoding, path normalization, IP ranges.
//!
//! The `Value` ⇄ JSON pair looks like kong-pdk's own on purpose: the
//! simulator plays the other side of the wire, so it decodes what kong-pdk
//! encodes with its own code (a bug shared by both sides would otherwise
//! pass every test), and it writes nil the way Kong does (`null_value = 1`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use kong_pdk_proto::{self as pb, ValueKind};
use serde_json::{Map, Value as Json};

/// Kong's nil as a `Value`: `null_value = 1` (pb_rpc.lua).
pub(crate) fn nil() -> pb::Value {
    pb::Value {
        kind: Some(ValueKind::NullValue(1)),
    }
}

pub(crate) fn string(s: &str) -> pb::Value {
    pb::Value {
        kind: Some(ValueKind::StringValue(s.to_owned())),
    }
}

/// Kong's `Value` as JSON; integral numbers become integers.
pub(crate) fn to_json(v: &pb::Value) -> Json {
    match &v.kind {
        None | Some(ValueKind::NullValue(_)) => Json::Null,
        Some(ValueKind::BoolValue(b)) => Json::Bool(*b),
        Some(ValueKind::NumberValue(n)) => number_json(*n),
        Some(ValueKind::StringValue(s)) => Json::String(s.clone()),
        Some(ValueKind::ListValue(l)) => Json::Array(l.values.iter().map(to_json).collect()),
        Some(ValueKind::StructValue(s)) => struct_to_json(s),
    }
}

pub(crate) fn struct_to_json(s: &pb::Struct) -> Json {
    Json::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect(),
    )
}

pub(crate) fn number_json(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// JSON as Kong's `Value`.
pub(crate) fn from_json(j: &Json) -> pb::Value {
    let kind = match j {
        Json::Null => ValueKind::NullValue(1),
        Json::Bool(b) => ValueKind::BoolValue(*b),
        Json::Number(n) => ValueKind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => ValueKind::StringValue(s.clone()),
        Json::Array(items) => ValueKind::ListValue(pb::ListValue {
            values: items.iter().map(from_json).collect(),
        }),
        Json::Object(map) => ValueKind::StructValue(json_struct(map)),
    };
    pb::Value { kind: Some(kind) }
}

pub(crate) fn json_struct(map: &Map<String, Json>) -> pb::Struct {
    pb::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect(),
    }
}

/// A header or query table as Kong returns it: one value → a string,
/// several → a list; `None` values (query flags) are `true`.
pub(crate) fn multimap_struct(map: &BTreeMap<String, Vec<Option<String>>>) -> pb::Struct {
    let one = |v: &Option<String>| match v {
        Some(s) => string(s),
        None => pb::Value {
            kind: Some(ValueKind::BoolValue(true)),
        },
    };
    pb::Struct {
        fields: map
            .iter()
            .map(|(k, vs)| {
                let v = match vs.as_slice() {
                    [single] => one(single),
                    many => pb::Value {
                        kind: Some(ValueKind::ListValue(pb::ListValue {
                            values: many.iter().map(one).collect(),
                        })),
                    },
                };
                (k.clone(), v)
            })
            .collect(),
    }
}

/// The same multimap as JSON (for the log record and the echo upstream).
pub(crate) fn multimap_json(map: &BTreeMap<String, Vec<Option<String>>>) -> Json {
    struct_to_json(&multimap_struct(map))
}

/// Bytes as JSON: a string when they are UTF-8, else an array of numbers.
pub(crate) fn bytes_json(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => Json::String(s.to_owned()),
        Err(_) => Json::Array(b.iter().map(|x| Json::from(*x)).collect()),
    }
}

/// Lua's `tostring` of a value Kong decoded from a `Value`, as
/// `kong.log.*` writes its arguments. Tables are written as JSON (Lua
/// would write `table: 0x…`).
pub(crate) fn lua_tostring(v: &pb::Value) -> String {
    match &v.kind {
        None | Some(ValueKind::NullValue(_)) => "nil".into(),
        Some(ValueKind::BoolValue(b)) => b.to_string(),
        Some(ValueKind::NumberValue(n)) => lua_number(*n),
        Some(ValueKind::StringValue(s)) => s.clone(),
        Some(_) => to_json(v).to_string(),
    }
}

/// LuaJIT's number formatting (`%.14g`).
pub(crate) fn lua_number(n: f64) -> String {
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // 14 significant digits, then %g's choice between fixed and exponent.
    let sci = format!("{n:.13e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("numeric exponent");
    if !(-4..14).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = usize::try_from(13 - exp).unwrap_or(0);
    trim_zeros(&format!("{n:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding (and `+` → space for query strings), as nginx's
/// `ngx.req.get_uri_args` does.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `ngx.escape_uri` for query components: everything but unreserved
/// characters is percent-encoded.
pub(crate) fn escape_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A raw query string as `(name, value)` pairs, decoded; `None` is a flag
/// without `=`. Empty segments are skipped, as nginx does.
pub(crate) fn parse_query(raw: &str) -> Vec<(String, Option<String>)> {
    raw.split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), Some(percent_decode(v, true))),
            None => (percent_decode(seg, true), None),
        })
        .collect()
}

/// The query as a multimap, at most `max` arguments.
pub(crate) fn query_multimap(raw: &str, max: usize) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for (k, v) in parse_query(raw).into_iter().take(max) {
        out.entry(k).or_default().push(v);
    }
    out
}

/// Kong's path normalization (RFC 3986 §6 as `kong.request.get_path` does):
/// unreserved percent-escapes decoded, other escapes upper-cased, dot
/// segments removed, repeated slashes merged.
pub(crate) fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let b = h * 16 + l;
                if unreserved(b) {
                    decoded.push(b);
                } else {
                    decoded.extend(format!("%{b:02X}").bytes());
                }
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let decoded = String::from_utf8_lossy(&decoded);
    // Merge slashes, then remove dot segments.
    let mut segments: Vec<&str> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// Whether `addr` is in `range` (an address or a CIDR block).
pub(crate) fn ip_in(addr: &str, range: &str) -> bool {
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    let (net, bits) = match range.split_once('/') {
        Some((net, bits)) => (net, bits.parse::<u32>().ok()),
        None => (range, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Whether `s` is a UUID (8-4-4-4-12 hex digits).
pub(crate) fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Sets `value` at a dotted `key` (`"request.extra"`) in a JSON object,
/// creating intermediate objects, as `kong.log.set_serialize_value` does.
pub(crate) fn set_dotted(root: &mut Json, key: &str, value: Json) {
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Json::Object(Map::new());
        }
        let map = node.as_object_mut().expect("made an object above");
        if i == parts.len() - 1 {
            if value.is_null() {
                map.remove(*part);
            } else {
                map.insert((*part).to_owned(), value);
            }
            return;
        }
        node = map
            .entry((*part).to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_luajit() {
        let cases = [
            (403.0, "403"),
            (1.5, "1.5"),
            (-2.0, "-2"),
            (0.1, "0.1"),
            (1e14, "1e+14"),
            (123_456_789_012_345.0, "1.2345678901234e+14"),
            (99_999_999_999_999.0, "99999999999999"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.0 / 3.0, "0.33333333333333"),
        ];
        for (n, want) in cases {
            assert_eq!(lua_number(n), want, "{n}");
        }
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize_path("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(normalize_path("/%7euser/%2f"), "/~user/%2F");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/a/"), "/a/");
    }

    #[test]
    fn queries_decode_and_keep_flags() {
        let q = parse_query("a=1&b=x+y&a=%32&flag&&e=");
        assert_eq!(
            q,
            [
                ("a".into(), Some("1".into())),
                ("b".into(), Some("x y".into())),
                ("a".into(), Some("2".into())),
                ("flag".into(), None),
                ("e".into(), Some(String::new())),
            ]
        );
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
    }

    #[test]
    fn cidr_ranges_match() {
        assert!(ip_in("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_in("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_in("1.2.3.4", "0.0.0.0/0"));
        assert!(ip_in("::1", "::1"));
        assert!(!ip_in("::1", "10.0.0.0/8"));
    }

    #[test]
    fn dotted_keys_nest() {
        let mut root = serde_json::json!({"request": {"method": "GET"}});
        set_dotted(&mut root, "request.extra.deep", Json::from(1));
        set_dotted(&mut root, "top", Json::from("x"));
        assert_eq!(
            root,
            serde_json::json!({"request": {"method": "GET", "extra": {"deep": 1}}, "top": "x"})
        );
    }
}
