//! Answers to `get_header(name)` and `get_query_arg(name)` derived from a
//! `get_headers()` / `get_query()` answer of the same event, following
//! exactly how Kong looks a name up. Where Kong's answer could differ from
//! what the table shows, the lookup says "ask Kong" (`None`).

use kong_pdk_proto::{Struct, Value, ValueKind};

use crate::pdk::DEFAULT_MAX;
use crate::plugin::Phase;

/// How Kong finds one name in the table the snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// `kong.request.get_header` outside the log phase: `ngx.var.http_<name>`
    /// (all matching header lines, joined), and `ngx.req.get_headers()[name]`
    /// only when that value holds `", "` (`kong/tools/http.lua`).
    NginxVar,
    /// A Lua table from `ngx.req.get_headers()` / `ngx.resp.get_headers()`
    /// (or the log timer's saved copy): the raw key, then the key in lower
    /// case with `_` as `-` (the table's `__index`); the first value.
    HeaderTable,
    /// `kong.request.get_query()[name]`: the exact key; the first value.
    QueryTable,
}

/// A `get_headers`/`get_query` answer kept for deriving single lookups.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    table: Option<Table>,
    /// Names written since the table was read: ask Kong for them.
    dirty: Vec<String>,
}

#[derive(Debug)]
struct Table {
    fields: Struct,
    /// The `max` it was read with.
    max: i32,
    /// Header lines (or query arguments) in it: each value counts once,
    /// as nginx counts them against `max`.
    lines: usize,
    /// Whether Kong ignored `max` and answered with the same table its
    /// single lookups read (the log timer's saved headers).
    same_table: bool,
}

impl Snapshot {
    pub(crate) fn clear(&mut self) {
        self.table = None;
        self.dirty.clear();
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.table.is_some()
    }

    /// Keeps the answer of a `get_headers(max)`/`get_query(max)` call.
    pub(crate) fn load(&mut self, fields: Struct, max: i32, phase: Phase) {
        let lines = fields.fields.values().map(value_count).sum();
        self.table = Some(Table {
            fields,
            max,
            lines,
            same_table: phase == Phase::Log,
        });
        self.dirty.clear();
    }

    /// A write changed `name`: its lookups go to Kong from now on.
    pub(crate) fn mark_dirty(&mut self, name: &str) {
        if self.table.is_some() {
            self.dirty.push(name.to_owned());
        }
    }

    /// Kong's answer to a lookup of `name`, when the snapshot determines it.
    /// `Some("")` is Kong's nil (absent).
    pub(crate) fn lookup(&self, name: &str, how: Lookup) -> Option<&str> {
        let table = self.table.as_ref()?;
        if self.dirty.iter().any(|d| same_header_name(d, name)) {
            return None;
        }
        // The table may hold fewer lines than Kong has when it was cut at
        // `max`; a single lookup reads a table cut at Kong's default instead.
        let complete = (table.lines as i64) < i64::from(table.max);
        let found = match how {
            Lookup::NginxVar => return table.nginx_var(name, complete),
            Lookup::HeaderTable => table.fields.fields.get(name).or_else(|| {
                // The `__index` key: lower case, `_` as `-`.
                let normalized = |k: &&String| {
                    k.len() == name.len()
                        && k.bytes().zip(name.bytes()).all(|(k, n)| {
                            k == if n == b'_' {
                                b'-'
                            } else {
                                n.to_ascii_lowercase()
                            }
                        })
                };
                table
                    .fields
                    .fields
                    .iter()
                    .find(|(k, _)| normalized(k))
                    .map(|(_, v)| v)
            }),
            Lookup::QueryTable => table.fields.fields.get(name),
        };
        if !(table.same_table || table.same_as_default(complete)) {
            return None;
        }
        match found {
            None => Some(""),
            Some(v) => first_string(v),
        }
    }
}

impl Table {
    /// Whether this table is the one Kong's lookups read: they call
    /// `get_headers()`/`get_query()` with the default `max` (100), so ours
    /// must be that, or hold everything and fewer lines.
    fn same_as_default(&self, complete: bool) -> bool {
        self.max == i32::from(DEFAULT_MAX) || (complete && self.lines < usize::from(DEFAULT_MAX))
    }

    /// `ngx.var.http_<name>` and its fall-back to the header table.
    fn nginx_var(&self, name: &str, complete: bool) -> Option<&str> {
        let mut matches = self
            .fields
            .fields
            .iter()
            .filter(|(k, _)| same_header_name(k, name));
        let Some((key, value)) = matches.next() else {
            // nginx sees every header line; the table may not.
            return complete.then_some("");
        };
        if matches.next().is_some() || key.contains('_') {
            // Two spellings (`x-a` and `x_a`) or a key the fall-back lookup
            // cannot find: rare enough to ask Kong.
            return None;
        }
        let values = match &value.kind {
            Some(ValueKind::ListValue(list)) => list.values.as_slice(),
            _ => std::slice::from_ref(value),
        };
        let cookie = key == "cookie";
        match values {
            // More Cookie lines may lie beyond the cut; nginx would join them.
            [_] if cookie && !complete => None,
            // One line: nginx's value itself. A value holding ", " makes Kong
            // read it from a default table instead, which must be ours.
            [one] => string(one).filter(|v| !v.contains(", ") || self.same_as_default(complete)),
            // Several lines: nginx joins them with ", ", so Kong falls back to
            // the default table's first value; Cookie lines are joined with
            // "; " and returned whole.
            [first, ..] if !cookie && self.same_as_default(complete) => string(first),
            _ => None,
        }
    }
}

fn value_count(v: &Value) -> usize {
    match &v.kind {
        Some(ValueKind::ListValue(list)) => list.values.len(),
        _ => 1,
    }
}

fn string(v: &Value) -> Option<&str> {
    match &v.kind {
        Some(ValueKind::StringValue(s)) => Some(s),
        // `true` (a query flag) makes Kong fail the call: let Kong do it.
        _ => None,
    }
}

fn first_string(v: &Value) -> Option<&str> {
    match &v.kind {
        Some(ValueKind::ListValue(list)) => list.values.first().and_then(string),
        _ => string(v),
    }
}

/// Whether two names are the same header for nginx (`$http_*`) and Kong:
/// case-insensitive, `-` ≡ `_`.
pub(crate) fn same_header_name(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    let fold = |b: &u8| match b {
        b'-' => b'_',
        b => b.to_ascii_lowercase(),
    };
    let (a, b) = (a.as_ref(), b.as_ref());
    a.len() == b.len() && a.iter().map(fold).eq(b.iter().map(fold))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value {
            kind: Some(ValueKind::StringValue(v.into())),
        }
    }

    fn list(vs: &[&str]) -> Value {
        Value {
            kind: Some(ValueKind::ListValue(kong_pdk_proto::ListValue {
                values: vs.iter().map(|v| s(v)).collect(),
            })),
        }
    }

    fn snap(fields: &[(&str, Value)], max: i32, phase: Phase) -> Snapshot {
        let mut snap = Snapshot::default();
        snap.load(
            Struct {
                fields: fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            },
            max,
            phase,
        );
        snap
    }

    #[test]
    fn nginx_var_lookup_folds_case_and_dashes() {
        let snap = snap(
            &[
                ("x-custom", s("v")),
                ("x-multi", list(&["a", "b"])),
                ("x-comma", s("a, b")),
                ("cookie", list(&["a=1", "b=2"])),
            ],
            100,
            Phase::Access,
        );
        assert_eq!(snap.lookup("X_Custom", Lookup::NginxVar), Some("v"));
        assert_eq!(snap.lookup("x-multi", Lookup::NginxVar), Some("a"));
        assert_eq!(snap.lookup("x-comma", Lookup::NginxVar), Some("a, b"));
        assert_eq!(snap.lookup("absent", Lookup::NginxVar), Some(""));
        // nginx joins cookies with "; ": Kong answers "a=1; b=2".
        assert_eq!(snap.lookup("cookie", Lookup::NginxVar), None);
    }

    #[test]
    fn a_cut_table_does_not_answer_for_absent_names() {
        let fields: Vec<(String, Value)> = (0..3).map(|i| (format!("h{i}"), s("v"))).collect();
        let fields: Vec<(&str, Value)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let cut = snap(&fields, 3, Phase::Access);
        assert_eq!(cut.lookup("h1", Lookup::NginxVar), Some("v"));
        assert_eq!(cut.lookup("h9", Lookup::NginxVar), None);
        assert_eq!(cut.lookup("h9", Lookup::HeaderTable), None);
        // The log timer's saved table is what get_header reads, cut or not.
        let saved = snap(&fields, 3, Phase::Log);
        assert_eq!(saved.lookup("h9", Lookup::HeaderTable), Some(""));
    }

    #[test]
    fn header_tables_try_the_raw_key_then_the_normalized_one() {
        let snap = snap(
            &[("x_raw", s("underscore")), ("x-a", s("dash"))],
            100,
            Phase::Log,
        );
        assert_eq!(
            snap.lookup("x_raw", Lookup::HeaderTable),
            Some("underscore")
        );
        assert_eq!(snap.lookup("X_RAW", Lookup::HeaderTable), Some(""));
        assert_eq!(snap.lookup("X_A", Lookup::HeaderTable), Some("dash"));
        // $http_x_raw matches the header, but Kong's fall-back could not.
        assert_eq!(snap.lookup("x-raw", Lookup::NginxVar), None);
    }

    #[test]
    fn query_lookups_are_exact_and_leave_flags_to_kong() {
        let flag = Value {
            kind: Some(ValueKind::BoolValue(true)),
        };
        let snap = snap(
            &[("a", list(&["1", "2"])), ("flag", flag), ("E", s(""))],
            100,
            Phase::Access,
        );
        assert_eq!(snap.lookup("a", Lookup::QueryTable), Some("1"));
        assert_eq!(snap.lookup("e", Lookup::QueryTable), Some(""));
        assert_eq!(snap.lookup("E", Lookup::QueryTable), Some(""));
        assert_eq!(snap.lookup("flag", Lookup::QueryTable), None);
    }

    #[test]
    fn written_names_go_to_kong() {
        let mut snap = snap(&[("x-a", s("1")), ("x-b", s("2"))], 100, Phase::Access);
        snap.mark_dirty("X_A");
        assert_eq!(snap.lookup("x-a", Lookup::NginxVar), None);
        assert_eq!(snap.lookup("x-b", Lookup::NginxVar), Some("2"));
    }

    #[test]
    fn a_table_read_with_another_max_answers_only_when_complete_and_small() {
        let small = snap(&[("x-a", s("1"))], 1000, Phase::Access);
        assert_eq!(small.lookup("absent", Lookup::HeaderTable), Some(""));
        assert_eq!(small.lookup("x-a", Lookup::NginxVar), Some("1"));
        let cut = snap(&[("x-a", s("1")), ("x-b", s("2"))], 2, Phase::Access);
        assert_eq!(cut.lookup("x-a", Lookup::HeaderTable), None);
    }
}
