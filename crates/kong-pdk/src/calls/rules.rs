//! The call layer's rules, as tables: what each PDK read depends on, and
//! what each write changes. Every entry is derived from Kong's Lua PDK
//! (`kong/pdk/*.lua`, `kong/runloop/plugin_servers/plugin.lua`, Kong 3.10);
//! the comment beside it names what Kong reads or writes. A method missing
//! from both tables is never cached and drops the whole cache.

/// What a cached answer depends on. A write names the topics it can change;
/// their entries are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topic {
    /// Headers of nginx's request, and what Kong derives from them.
    RequestHeaders,
    /// `ngx.var.args`.
    RequestQuery,
    /// `ngx.req.get_method()`.
    RequestMethod,
    /// `ngx.req.get_body_data()`.
    RequestBody,
    /// The request line and connection: nothing a plugin writes changes them.
    Request,
    /// `ngx.ctx.authenticated_consumer` / `authenticated_credential`.
    Consumer,
    /// `ngx.header` (the client response's headers).
    ResponseHeaders,
    /// `ngx.status`.
    ResponseStatus,
    /// The upstream's response.
    ServiceResponse,
    /// `kong.ctx.shared`.
    CtxShared,
    /// `ngx.ctx` values read by key.
    NginxCtx,
    /// `kong.log.serialize()`.
    Serialize,
    /// Facts about the node, the route, the TLS session: fixed for the event.
    Fixed,
}

/// The reads whose repeated identical call is answered from the cache, with
/// the topic whose writes invalidate them. Reads that are not here (nginx
/// variables, `load_consumer`, memory stats) can change without a write by
/// this plugin, so they always go to Kong.
const READS: &[(&str, Topic)] = &[
    // get_ip: var.realip_remote_addr; get_forwarded_ip: var.remote_addr;
    // get_port: var.realip_remote_port; get_forwarded_port: var.remote_port:
    // fixed for the connection.
    ("kong.client.get_ip", Topic::Request),
    ("kong.client.get_forwarded_ip", Topic::Request),
    ("kong.client.get_port", Topic::Request),
    ("kong.client.get_forwarded_port", Topic::Request),
    // ngx.ctx.authenticated_credential / authenticated_consumer.
    ("kong.client.get_credential", Topic::Consumer),
    ("kong.client.get_consumer", Topic::Consumer),
    // ngx.ctx.route.protocols and var.scheme / X-Forwarded-Proto (a header).
    ("kong.client.get_protocol", Topic::RequestHeaders),
    // kong.ctx.shared[k]; in the log timer other plugins' timers share the
    // same table, so the log phase never caches it (see `cacheable`).
    ("kong.ctx.shared.get", Topic::CtxShared),
    // kong.ip.is_trusted(ip): the trusted_ips setting.
    ("kong.ip.is_trusted", Topic::Fixed),
    // The log record saved when the request finished (log phase only).
    ("kong.log.serialize", Topic::Serialize),
    // ngx.ssl.get_tls1_version_str(): the TLS session.
    ("kong.nginx.get_tls1_version_str", Topic::Fixed),
    // ngx.ctx[k] (or the log timer's saved copy).
    ("kong.nginx.get_ctx", Topic::NginxCtx),
    ("kong.nginx.req_start_time", Topic::Fixed),
    ("kong.nginx.get_subsystem", Topic::Fixed),
    ("kong.node.get_id", Topic::Fixed),
    // ngx.ctx.scheme or var.scheme; var.server_port; the HTTP version.
    ("kong.request.get_scheme", Topic::Request),
    ("kong.request.get_port", Topic::Request),
    ("kong.request.get_http_version", Topic::Request),
    // ngx.ctx.host or var.host: nginx's `$host` follows a Host header that
    // ngx.req.set_header replaces.
    ("kong.request.get_host", Topic::RequestHeaders),
    // X-Forwarded-Proto/-Host/-Port when the client is trusted: headers.
    ("kong.request.get_forwarded_scheme", Topic::RequestHeaders),
    ("kong.request.get_forwarded_host", Topic::RequestHeaders),
    ("kong.request.get_forwarded_port", Topic::RequestHeaders),
    ("kong.request.get_method", Topic::RequestMethod),
    // ngx.ctx.request_uri or var.request_uri: the request line as received;
    // set_raw_query/set_query change var.args, not $request_uri.
    ("kong.request.get_path", Topic::Request),
    ("kong.request.get_path_with_query", Topic::Request),
    // var.args and ngx.req.get_uri_args(), which set_uri_args changes.
    ("kong.request.get_raw_query", Topic::RequestQuery),
    ("kong.request.get_query_arg", Topic::RequestQuery),
    ("kong.request.get_query", Topic::RequestQuery),
    // ngx.var.http_* / ngx.req.get_headers() (saved copies in the log timer).
    ("kong.request.get_header", Topic::RequestHeaders),
    ("kong.request.get_headers", Topic::RequestHeaders),
    // ngx.req.get_body_data() or the body file.
    ("kong.request.get_raw_body", Topic::RequestBody),
    // ngx.ctx.router_matches.uri_captures.
    ("kong.request.get_uri_captures", Topic::Fixed),
    ("kong.response.get_status", Topic::ResponseStatus),
    // ngx.resp.get_headers() (saved in the log timer).
    ("kong.response.get_header", Topic::ResponseHeaders),
    ("kong.response.get_headers", Topic::ResponseHeaders),
    // ngx.ctx.KONG_UNEXPECTED / KONG_EXITED / KONG_PROXIED.
    ("kong.response.get_source", Topic::Fixed),
    // ngx.ctx.route / ngx.ctx.service.
    ("kong.router.get_route", Topic::Fixed),
    ("kong.router.get_service", Topic::Fixed),
    // ctx.buffered_status/headers/body or the upstream_* variables.
    ("kong.service.response.get_status", Topic::ServiceResponse),
    ("kong.service.response.get_header", Topic::ServiceResponse),
    ("kong.service.response.get_headers", Topic::ServiceResponse),
    ("kong.service.response.get_raw_body", Topic::ServiceResponse),
];

/// What a write can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing any cached read depends on.
    None,
    /// These topics.
    Topics(&'static [Topic]),
    /// Anything: drop the whole cache.
    Everything,
}

/// Every PDK method that is not a cacheable read, with what it changes.
const WRITES: &[(&str, Effect)] = &[
    // ngx.ctx.authenticated_consumer / authenticated_credential.
    (
        "kong.client.authenticate",
        Effect::Topics(&[Topic::Consumer]),
    ),
    // Reads a consumer from the database each time: not cached, changes nothing.
    ("kong.client.load_consumer", Effect::None),
    ("kong.ctx.shared.set", Effect::Topics(&[Topic::CtxShared])),
    ("kong.log.alert", Effect::None),
    ("kong.log.crit", Effect::None),
    ("kong.log.err", Effect::None),
    ("kong.log.warn", Effect::None),
    ("kong.log.notice", Effect::None),
    ("kong.log.info", Effect::None),
    ("kong.log.debug", Effect::None),
    // ctx.serialize_values, applied when kong.log.serialize() runs.
    (
        "kong.log.set_serialize_value",
        Effect::Topics(&[Topic::Serialize]),
    ),
    // ngx.var[name] can change by itself ($request_time, $upstream_*): never cached.
    ("kong.nginx.get_var", Effect::None),
    // ngx.ctx holds what many getters read (scheme, host, request_uri,
    // consumer, router matches, buffered response): drop everything.
    ("kong.nginx.set_ctx", Effect::Everything),
    ("kong.node.get_memory_stats", Effect::None),
    // ngx.status.
    (
        "kong.response.set_status",
        Effect::Topics(&[Topic::ResponseStatus]),
    ),
    // ngx.header[name]. In the buffered response phase kong.service.response
    // reads ctx.buffered_headers, which these do not touch; dropping the
    // upstream's answers too costs at most a round trip and needs no proof.
    (
        "kong.response.set_header",
        Effect::Topics(&[Topic::ResponseHeaders, Topic::ServiceResponse]),
    ),
    (
        "kong.response.add_header",
        Effect::Topics(&[Topic::ResponseHeaders, Topic::ServiceResponse]),
    ),
    (
        "kong.response.clear_header",
        Effect::Topics(&[Topic::ResponseHeaders, Topic::ServiceResponse]),
    ),
    (
        "kong.response.set_headers",
        Effect::Topics(&[Topic::ResponseHeaders, Topic::ServiceResponse]),
    ),
    // Terminal: nothing is read after it.
    ("kong.response.exit", Effect::None),
    // ngx.ctx.balancer_data and upstream variables, which no cached read uses.
    ("kong.service.set_upstream", Effect::None),
    ("kong.service.set_target", Effect::None),
    // var.upstream_scheme / var.upstream_uri: read by no getter but get_var.
    ("kong.service.request.set_scheme", Effect::None),
    ("kong.service.request.set_path", Effect::None),
    // ngx.req.set_uri_args: var.args.
    (
        "kong.service.request.set_raw_query",
        Effect::Topics(&[Topic::RequestQuery]),
    ),
    (
        "kong.service.request.set_query",
        Effect::Topics(&[Topic::RequestQuery]),
    ),
    // ngx.req.set_method.
    (
        "kong.service.request.set_method",
        Effect::Topics(&[Topic::RequestMethod]),
    ),
    // ngx.req.set_header / clear_header: the request's headers, and with
    // Host, nginx's $host.
    (
        "kong.service.request.set_header",
        Effect::Topics(&[Topic::RequestHeaders]),
    ),
    (
        "kong.service.request.add_header",
        Effect::Topics(&[Topic::RequestHeaders]),
    ),
    (
        "kong.service.request.clear_header",
        Effect::Topics(&[Topic::RequestHeaders]),
    ),
    (
        "kong.service.request.set_headers",
        Effect::Topics(&[Topic::RequestHeaders]),
    ),
    // ngx.req.set_body_data: the body and its Content-Length header.
    (
        "kong.service.request.set_raw_body",
        Effect::Topics(&[Topic::RequestBody, Topic::RequestHeaders]),
    ),
];

/// What the layer does with a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// A read whose answer may be kept, until a write changes `Topic`.
    Read(Topic),
    /// Anything else, with what it changes.
    Write(Effect),
}

/// The rule for `method` (a method the tables do not know changes
/// everything). Looked up on every call, in both tables merged into one
/// hash map once.
pub(crate) fn rule(method: &str) -> Rule {
    static RULES: std::sync::OnceLock<RuleMap> = std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let reads = READS.iter().map(|(m, t)| (*m, Rule::Read(*t)));
        let writes = WRITES.iter().map(|(m, e)| (*m, Rule::Write(*e)));
        reads.chain(writes).collect()
    });
    rules
        .get(method)
        .copied()
        .unwrap_or(Rule::Write(Effect::Everything))
}

type RuleMap = crate::fast_hash::FastMap<&'static str, Rule>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The 74 methods of Kong's `service Kong`, as the test kit serves them.
    const ALL_METHODS: usize = 74;

    #[test]
    fn every_method_is_in_exactly_one_table() {
        for (m, _) in READS {
            assert!(
                !WRITES.iter().any(|(w, _)| w == m),
                "{m} is both a read and a write"
            );
        }
        let reads = READS.iter().map(|(m, _)| *m);
        let mut names: Vec<&str> = reads.chain(WRITES.iter().map(|(m, _)| *m)).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            READS.len() + WRITES.len(),
            "a method is listed twice"
        );
        assert_eq!(names.len(), ALL_METHODS);
    }

    #[test]
    fn unknown_methods_drop_everything() {
        assert_eq!(
            rule("kong.request.get_body"),
            Rule::Write(Effect::Everything)
        );
        assert_eq!(
            rule("kong.request.get_header"),
            Rule::Read(Topic::RequestHeaders)
        );
        assert_eq!(rule("kong.nginx.get_var"), Rule::Write(Effect::None));
        for (m, t) in READS {
            assert_eq!(rule(m), Rule::Read(*t), "{m}");
        }
        for (m, e) in WRITES {
            assert_eq!(rule(m), Rule::Write(*e), "{m}");
        }
    }
}
