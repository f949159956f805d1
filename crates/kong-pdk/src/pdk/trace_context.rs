//! The trace a request belongs to, from its headers: W3C Trace Context
//! (`traceparent`, `tracestate`) first, then B3 (`b3` single header, then
//! the `x-b3-*` headers) — the formats Kong's tracing and its
//! OpenTelemetry/Zipkin plugins propagate.

use crate::multimap::Headers;

/// Which header format the context came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// W3C `traceparent` (and `tracestate`).
    W3c,
    /// B3 single header `b3`.
    B3Single,
    /// B3 multiple headers `x-b3-traceid`, `x-b3-spanid`, ….
    B3Multi,
}

/// A request's trace context: what a span of the plugin's own needs to join
/// the request's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceContext {
    /// The trace id: 32 lower-case hex digits (a 64-bit B3 id is left-padded
    /// with zeros, as W3C and OpenTelemetry expect).
    pub trace_id: String,
    /// The caller's span id (the parent of the plugin's spans): 16 lower-case
    /// hex digits.
    pub parent_id: String,
    /// Whether the caller sampled the trace (`None`: B3 left it undecided).
    pub sampled: Option<bool>,
    /// W3C `tracestate`, as received (vendor data to pass on); empty for B3.
    pub trace_state: String,
    /// Where it came from.
    pub format: TraceFormat,
}

impl TraceContext {
    /// Makes this the trace of the current event: the event's span (named
    /// `"<plugin> <phase>"`) becomes a child of the caller's span, and every
    /// span the handler opens below it joins the request's trace — the
    /// trace Kong's own OpenTelemetry spans are in. Call it before opening
    /// spans of your own. Takes effect with the `otel` cargo feature and an
    /// OTLP endpoint configured (docs/TRACING.md); otherwise it does
    /// nothing, at no cost. No PDK call.
    ///
    /// ```no_run
    /// # async fn access(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// if let Some(trace) = kong.request().get_trace_context().await? {
    ///     trace.adopt();
    /// }
    /// let span = tracing::info_span!("lookup", user = "ann");
    /// // … work inside `span` is exported in the request's trace
    /// # drop(span); Ok(()) }
    /// ```
    pub fn adopt(&self) {
        #[cfg(feature = "otel")]
        crate::otel::adopt(self);
    }

    /// The W3C `traceparent` value for a child span `span_id` (16 hex
    /// digits) of this context, to send upstream.
    pub fn child_traceparent(&self, span_id: &str) -> String {
        let flags = if self.sampled.unwrap_or(false) {
            "01"
        } else {
            "00"
        };
        format!("00-{}-{span_id}-{flags}", self.trace_id)
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// W3C `traceparent`: `version-traceid-parentid-flags`, lower-case hex.
/// Version `ff` is invalid; version `00` has exactly four fields; a later
/// version may append fields after a `-`. All-zero ids are invalid.
pub(crate) fn parse_traceparent(value: &str) -> Option<(String, String, bool)> {
    let value = value.trim();
    let mut fields = value.splitn(5, '-');
    let version = fields.next()?;
    let trace_id = fields.next()?;
    let parent_id = fields.next()?;
    let flags = fields.next()?;
    let rest = fields.next();
    if !is_hex(version, 2) || version == "ff" {
        return None;
    }
    if version == "00" && rest.is_some() {
        return None;
    }
    if !is_hex(trace_id, 32) || all_zero(trace_id) || !is_hex(parent_id, 16) || all_zero(parent_id)
    {
        return None;
    }
    if !is_hex(flags, 2) {
        return None;
    }
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
    Some((trace_id.to_owned(), parent_id.to_owned(), sampled))
}

/// A B3 trace id (16 or 32 hex digits, any case) as 32 lower-case digits.
fn b3_trace_id(id: &str) -> Option<String> {
    let id = id.trim().to_ascii_lowercase();
    match id.len() {
        16 if is_hex(&id, 16) && !all_zero(&id) => Some(format!("{:0>32}", id)),
        32 if is_hex(&id, 32) && !all_zero(&id) => Some(id),
        _ => None,
    }
}

fn b3_span_id(id: &str) -> Option<String> {
    let id = id.trim().to_ascii_lowercase();
    (is_hex(&id, 16) && !all_zero(&id)).then_some(id)
}

/// B3 sampling: `1`/`d` (debug) yes, `0` no, `true`/`false` tolerated.
fn b3_sampled(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "d" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// The context in `headers`: W3C first, then B3 single, then B3 multi;
/// `None` when no format is present and valid.
pub(crate) fn from_headers(headers: &Headers) -> Option<TraceContext> {
    if let Some((trace_id, parent_id, sampled)) =
        headers.get("traceparent").and_then(parse_traceparent)
    {
        return Some(TraceContext {
            trace_id,
            parent_id,
            sampled: Some(sampled),
            trace_state: headers.get_all("tracestate").join(","),
            format: TraceFormat::W3c,
        });
    }
    if let Some(single) = headers.get("b3") {
        // `{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`; a lone `0`/`1`/`d`
        // is a sampling decision without a trace.
        let parts: Vec<&str> = single.split('-').collect();
        if parts.len() >= 2 {
            if let (Some(trace_id), Some(parent_id)) = (b3_trace_id(parts[0]), b3_span_id(parts[1]))
            {
                return Some(TraceContext {
                    trace_id,
                    parent_id,
                    sampled: parts.get(2).and_then(|s| b3_sampled(s)),
                    trace_state: String::new(),
                    format: TraceFormat::B3Single,
                });
            }
        }
    }
    let trace_id = headers.get("x-b3-traceid").and_then(b3_trace_id)?;
    let parent_id = headers.get("x-b3-spanid").and_then(b3_span_id)?;
    let sampled = if headers.get("x-b3-flags").map(str::trim) == Some("1") {
        Some(true)
    } else {
        headers.get("x-b3-sampled").and_then(b3_sampled)
    };
    Some(TraceContext {
        trace_id,
        parent_id,
        sampled,
        trace_state: String::new(),
        format: TraceFormat::B3Multi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().copied().collect()
    }

    #[test]
    fn w3c_traceparent_follows_the_spec() {
        // The W3C Trace Context example.
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(tp),
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into(),
                true
            ))
        );
        assert_eq!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .map(|t| t.2),
            Some(false)
        );
        for bad in [
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // extra field in 00
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // no flags
            "",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later")
                .is_some()
        );
    }

    #[test]
    fn w3c_comes_first_then_b3_single_then_b3_headers() {
        let both = headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "rojo=00f067aa0ba902b7"),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        ]);
        let ctx = from_headers(&both).unwrap();
        assert_eq!(ctx.format, TraceFormat::W3c);
        assert_eq!(ctx.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        assert_eq!(
            ctx.child_traceparent("b7ad6b7169203331"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
        );

        let single = headers(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )]);
        let ctx = from_headers(&single).unwrap();
        assert_eq!(
            (
                ctx.trace_id.as_str(),
                ctx.parent_id.as_str(),
                ctx.sampled,
                ctx.format
            ),
            (
                "80f198ee56343ba864fe8b2a57d3eff7",
                "e457b5a2e4d86bd1",
                Some(true),
                TraceFormat::B3Single
            )
        );

        let multi = headers(&[
            ("x-b3-traceid", "463AC35C9F6413AD"),
            ("x-b3-spanid", "A2FB4A1D1A96D312"),
            ("x-b3-sampled", "0"),
        ]);
        let ctx = from_headers(&multi).unwrap();
        assert_eq!(ctx.trace_id, "0000000000000000463ac35c9f6413ad");
        assert_eq!(ctx.parent_id, "a2fb4a1d1a96d312");
        assert_eq!(ctx.sampled, Some(false));
        assert_eq!(ctx.format, TraceFormat::B3Multi);

        // A bad traceparent falls through to B3; nothing valid is None.
        let fallback = headers(&[
            ("traceparent", "garbage"),
            ("b3", "463ac35c9f6413ad-a2fb4a1d1a96d312"),
        ]);
        assert_eq!(
            from_headers(&fallback).unwrap().format,
            TraceFormat::B3Single
        );
        assert_eq!(from_headers(&headers(&[("b3", "1")])), None);
        assert_eq!(from_headers(&headers(&[])), None);
    }
}
