//! The 74 PDK methods Kong serves over ProtoBuf: argument types and the
//! phases where Kong lets each run (api-inventory Table A).

use kong_pdk::Phase;
use kong_pdk_proto as pb;
use prost::Message;
use serde_json::{Value as Json, json};

use crate::values;

/// The argument message of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    Empty,
    Str,
    Int,
    Bool,
    Bytes,
    Kv,
    List,
    Struct,
    Target,
    Exit,
    ConsumerSpec,
    Authenticate,
}

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
    pub(crate) input: Input,
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
    ($($name:literal, $input:ident, $phases:expr, $live:ident;)*) => {
        /// Every method, in the order of Kong's `service Kong`.
        pub(crate) const SPECS: &[Spec] = &[$(Spec {
            name: $name,
            input: Input::$input,
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
    "kong.client.get_ip", Empty, LIVE_CONN, Var;
    "kong.client.get_forwarded_ip", Empty, LIVE_CONN, Var;
    "kong.client.get_port", Empty, LIVE_CONN, Var;
    "kong.client.get_forwarded_port", Empty, LIVE_CONN, Var;
    "kong.client.get_credential", Empty, AUTH_AND_LATER, No;
    "kong.client.load_consumer", ConsumerSpec, AUTH_AND_LATER, No;
    "kong.client.get_consumer", Empty, AUTH_AND_LATER, No;
    "kong.client.authenticate", Authenticate, A, No;
    "kong.client.get_protocol", Bool, AUTH_AND_LATER, No;
    "kong.ctx.shared.set", Kv, ALL, No;
    "kong.ctx.shared.get", Str, ALL, No;
    "kong.ip.is_trusted", Str, ALL, No;
    "kong.log.alert", List, ALL, No;
    "kong.log.crit", List, ALL, No;
    "kong.log.err", List, ALL, No;
    "kong.log.warn", List, ALL, No;
    "kong.log.notice", List, ALL, No;
    "kong.log.info", List, ALL, No;
    "kong.log.debug", List, ALL, No;
    "kong.log.set_serialize_value", Kv, ALL, No;
    "kong.log.serialize", Empty, L, No;
    "kong.nginx.get_var", Str, LIVE_CONN, Var;
    "kong.nginx.get_tls1_version_str", Empty, C | LIVE_CONN, Req;
    "kong.nginx.set_ctx", Kv, ALL, No;
    "kong.nginx.get_ctx", Str, ALL, No;
    "kong.nginx.req_start_time", Empty, ALL, No;
    "kong.nginx.get_subsystem", Empty, ALL, No;
    "kong.node.get_id", Empty, ALL, No;
    "kong.node.get_memory_stats", Empty, ALL, No;
    "kong.request.get_scheme", Empty, REQ | L, No;
    "kong.request.get_host", Empty, REQ | L, No;
    "kong.request.get_port", Empty, REQ, Var;
    "kong.request.get_forwarded_scheme", Empty, REQ, Req;
    "kong.request.get_forwarded_host", Empty, REQ, Req;
    "kong.request.get_forwarded_port", Empty, REQ, Req;
    "kong.request.get_http_version", Empty, REQ, Req;
    "kong.request.get_method", Empty, REQ, Req;
    "kong.request.get_path", Empty, REQ | L, No;
    "kong.request.get_path_with_query", Empty, REQ | L, No;
    "kong.request.get_raw_query", Empty, REQ, Req;
    "kong.request.get_query_arg", Str, REQ, Req;
    "kong.request.get_query", Int, REQ, Req;
    "kong.request.get_header", Str, REQ | L, No;
    "kong.request.get_headers", Int, REQ | L, No;
    "kong.request.get_raw_body", Empty, REQ, Req;
    "kong.request.get_uri_captures", Empty, REQ | L, No;
    "kong.response.get_status", Empty, HEADER_BODY_LOG, No;
    "kong.response.get_header", Str, HEADER_BODY_LOG, No;
    "kong.response.get_headers", Int, HEADER_BODY_LOG, No;
    "kong.response.get_source", Empty, HEADER_BODY_LOG, No;
    "kong.response.set_status", Int, REQ, No;
    "kong.response.set_header", Kv, REQ, No;
    "kong.response.add_header", Kv, REQ, No;
    "kong.response.clear_header", Str, REQ, No;
    "kong.response.set_headers", Struct, REQ, No;
    "kong.response.exit", Exit, REQ | P, No;
    "kong.router.get_route", Empty, AUTH_AND_LATER, No;
    "kong.router.get_service", Empty, AUTH_AND_LATER, No;
    "kong.service.set_upstream", Str, A, No;
    "kong.service.set_target", Target, R | A | P, No;
    "kong.service.request.set_scheme", Str, R | A, No;
    "kong.service.request.set_path", Str, R | A, No;
    "kong.service.request.set_raw_query", Str, R | A, No;
    "kong.service.request.set_method", Str, R | A, No;
    "kong.service.request.set_query", Struct, R | A, No;
    "kong.service.request.set_header", Kv, R | A, No;
    "kong.service.request.add_header", Kv, R | A, No;
    "kong.service.request.clear_header", Str, R | A, No;
    "kong.service.request.set_headers", Struct, R | A, No;
    "kong.service.request.set_raw_body", Bytes, R | A, No;
    "kong.service.response.get_status", Empty, HEADER_BODY_LOG, No;
    "kong.service.response.get_header", Str, HEADER_BODY_LOG, No;
    "kong.service.response.get_headers", Int, HEADER_BODY_LOG, No;
    "kong.service.response.get_raw_body", Empty, HEADER_BODY_LOG, No;
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
    decode_json(spec.input, raw).unwrap_or_else(|_| values::bytes_json(raw))
}

fn decode_json(input: Input, raw: &[u8]) -> Result<Json, prost::DecodeError> {
    Ok(match input {
        Input::Empty => Json::Null,
        Input::Str => Json::String(pb::Str::decode(raw)?.v),
        Input::Int => Json::from(pb::Int::decode(raw)?.v),
        Input::Bool => Json::Bool(pb::Bool::decode(raw)?.v),
        Input::Bytes => values::bytes_json(&pb::ByteString::decode(raw)?.v),
        Input::Kv => {
            let kv = pb::Kv::decode(raw)?;
            json!({"k": kv.k, "v": kv.v.as_ref().map_or(Json::Null, values::to_json)})
        }
        Input::List => Json::Array(
            pb::ListValue::decode(raw)?
                .values
                .iter()
                .map(values::to_json)
                .collect(),
        ),
        Input::Struct => values::struct_to_json(&pb::Struct::decode(raw)?),
        Input::Target => {
            let t = pb::Target::decode(raw)?;
            json!({"host": t.host, "port": t.port})
        }
        Input::Exit => {
            let e = pb::ExitArgs::decode(raw)?;
            json!({
                "status": e.status,
                "body": values::bytes_json(&e.body),
                "headers": e.headers.as_ref().map_or(Json::Null, values::struct_to_json),
            })
        }
        Input::ConsumerSpec => {
            let c = pb::ConsumerSpec::decode(raw)?;
            json!({"id": c.id, "by_username": c.by_username})
        }
        Input::Authenticate => {
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
