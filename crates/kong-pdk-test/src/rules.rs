//! The 74 PDK methods Kong serves over ProtoBuf: the phases where Kong lets
//! each run (api-inventory Table A); their argument types are kong-pdk's
//! table (`__private::arg_kind`), which MsgPack:1 translation also uses.

use kong_pdk::__private::ArgKind;
use kong_pdk::Phase;
use kong_pdk_proto as pb;
use prost::Message;
use serde_json::{Value as Json, json};

use crate::values;

const C: u8 = 1;
const R: u8 = 2;
const A: u8 = 4;
const S: u8 = 8;
const P: u8 = 16;
const L: u8 = 32;
const ALL: u8 = C | R | A | S | P | L;

pub(crate) fn bit(phase: Phase) -> u8 {
    match phase {
        Phase::Certificate => C,
        Phase::Rewrite => R,
        Phase::Access => A,
        Phase::Response => S,
        Phase::Preread => P,
        Phase::Log => L,
    }
}

/// One PDK method.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    /// Phases where the call works.
    pub(crate) phases: u8,
    /// Whether the function reads the live request, which the log timer
    /// (and for `ngx.var`, the certificate phase) cannot.
    pub(crate) live: Live,
}

/// What a function reads that is not always there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Live {
    /// Nothing: it works wherever Kong's phase check lets it.
    No,
    /// The live request (`ngx.req`, `ngx.var`): fails in `log`.
    Req,
    /// Only `ngx.var`: Kong's phase check allows every phase, but OpenResty
    /// has no `ngx.var` in `ssl_certificate_by_lua` nor in the log timer.
    Var,
}

impl Spec {
    pub(crate) fn allows(&self, phase: Phase) -> bool {
        self.phases & bit(phase) != 0
    }

    /// Why Kong raises an error when the call is made in `phase`.
    pub(crate) fn refusal(&self, phase: Phase) -> String {
        if phase == Phase::Log && self.live != Live::No {
            format!(
                "{} reads the live request, which Kong cannot do in the log phase \
                 (it runs in a timer after the response; API disabled in the context of ngx.timer)",
                self.name
            )
        } else if phase == Phase::Certificate && self.live == Live::Var {
            format!(
                "{} reads nginx variables, which OpenResty does not offer in the certificate phase \
                 (ssl_certificate_by_lua)",
                self.name
            )
        } else {
            let allowed: Vec<&str> = Phase::ALL
                .into_iter()
                .filter(|p| self.allows(*p))
                .map(Phase::as_str)
                .collect();
            format!(
                "{} cannot be called in the {phase} phase (Kong allows it in: {})",
                self.name,
                allowed.join(", ")
            )
        }
    }
}

macro_rules! specs {
    ($($name:literal, $phases:expr, $live:ident;)*) => {
        /// Every method, in the order of Kong's `service Kong` (their
        /// argument kinds are kong-pdk's table, `__private::arg_kind`).
        pub(crate) const SPECS: &[Spec] = &[$(Spec {
            name: $name,
            phases: $phases,
            live: Live::$live,
        }),*];
    };
}

const REQ: u8 = R | A | S;
const HEADER_BODY_LOG: u8 = S | L;
const AUTH_AND_LATER: u8 = A | S | L;
const LIVE_CONN: u8 = R | A | S | P;

// kong.request.get_scheme/get_host/get_path/get_path_with_query read
// ngx.ctx.scheme/host/request_uri first, which the log timer's restored
// ngx.ctx holds: Kong answers them in the log phase (measured,
// shared/kong/log-phase.md).
specs! {
    "kong.client.get_ip", LIVE_CONN, Var;
    "kong.client.get_forwarded_ip", LIVE_CONN, Var;
    "kong.client.get_port", LIVE_CONN, Var;
    "kong.client.get_forwarded_port", LIVE_CONN, Var;
    "kong.client.get_credential", AUTH_AND_LATER, No;
    "kong.client.load_consumer", AUTH_AND_LATER, No;
    "kong.client.get_consumer", AUTH_AND_LATER, No;
    "kong.client.authenticate", A, No;
    "kong.client.get_protocol", AUTH_AND_LATER, No;
    "kong.ctx.shared.set", ALL, No;
    "kong.ctx.shared.get", ALL, No;
    "kong.ip.is_trusted", ALL, No;
    "kong.log.alert", ALL, No;
    "kong.log.crit", ALL, No;
    "kong.log.err", ALL, No;
    "kong.log.warn", ALL, No;
    "kong.log.notice", ALL, No;
    "kong.log.info", ALL, No;
    "kong.log.debug", ALL, No;
    "kong.log.set_serialize_value", ALL, No;
    "kong.log.serialize", L, No;
    "kong.nginx.get_var", LIVE_CONN, Var;
    "kong.nginx.get_tls1_version_str", C | LIVE_CONN, Req;
    "kong.nginx.set_ctx", ALL, No;
    "kong.nginx.get_ctx", ALL, No;
    "kong.nginx.req_start_time", ALL, No;
    "kong.nginx.get_subsystem", ALL, No;
    "kong.node.get_id", ALL, No;
    "kong.node.get_memory_stats", ALL, No;
    "kong.request.get_scheme", REQ | L, No;
    "kong.request.get_host", REQ | L, No;
    "kong.request.get_port", REQ, Var;
    "kong.request.get_forwarded_scheme", REQ, Req;
    "kong.request.get_forwarded_host", REQ, Req;
    "kong.request.get_forwarded_port", REQ, Req;
    "kong.request.get_http_version", REQ, Req;
    "kong.request.get_method", REQ, Req;
    "kong.request.get_path", REQ | L, No;
    "kong.request.get_path_with_query", REQ | L, No;
    "kong.request.get_raw_query", REQ, Req;
    "kong.request.get_query_arg", REQ, Req;
    "kong.request.get_query", REQ, Req;
    "kong.request.get_header", REQ | L, No;
    "kong.request.get_headers", REQ | L, No;
    "kong.request.get_raw_body", REQ, Req;
    "kong.request.get_uri_captures", REQ | L, No;
    "kong.response.get_status", HEADER_BODY_LOG, No;
    "kong.response.get_header", HEADER_BODY_LOG, No;
    "kong.response.get_headers", HEADER_BODY_LOG, No;
    "kong.response.get_source", HEADER_BODY_LOG, No;
    "kong.response.set_status", REQ, No;
    "kong.response.set_header", REQ, No;
    "kong.response.add_header", REQ, No;
    "kong.response.clear_header", REQ, No;
    "kong.response.set_headers", REQ, No;
    "kong.response.exit", REQ | P, No;
    "kong.router.get_route", AUTH_AND_LATER, No;
    "kong.router.get_service", AUTH_AND_LATER, No;
    "kong.service.set_upstream", A, No;
    "kong.service.set_target", R | A | P, No;
    "kong.service.request.set_scheme", R | A, No;
    "kong.service.request.set_path", R | A, No;
    "kong.service.request.set_raw_query", R | A, No;
    "kong.service.request.set_method", R | A, No;
    "kong.service.request.set_query", R | A, No;
    "kong.service.request.set_header", R | A, No;
    "kong.service.request.add_header", R | A, No;
    "kong.service.request.clear_header", R | A, No;
    "kong.service.request.set_headers", R | A, No;
    "kong.service.request.set_raw_body", R | A, No;
    "kong.service.response.get_status", HEADER_BODY_LOG, No;
    "kong.service.response.get_header", HEADER_BODY_LOG, No;
    "kong.service.response.get_headers", HEADER_BODY_LOG, No;
    "kong.service.response.get_raw_body", HEADER_BODY_LOG, No;
}

/// The spec of `method`, when Kong serves it.
pub(crate) fn spec(method: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == method)
}

/// The arguments of a call as JSON, for assertions and messages. Methods
/// Kong does not know, and arguments that do not decode, give the raw
/// bytes.
pub(crate) fn args_json(method: &str, raw: &[u8]) -> Json {
    let Some(spec) = spec(method) else {
        return values::bytes_json(raw);
    };
    let Some(input) = kong_pdk::__private::arg_kind(spec.name) else {
        return values::bytes_json(raw);
    };
    decode_json(input, raw).unwrap_or_else(|_| values::bytes_json(raw))
}

fn decode_json(input: ArgKind, raw: &[u8]) -> Result<Json, prost::DecodeError> {
    Ok(match input {
        ArgKind::Empty => Json::Null,
        ArgKind::Str => Json::String(pb::Str::decode(raw)?.v),
        ArgKind::Int => Json::from(pb::Int::decode(raw)?.v),
        ArgKind::Bool => Json::Bool(pb::Bool::decode(raw)?.v),
        ArgKind::Bytes => values::bytes_json(&pb::ByteString::decode(raw)?.v),
        ArgKind::Kv => {
            let kv = pb::Kv::decode(raw)?;
            json!({"k": kv.k, "v": kv.v.as_ref().map_or(Json::Null, values::to_json)})
        }
        ArgKind::List => Json::Array(
            pb::ListValue::decode(raw)?
                .values
                .iter()
                .map(values::to_json)
                .collect(),
        ),
        ArgKind::Struct => values::struct_to_json(&pb::Struct::decode(raw)?),
        ArgKind::Target => {
            let t = pb::Target::decode(raw)?;
            json!({"host": t.host, "port": t.port})
        }
        ArgKind::Exit => {
            let e = pb::ExitArgs::decode(raw)?;
            json!({
                "status": e.status,
                "body": values::bytes_json(&e.body),
                "headers": e.headers.as_ref().map_or(Json::Null, values::struct_to_json),
            })
        }
        ArgKind::ConsumerSpec => {
            let c = pb::ConsumerSpec::decode(raw)?;
            json!({"id": c.id, "by_username": c.by_username})
        }
        ArgKind::Authenticate => {
            let a = pb::AuthenticateArgs::decode(raw)?;
            json!({
                "consumer": a.consumer.as_ref().map(consumer_json),
                "credential": a.credential.as_ref().map(|c| json!({"id": c.id, "consumer_id": c.consumer_id})),
            })
        }
    })
}

pub(crate) fn consumer_json(c: &pb::Consumer) -> Json {
    json!({
        "id": c.id,
        "created_at": c.created_at,
        "username": c.username,
        "custom_id": c.custom_id,
        "tags": c.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_kongs_74_methods_once() {
        assert_eq!(SPECS.len(), 74);
        let mut names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 74);
    }

    #[test]
    fn refusals_name_the_allowed_phases() {
        let s = spec("kong.response.get_status").unwrap();
        assert_eq!(
            s.refusal(Phase::Access),
            "kong.response.get_status cannot be called in the access phase (Kong allows it in: response, log)"
        );
        let s = spec("kong.request.get_method").unwrap();
        assert!(s.refusal(Phase::Log).contains("log phase"));
    }
}
