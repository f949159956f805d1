//! Coalesced header writes: consecutive `set_header` calls of one namespace
//! wait here and reach Kong as one `set_headers` call (or as the original
//! `set_header` when there was only one).
//!
//! In Kong, `kong.response.set_headers(t)` runs for each pair exactly what
//! `set_header(name, value)` runs (the Transfer-Encoding check,
//! `normalize_multi_header`, `ngx.header[name] = value`), and
//! `kong.service.request.set_headers(t)` what `set_header` runs (Host also
//! sets `upstream_host`; `ngx.req.set_header`). What differs is only where a
//! bad header fails, and the order of headers with different names (which
//! HTTP leaves insignificant). So a write waits here only when it cannot
//! fail on Kong's side: the phase allows it, the name is an HTTP token
//! (`:authority`, which `set_header` treats specially, is not), and the
//! value holds no control character. A name already waiting (in
//! any spelling: `X-A`, `x_a`) sends the batch first: a table holds one
//! value per key, and would leave the order of two spellings to Lua.

use prost::encoding::{encode_varint, encoded_len_varint};

use super::rules::Topic;
use super::snapshot::same_header_name;
use crate::plugin::Phase;
use crate::wire;

/// Where a coalescable header write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderTarget {
    /// `kong.response.set_header`.
    Response,
    /// `kong.service.request.set_header`.
    ServiceRequest,
}

impl HeaderTarget {
    pub(crate) const fn set_header(self) -> &'static str {
        match self {
            HeaderTarget::Response => "kong.response.set_header",
            HeaderTarget::ServiceRequest => "kong.service.request.set_header",
        }
    }

    pub(crate) const fn set_headers(self) -> &'static str {
        match self {
            HeaderTarget::Response => "kong.response.set_headers",
            HeaderTarget::ServiceRequest => "kong.service.request.set_headers",
        }
    }

    /// What a `set_header` on this target changes: `rules.rs`'s entry for
    /// it, kept here so that a waiting write needs no lookup (a test checks
    /// they agree).
    pub(crate) const fn topics(self) -> &'static [Topic] {
        match self {
            HeaderTarget::Response => &[Topic::ResponseHeaders, Topic::ServiceResponse],
            HeaderTarget::ServiceRequest => &[Topic::RequestHeaders],
        }
    }

    /// Where Kong allows both `set_header` and `set_headers`
    /// (`kong/pdk/response.lua`: rewrite, access, response;
    /// `kong/pdk/service/request.lua`: rewrite, access).
    fn allowed(self, phase: Phase) -> bool {
        match self {
            HeaderTarget::Response => {
                matches!(phase, Phase::Rewrite | Phase::Access | Phase::Response)
            }
            HeaderTarget::ServiceRequest => matches!(phase, Phase::Rewrite | Phase::Access),
        }
    }

    fn index(self) -> usize {
        match self {
            HeaderTarget::Response => 0,
            HeaderTarget::ServiceRequest => 1,
        }
    }
}

/// Whether `set_header(name, value)` may wait: it cannot fail in Kong.
pub(crate) fn coalescable(target: HeaderTarget, phase: Phase, name: &str, value: &str) -> bool {
    target.allowed(phase)
        && !name.is_empty()
        && name.bytes().all(|b| TOKEN[usize::from(b)])
        && valid_field_value(value.as_bytes())
}

/// Whether `value` has only bytes a header value may hold (tab, and no
/// other control character or DEL). Eight bytes at a time: a value is
/// usually printable ASCII, and one word test clears eight bytes; a word
/// with a tab or anything suspicious is checked byte by byte.
fn valid_field_value(value: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = value.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // A byte below 0x20 (high bit clear), or equal to 0x7f.
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let del = x ^ (ONES * 0x7f);
        let is_del = del.wrapping_sub(ONES) & !del & HIGHS;
        if (below_space | is_del) != 0 && !word.iter().all(|&b| FIELD_VALUE[usize::from(b)]) {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&b| FIELD_VALUE[usize::from(b)])
}

/// RFC 9110 `tchar`, as a table: checked for every byte of every waiting
/// header name.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// Bytes a header value may hold without Kong refusing it: tab, and
/// anything but the other control characters and DEL.
const FIELD_VALUE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b == 0x09 || (b >= 0x20 && b != 0x7f);
        b += 1;
    }
    table
};

/// The writes waiting for one target, kept encoded: each entry is the
/// `KV{k, v: Value{string_value}}` that `set_header` takes, which is also,
/// byte for byte, a `Struct` map entry (key field 1, value field 2), so a
/// batch becomes `set_headers` without re-encoding. The buffers are reused
/// from event to event.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Per entry: where it starts and ends in `bytes`, and where its name is.
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    end: usize,
    name_start: usize,
    name_end: usize,
}

impl Batch {
    fn name(&self, e: &Entry) -> &[u8] {
        &self.bytes[e.name_start..e.name_end]
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }
}

/// The header writes not sent yet, per target, in the order their targets
/// were first written.
#[derive(Debug, Default)]
pub(crate) struct PendingWrites {
    batches: [Batch; 2],
    /// Targets in the order of their first pending write.
    order: Vec<HeaderTarget>,
}

impl PendingWrites {
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        for batch in &mut self.batches {
            batch.clear();
        }
        self.order.clear();
    }

    /// Adds a write; `false` when the same name (in any spelling) is
    /// already waiting, so the batch must be sent first: a table holds one
    /// value per key, and Lua would choose between spellings.
    pub(crate) fn push(&mut self, target: HeaderTarget, name: &str, value: &str) -> bool {
        let batch = &mut self.batches[target.index()];
        if batch
            .entries
            .iter()
            .any(|e| same_header_name(batch.name(e), name))
        {
            return false;
        }
        let start = batch.bytes.len();
        let (name_start, name_end) = encode_kv(&mut batch.bytes, name, value);
        batch.entries.push(Entry {
            start,
            end: batch.bytes.len(),
            name_start,
            name_end,
        });
        if !self.order.contains(&target) {
            self.order.push(target);
        }
        true
    }

    /// Frames the first waiting call (method frame and arguments frame) into
    /// `out` and removes it from the queue; its method, or `None` when none
    /// waits.
    pub(crate) fn frame_next(&mut self, out: &mut Vec<u8>) -> Option<&'static str> {
        if self.order.is_empty() {
            return None;
        }
        let target = self.order.remove(0);
        let batch = &mut self.batches[target.index()];
        out.clear();
        let method = if let [one] = batch.entries.as_slice() {
            wire::push_frame(out, target.set_header().as_bytes());
            wire::push_frame(out, &batch.bytes[one.start..one.end]);
            target.set_header()
        } else {
            wire::push_frame(out, target.set_headers().as_bytes());
            // A Struct: each entry as a length-delimited field 1.
            let len: usize = batch
                .entries
                .iter()
                .map(|e| 1 + encoded_len_varint((e.end - e.start) as u64) + e.end - e.start)
                .sum();
            out.extend_from_slice(&frame_len(len).to_le_bytes());
            for e in &batch.entries {
                out.push(FIELD_1_LEN);
                encode_varint((e.end - e.start) as u64, out);
                out.extend_from_slice(&batch.bytes[e.start..e.end]);
            }
            target.set_headers()
        };
        batch.clear();
        Some(method)
    }
}

/// Tag of a length-delimited field 1 (also field 1 of KV and of a map entry).
const FIELD_1_LEN: u8 = 0x0a;
/// Tag of a length-delimited field 2.
const FIELD_2_LEN: u8 = 0x12;
/// Tag of `Value.string_value` (field 3, length-delimited).
const STRING_VALUE: u8 = 0x1a;

/// Appends `KV{k: name, v: Value{string_value: value}}` exactly as prost
/// encodes it; returns where the name's bytes are.
fn encode_kv(out: &mut Vec<u8>, name: &str, value: &str) -> (usize, usize) {
    // `k` is a proto3 string: absent when empty (never here: names are tokens).
    out.push(FIELD_1_LEN);
    encode_varint(name.len() as u64, out);
    let name_start = out.len();
    out.extend_from_slice(name.as_bytes());
    let name_end = out.len();
    // `v.kind` is a oneof: present even when the string is empty.
    let value_len = 1 + encoded_len_varint(value.len() as u64) + value.len();
    out.push(FIELD_2_LEN);
    encode_varint(value_len as u64, out);
    out.push(STRING_VALUE);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value.as_bytes());
    (name_start, name_end)
}

fn frame_len(len: usize) -> u32 {
    u32::try_from(len).expect("a frame longer than u32::MAX cannot be sent")
}

#[cfg(test)]
mod tests {

    #[test]
    fn field_values_are_checked_like_byte_by_byte() {
        let byte_by_byte = |v: &[u8]| v.iter().all(|&b| FIELD_VALUE[usize::from(b)]);
        let mut cases: Vec<Vec<u8>> = vec![
            b"Rust says Kong! to 127.0.0.1:8000".to_vec(),
            b"tab\there and more text".to_vec(),
            "caf\u{e9} \u{2603} utf-8 bytes".as_bytes().to_vec(),
            Vec::new(),
        ];
        for bad in [0u8, 0x08, 0x0a, 0x0d, 0x1f, 0x7f] {
            for at in [0, 5, 7, 8, 15, 20] {
                let mut v = b"abcdefghijklmnopqrstuvw".to_vec();
                v[at] = bad;
                cases.push(v);
            }
        }
        for case in cases {
            assert_eq!(valid_field_value(&case), byte_by_byte(&case), "{case:?}");
        }
    }
    use kong_pdk_proto::{self as pb, Struct};
    use prost::Message;

    use super::*;
    use crate::value;

    #[test]
    fn only_writes_kong_cannot_refuse_wait() {
        let ok = |t, p, n, v| coalescable(t, p, n, v);
        assert!(ok(HeaderTarget::Response, Phase::Access, "X-A", "v a\tl"));
        assert!(ok(HeaderTarget::Response, Phase::Response, "x-a", ""));
        assert!(!ok(HeaderTarget::Response, Phase::Log, "x-a", "v"));
        assert!(!ok(
            HeaderTarget::ServiceRequest,
            Phase::Response,
            "x-a",
            "v"
        ));
        assert!(!ok(
            HeaderTarget::ServiceRequest,
            Phase::Access,
            ":authority",
            "h"
        ));
        assert!(!ok(HeaderTarget::Response, Phase::Access, "", "v"));
        assert!(!ok(HeaderTarget::Response, Phase::Access, "x a", "v"));
        assert!(!ok(HeaderTarget::Response, Phase::Access, "x-a", "a\r\nb"));
        assert!(!ok(HeaderTarget::Response, Phase::Access, "x-a", "a\0"));
    }

    fn kv(k: &str, v: &str) -> pb::Kv {
        pb::Kv {
            k: k.into(),
            v: Some(value::string(v)),
        }
    }

    /// Reads back the frames `frame_next` wrote: (method, arguments).
    fn next(p: &mut PendingWrites) -> Option<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let method = p.frame_next(&mut out)?;
        let mut frames = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let len = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            frames.push(out[at + 4..at + 4 + len].to_vec());
            at += 4 + len;
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], method.as_bytes());
        Some((
            String::from_utf8(frames[0].clone()).unwrap(),
            frames[1].clone(),
        ))
    }

    #[test]
    fn the_topics_are_the_rule_tables_entry() {
        for target in [HeaderTarget::Response, HeaderTarget::ServiceRequest] {
            assert_eq!(
                super::super::rules::rule(target.set_header()),
                super::super::rules::Rule::Write(super::super::rules::Effect::Topics(
                    target.topics()
                ))
            );
        }
    }

    #[test]
    fn entries_encode_exactly_as_prost_does() {
        let long = "v".repeat(300);
        for (k, v) in [("x-a", "1"), ("x-empty", ""), ("x-long", long.as_str())] {
            let mut ours = Vec::new();
            let (start, end) = encode_kv(&mut ours, k, v);
            assert_eq!(ours, kv(k, v).encode_to_vec(), "{k}");
            assert_eq!(&ours[start..end], k.as_bytes());
        }
    }

    #[test]
    fn one_write_stays_a_set_header_and_more_become_set_headers() {
        let mut p = PendingWrites::default();
        let long = "w".repeat(200);
        assert!(p.push(HeaderTarget::ServiceRequest, "x-b", "1"));
        assert!(p.push(HeaderTarget::Response, "x-a", "1"));
        assert!(p.push(HeaderTarget::Response, "x-c", &long));
        let (method, args) = next(&mut p).unwrap();
        assert_eq!(method, "kong.service.request.set_header");
        assert_eq!(pb::Kv::decode(&args[..]).unwrap(), kv("x-b", "1"));
        let (method, args) = next(&mut p).unwrap();
        assert_eq!(method, "kong.response.set_headers");
        let want = Struct {
            fields: [("x-a", "1"), ("x-c", long.as_str())]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), value::string(v)))
                .collect(),
        };
        assert_eq!(Struct::decode(&args[..]).unwrap(), want);
        assert!(next(&mut p).is_none());
        assert!(p.is_empty());
        // The buffers are reused.
        assert!(p.push(HeaderTarget::Response, "x-d", "4"));
        assert_eq!(next(&mut p).unwrap().0, "kong.response.set_header");
    }

    #[test]
    fn a_name_already_waiting_must_wait_for_the_batch() {
        let mut p = PendingWrites::default();
        assert!(p.push(HeaderTarget::Response, "X-A", "1"));
        assert!(!p.push(HeaderTarget::Response, "x_a", "2"));
        assert!(!p.push(HeaderTarget::Response, "X-A", "2"));
        assert!(p.push(HeaderTarget::ServiceRequest, "x-a", "2"));
        assert!(p.push(HeaderTarget::Response, "x-ab", "2"));
    }
}
