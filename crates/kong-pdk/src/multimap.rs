//! [`Headers`] and [`Query`]: name → values multimaps, as Kong's header and
//! query tables.

use std::collections::BTreeMap;
use std::collections::btree_map;

macro_rules! multimap {
    ($(#[$doc:meta])* $name:ident, $eq:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name(BTreeMap<String, Vec<String>>);

        impl $name {
            /// An empty map.
            pub fn new() -> Self {
                Self::default()
            }

            /// The first value of `name`.
            pub fn get(&self, name: &str) -> Option<&str> {
                self.get_all(name).first().map(String::as_str)
            }

            /// Every value of `name` (empty when absent).
            pub fn get_all(&self, name: &str) -> &[String] {
                let eq: fn(&str, &str) -> bool = $eq;
                if let Some(values) = self.0.get(name) {
                    return values;
                }
                self.0
                    .iter()
                    .find(|(k, _)| eq(k, name))
                    .map_or(&[], |(_, v)| v.as_slice())
            }

            /// Whether `name` is present.
            pub fn contains(&self, name: &str) -> bool {
                !self.get_all(name).is_empty() || self.0.contains_key(name)
            }

            /// Replaces the values of `name` with one value.
            pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
                self.0.insert(name.into(), vec![value.into()]);
                self
            }

            /// Adds a value to `name`.
            pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
                self.0.entry(name.into()).or_default().push(value.into());
                self
            }

            /// Removes `name`; returns its values.
            pub fn remove(&mut self, name: &str) -> Option<Vec<String>> {
                self.0.remove(name)
            }

            /// The number of distinct names.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether there are no names.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// `(name, values)` pairs, sorted by name.
            pub fn iter(&self) -> btree_map::Iter<'_, String, Vec<String>> {
                self.0.iter()
            }

            /// The underlying map.
            pub fn into_inner(self) -> BTreeMap<String, Vec<String>> {
                self.0
            }

            pub(crate) fn as_map(&self) -> &BTreeMap<String, Vec<String>> {
                &self.0
            }
        }

        impl From<BTreeMap<String, Vec<String>>> for $name {
            fn from(map: BTreeMap<String, Vec<String>>) -> Self {
                $name(map)
            }
        }

        impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for $name {
            fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
                let mut map = $name::new();
                for (k, v) in iter {
                    map.append(k, v);
                }
                map
            }
        }

        /// As Kong writes a header or query table in JSON (e.g. in
        /// `kong.log.serialize()`): a name with one value maps to a string,
        /// a name with several to an array.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_multimap(&self.0, s)
            }
        }

        /// Reads what `Serialize` writes, and Kong's `true` for a query flag
        /// (`?debug`) as one empty value.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_multimap(d).map($name)
            }
        }

        impl<'a> IntoIterator for &'a $name {
            type Item = (&'a String, &'a Vec<String>);
            type IntoIter = btree_map::Iter<'a, String, Vec<String>>;
            fn into_iter(self) -> Self::IntoIter {
                self.0.iter()
            }
        }
    };
}

fn serialize_multimap<S: serde::Serializer>(
    map: &BTreeMap<String, Vec<String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(map.len()))?;
    for (name, values) in map {
        match values.as_slice() {
            [one] => out.serialize_entry(name, one)?,
            many => out.serialize_entry(name, many)?,
        }
    }
    out.end()
}

fn deserialize_multimap<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Values {
        One(String),
        Many(Vec<String>),
        Flag(bool),
    }
    let raw: BTreeMap<String, Values> = serde::Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .filter_map(|(name, values)| {
            let values = match values {
                Values::One(v) => vec![v],
                Values::Many(vs) => vs,
                Values::Flag(true) => vec![String::new()],
                Values::Flag(false) => return None,
            };
            Some((name, values))
        })
        .collect())
}

multimap!(
    /// HTTP headers: names → values. Kong sends names in lower case; `get`
    /// ignores case.
    Headers,
    |a, b| a.eq_ignore_ascii_case(b)
);

multimap!(
    /// Query arguments: names → values. A flag without `=` (`?debug`) reads
    /// as one empty value; names are case-sensitive.
    Query,
    |a, b| a == b
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_ignore_case_and_keep_every_value() {
        let h: Headers = [("x-multi", "a"), ("X-Multi", "b"), ("host", "h")]
            .into_iter()
            .collect();
        assert_eq!(h.get("HOST"), Some("h"));
        assert_eq!(h.get_all("x-multi"), ["a"]);
        assert_eq!(h.get_all("X-Multi"), ["b"]);
        assert_eq!(h.get("absent"), None);
        assert!(h.contains("Host"));
    }

    #[test]
    fn json_is_kongs_shape_one_value_a_string_several_an_array() {
        let h: Headers = [("accept", "a"), ("x-multi", "1"), ("x-multi", "2")]
            .into_iter()
            .collect();
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"accept": "a", "x-multi": ["1", "2"]})
        );
        assert_eq!(serde_json::from_value::<Headers>(json).unwrap(), h);
        let q: Query =
            serde_json::from_value(serde_json::json!({"debug": true, "off": false, "a": "1"}))
                .unwrap();
        assert_eq!(q.get("debug"), Some(""));
        assert!(!q.contains("off"));
        assert!(serde_json::from_value::<Query>(serde_json::json!({"a": 1})).is_err());
    }

    #[test]
    fn query_is_case_sensitive() {
        let mut q = Query::new();
        q.append("a", "1").append("a", "2").insert("B", "x");
        assert_eq!(q.get_all("a"), ["1", "2"]);
        assert_eq!(q.get("b"), None);
        assert_eq!(q.len(), 2);
        assert_eq!(q.remove("a"), Some(vec!["1".into(), "2".into()]));
    }
}
