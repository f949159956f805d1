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
//! value holds no control character. Two spellings of one name
//! (`X-A`, `x_a`) never share a batch: a table would leave their order to
//! Lua.

use std::collections::BTreeMap;

use kong_pdk_proto::{self as pb, Struct};

use super::snapshot::fold;
use crate::plugin::Phase;
use crate::value;

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

    const fn set_headers(self) -> &'static str {
        match self {
            HeaderTarget::Response => "kong.response.set_headers",
            HeaderTarget::ServiceRequest => "kong.service.request.set_headers",
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
        && name.bytes().all(is_token_byte)
        && value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A call the pending writes turn into.
#[derive(Debug)]
pub(crate) enum PendingCall {
    /// One write: the original `set_header`.
    One(&'static str, pb::Kv),
    /// Several: one `set_headers`.
    Many(&'static str, Struct),
}

/// The header writes not sent yet, per target, in the order their targets
/// were first written.
#[derive(Debug, Default)]
pub(crate) struct PendingWrites {
    batches: [Vec<(String, String)>; 2],
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

    /// Adds a write; `false` when another spelling of the same name is
    /// pending, so the batch must be sent first.
    pub(crate) fn push(&mut self, target: HeaderTarget, name: &str, value: &str) -> bool {
        let batch = &mut self.batches[target.index()];
        let folded = fold(name);
        if let Some(entry) = batch.iter_mut().find(|(n, _)| fold(n) == folded) {
            if entry.0 != name {
                return false;
            }
            // The same name again: the later value wins, as in Kong.
            value.clone_into(&mut entry.1);
            return true;
        }
        batch.push((name.to_owned(), value.to_owned()));
        if !self.order.contains(&target) {
            self.order.push(target);
        }
        true
    }

    /// The first pending call, removed from the queue.
    pub(crate) fn take_next(&mut self) -> Option<PendingCall> {
        if self.order.is_empty() {
            return None;
        }
        let target = self.order.remove(0);
        let batch = std::mem::take(&mut self.batches[target.index()]);
        Some(if batch.len() == 1 {
            let (k, v) = batch.into_iter().next().expect("one entry");
            PendingCall::One(
                target.set_header(),
                pb::Kv {
                    k,
                    v: Some(value::string(&v)),
                },
            )
        } else {
            let map: BTreeMap<String, Vec<String>> =
                batch.into_iter().map(|(k, v)| (k, vec![v])).collect();
            PendingCall::Many(target.set_headers(), value::multimap_struct(&map))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn one_write_stays_a_set_header_and_more_become_set_headers() {
        let mut p = PendingWrites::default();
        assert!(p.push(HeaderTarget::ServiceRequest, "x-b", "1"));
        assert!(p.push(HeaderTarget::Response, "x-a", "1"));
        assert!(p.push(HeaderTarget::Response, "x-c", "2"));
        assert!(p.push(HeaderTarget::Response, "x-a", "3"));
        match p.take_next() {
            Some(PendingCall::One(m, kv)) => {
                assert_eq!(m, "kong.service.request.set_header");
                assert_eq!(kv.k, "x-b");
            }
            other => panic!("{other:?}"),
        }
        match p.take_next() {
            Some(PendingCall::Many(m, st)) => {
                assert_eq!(m, "kong.response.set_headers");
                assert_eq!(st.fields.len(), 2);
                assert_eq!(st.fields["x-a"], value::string("3"));
            }
            other => panic!("{other:?}"),
        }
        assert!(p.take_next().is_none());
        assert!(p.is_empty());
    }

    #[test]
    fn another_spelling_of_a_pending_name_must_wait_for_the_batch() {
        let mut p = PendingWrites::default();
        assert!(p.push(HeaderTarget::Response, "X-A", "1"));
        assert!(!p.push(HeaderTarget::Response, "x_a", "2"));
        assert!(!p.push(HeaderTarget::Response, "x-a", "2"));
        assert!(p.push(HeaderTarget::ServiceRequest, "x-a", "2"));
    }
}
