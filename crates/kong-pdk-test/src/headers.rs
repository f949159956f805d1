//! [`HeaderList`]: HTTP headers in order, names compared without case.

use std::collections::BTreeMap;

/// HTTP headers as an ordered list of `(name, value)` pairs.
///
/// A name may appear several times (a multi-valued header); names keep the
/// case they were written with and every lookup ignores case.
///
/// ```
/// use kong_pdk_test::HeaderList;
///
/// let mut h: HeaderList = [("Accept", "a/b"), ("x-multi", "1"), ("X-Multi", "2")]
///     .into_iter()
///     .collect();
/// assert_eq!(h.get("accept"), Some("a/b"));
/// assert_eq!(h.get_all("x-multi"), ["1", "2"]);
/// h.set("x-multi", "3");
/// assert_eq!(h.get_all("X-MULTI"), ["3"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (empty when absent).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces every value of `name` with `value` (at the position of the
    /// first one, or at the end).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.set_all(name, [value.into()]);
    }

    /// Replaces every value of `name` with `values`; no values removes it.
    pub fn set_all(&mut self, name: impl Into<String>, values: impl IntoIterator<Item = String>) {
        let name = name.into();
        let at = self
            .0
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(&name))
            .unwrap_or(self.0.len());
        self.remove(&name);
        let at = at.min(self.0.len());
        let new: Vec<(String, String)> = values.into_iter().map(|v| (name.clone(), v)).collect();
        self.0.splice(at..at, new);
    }

    /// Adds a value to `name`.
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Removes `name`; whether it was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.0.len() != before
    }

    /// The `(name, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of `(name, value)` pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lower-cased names → values, as `ngx.req.get_headers()` gives them;
    /// at most `max` pairs are read.
    pub(crate) fn grouped(&self, max: usize) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in self.0.iter().take(max) {
            out.entry(k.to_ascii_lowercase())
                .or_default()
                .push(v.clone());
        }
        out
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for HeaderList {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        HeaderList(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a HeaderList {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a str, &'a str),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
