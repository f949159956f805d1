//! Conversions between Rust values and Kong's JSON-like protobuf values
//! (`google.protobuf.Value`, `Struct`, `ListValue`).
//!
//! Kong's numbers are Lua numbers (doubles): integers beyond ±2^53 lose
//! precision on the way through Kong, and integral numbers come back as
//! integers so they deserialize into integer types.

use std::collections::BTreeMap;

use kong_pdk_proto::{ListValue, Struct, Value, ValueKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A `Value` holding a string.
pub(crate) fn string(s: &str) -> Value {
    Value {
        kind: Some(ValueKind::StringValue(s.to_owned())),
    }
}

/// Converts JSON into Kong's `Value`.
pub(crate) fn from_json(json: serde_json::Value) -> Value {
    let kind = match json {
        // Kong decodes any null_value as nil; 0 is the canonical number.
        serde_json::Value::Null => ValueKind::NullValue(0),
        serde_json::Value::Bool(b) => ValueKind::BoolValue(b),
        serde_json::Value::Number(n) => ValueKind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => ValueKind::StringValue(s),
        serde_json::Value::Array(items) => ValueKind::ListValue(ListValue {
            values: items.into_iter().map(from_json).collect(),
        }),
        serde_json::Value::Object(map) => ValueKind::StructValue(Struct {
            fields: map.into_iter().map(|(k, v)| (k, from_json(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

/// Converts Kong's `Value` into JSON. A missing kind or any `null_value`
/// number (Kong writes 1) is `null`; integral numbers become integers.
pub(crate) fn to_json(value: Value) -> serde_json::Value {
    match value.kind {
        None | Some(ValueKind::NullValue(_)) => serde_json::Value::Null,
        Some(ValueKind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(ValueKind::NumberValue(n)) => number_to_json(n),
        Some(ValueKind::StringValue(s)) => serde_json::Value::String(s),
        Some(ValueKind::ListValue(list)) => {
            serde_json::Value::Array(list.values.into_iter().map(to_json).collect())
        }
        Some(ValueKind::StructValue(s)) => struct_to_json(s),
    }
}

/// Converts Kong's `Struct` into a JSON object.
pub(crate) fn struct_to_json(s: Struct) -> serde_json::Value {
    serde_json::Value::Object(s.fields.into_iter().map(|(k, v)| (k, to_json(v))).collect())
}

fn number_to_json(n: f64) -> serde_json::Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        // Exact: |n| <= 2^53 fits i64 without rounding.
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Serializes any value into Kong's `Value`.
pub(crate) fn serialize<T: Serialize + ?Sized>(method: &'static str, v: &T) -> Result<Value> {
    serde_json::to_value(v)
        .map(from_json)
        .map_err(|e| Error::Value {
            method,
            message: format!("cannot convert the value for Kong: {e}"),
        })
}

/// Deserializes Kong's `Value` into `T`.
pub(crate) fn deserialize<T: DeserializeOwned>(method: &'static str, v: Value) -> Result<T> {
    serde_json::from_value(to_json(v)).map_err(|e| Error::Value {
        method,
        message: format!("Kong's value does not fit the requested type: {e}"),
    })
}

/// A header table as Kong reads it: one value → a string, several → a list.
pub(crate) fn header_struct<K, V>(headers: impl IntoIterator<Item = (K, V)>) -> Struct
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        grouped
            .entry(k.as_ref().to_owned())
            .or_default()
            .push(v.as_ref().to_owned());
    }
    multimap_struct(&grouped)
}

/// A multimap as a `Struct`: one value → a string, several (or none) → a list.
pub(crate) fn multimap_struct(map: &BTreeMap<String, Vec<String>>) -> Struct {
    let fields = map
        .iter()
        .map(|(k, vs)| {
            let v = match vs.as_slice() {
                [one] => string(one),
                many => Value {
                    kind: Some(ValueKind::ListValue(ListValue {
                        values: many.iter().map(|s| string(s)).collect(),
                    })),
                },
            };
            (k.clone(), v)
        })
        .collect();
    Struct { fields }
}

/// Reads Kong's header/query table: a string, a list of strings, or `true`
/// (a query flag without `=`, read as `""`). Numbers are written as text.
pub(crate) fn struct_multimap(s: Struct) -> BTreeMap<String, Vec<String>> {
    fn text(v: Value) -> Option<String> {
        match v.kind {
            Some(ValueKind::StringValue(s)) => Some(s),
            Some(ValueKind::BoolValue(true)) => Some(String::new()),
            Some(ValueKind::NumberValue(n)) => Some(number_to_json(n).to_string()),
            _ => None,
        }
    }
    s.fields
        .into_iter()
        .map(|(k, v)| {
            let values = match v.kind {
                Some(ValueKind::ListValue(list)) => {
                    list.values.into_iter().filter_map(text).collect()
                }
                _ => text(v).into_iter().collect(),
            };
            (k, values)
        })
        .collect()
}

/// Removes `null` object members, recursively: Kong writes `null` for unset
/// config fields, and serde treats an explicit `null` differently from a
/// missing key (defaults would not apply).
pub(crate) fn strip_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(strip_nulls).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[test]
    fn repeated_header_names_become_lists() {
        let s = header_struct([("a", "1"), ("b", "x"), ("b", "y")]);
        assert_eq!(s.fields["a"], string("1"));
        assert_eq!(
            s.fields["b"].kind,
            Some(ValueKind::ListValue(ListValue {
                values: vec![string("x"), string("y")]
            }))
        );
    }

    #[test]
    fn json_round_trips_through_kong_values() {
        let cases = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-42),
            json!(1.5),
            json!(9_007_199_254_740_992_i64),
            json!(""),
            json!("text"),
            json!([]),
            json!([1, "two", null, [3]]),
            json!({}),
            json!({"nested": {"list": [{"deep": true}], "n": null}}),
        ];
        for case in cases {
            assert_eq!(to_json(from_json(case.clone())), case);
        }
    }

    #[test]
    fn large_integers_lose_precision_like_in_kong() {
        let big = json!(9_007_199_254_740_993_u64); // 2^53 + 1
        let back = to_json(from_json(big));
        assert_eq!(back, json!(9_007_199_254_740_992_i64));
        let huge = to_json(from_json(json!(u64::MAX)));
        assert_eq!(huge, json!(1.8446744073709552e19));
    }

    #[test]
    fn kong_nil_value_is_null_whatever_its_number() {
        for n in [0, 1, 7] {
            let v = Value {
                kind: Some(ValueKind::NullValue(n)),
            };
            assert_eq!(to_json(v), json!(null));
        }
        assert_eq!(to_json(Value { kind: None }), json!(null));
        let nothing: Option<String> = deserialize("m", Value::default()).unwrap();
        assert_eq!(nothing, None);
    }

    #[test]
    fn serde_types_convert_both_ways() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Data {
            id: u32,
            ratio: f64,
            tags: Vec<String>,
            inner: Option<Box<Data>>,
        }
        let data = Data {
            id: 7,
            ratio: 0.25,
            tags: vec!["a".into()],
            inner: Some(Box::new(Data {
                id: 8,
                ratio: 1.0,
                tags: vec![],
                inner: None,
            })),
        };
        let v = serialize("m", &data).unwrap();
        let back: Data = deserialize("m", v).unwrap();
        assert_eq!(back, data);
        let err = deserialize::<u32>("kong.ctx.shared.get", string("x")).unwrap_err();
        assert!(err.to_string().contains("kong.ctx.shared.get"), "{err}");
    }

    #[test]
    fn kong_multimaps_read_strings_lists_and_flags() {
        let s = Struct {
            fields: [
                ("one".to_owned(), string("1")),
                ("flag".to_owned(), from_json(json!(true))),
                ("many".to_owned(), from_json(json!(["a", "b"]))),
                ("empty".to_owned(), string("")),
            ]
            .into_iter()
            .collect(),
        };
        let m = struct_multimap(s);
        assert_eq!(m["one"], ["1"]);
        assert_eq!(m["flag"], [""]);
        assert_eq!(m["many"], ["a", "b"]);
        assert_eq!(m["empty"], [""]);
    }

    #[test]
    fn strip_nulls_removes_unset_members_at_any_depth() {
        let v = json!({"a": null, "b": {"c": null, "d": 1}, "e": [null, {"f": null}]});
        assert_eq!(strip_nulls(v), json!({"b": {"d": 1}, "e": [null, {}]}));
    }
}
