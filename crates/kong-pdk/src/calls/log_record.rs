//! The log phase's getters that Kong refuses (the log handler runs in a
//! timer, where `ngx.var` and `ngx.req` are gone) answered from
//! `kong.log.serialize()`, which Kong saved when the request finished
//! (`plugin_servers/plugin.lua`) and built in `kong/pdk/log.lua`:
//!
//! | getter | from the record | same as Kong's live answer? |
//! |---|---|---|
//! | `kong.request.get_method` | `request.method` (`kong.request.get_method()`) | yes |
//! | `kong.request.get_query` | `request.querystring` (`kong.request.get_query()`) | yes, up to 100 arguments (Kong's default; a larger `max` gets no more) |
//! | `kong.request.get_query_arg` | `request.querystring[name]`, first value | yes |
//! | `kong.request.get_raw_query` | the query of `request.uri` (`$request_uri`) | the query as the client sent it: changes by `set_raw_query`/`set_query` are not in it |
//! | `kong.request.get_port` | the port of `request.url` | the port the client connected to, or its `port_maps` mapping |
//! | `kong.client.get_forwarded_ip` | `client_ip` (`$remote_addr`) | yes |
//! | `kong.client.get_ip` | `client_ip` (`$remote_addr`) | the same unless the peer is in `trusted_ips` and sent the real-IP header: then the forwarded address, not the peer's |
//! | `kong.nginx.get_tls1_version_str` | `request.tls.version` (`""` without TLS) | yes |
//!
//! A field a plugin replaced with `kong.log.set_serialize_value` shows
//! through. The other refused getters (`get_http_version`,
//! `get_forwarded_scheme`/`host`/`port`, `get_raw_body`, `client.get_port`,
//! `get_forwarded_port`, `nginx.get_var`) are not in the
//! record: they fail at once with [`Error::LogPhase`], without a round trip,
//! so the event's connection survives.

use kong_pdk_proto::Struct;
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::value;

/// How the log phase answers a getter Kong refuses there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogAnswer {
    /// From the serialize record.
    Record,
    /// Not in the record: fails with this advice.
    Refused(&'static str),
}

const PASS_IT_ON: &str = "read it in access and pass it on with kong.ctx().set_shared";

/// Kong's refused getters (measured: `shared/kong/log-phase.md`).
const LIVE_GETTERS: &[(&str, LogAnswer)] = &[
    ("kong.request.get_method", LogAnswer::Record),
    ("kong.request.get_query", LogAnswer::Record),
    ("kong.request.get_query_arg", LogAnswer::Record),
    ("kong.request.get_raw_query", LogAnswer::Record),
    ("kong.request.get_port", LogAnswer::Record),
    ("kong.client.get_ip", LogAnswer::Record),
    ("kong.client.get_forwarded_ip", LogAnswer::Record),
    ("kong.nginx.get_tls1_version_str", LogAnswer::Record),
    (
        "kong.request.get_http_version",
        LogAnswer::Refused(PASS_IT_ON),
    ),
    (
        "kong.request.get_forwarded_scheme",
        LogAnswer::Refused(PASS_IT_ON),
    ),
    (
        "kong.request.get_forwarded_host",
        LogAnswer::Refused(PASS_IT_ON),
    ),
    (
        "kong.request.get_forwarded_port",
        LogAnswer::Refused(PASS_IT_ON),
    ),
    (
        "kong.request.get_raw_body",
        LogAnswer::Refused(
            "read it in access (or response) and pass it on with kong.ctx().set_shared",
        ),
    ),
    ("kong.client.get_port", LogAnswer::Refused(PASS_IT_ON)),
    (
        "kong.client.get_forwarded_port",
        LogAnswer::Refused(PASS_IT_ON),
    ),
    (
        "kong.nginx.get_var",
        LogAnswer::Refused(
            "read the variable in access and pass it on with kong.ctx().set_shared, \
             or use kong.log().serialize(), which carries the usual ones",
        ),
    ),
];

/// How the log phase must answer `method`, if Kong refuses it there.
pub(crate) fn log_answer(method: &str) -> Option<LogAnswer> {
    LIVE_GETTERS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, a)| *a)
}

/// The parsed `kong.log.serialize()` record.
#[derive(Debug)]
pub(crate) struct LogRecord(Json);

impl LogRecord {
    pub(crate) fn parse(text: &str) -> Result<LogRecord> {
        serde_json::from_str(text)
            .map(LogRecord)
            .map_err(|e| Error::Decode {
                method: "kong.log.serialize",
                message: format!("the log record is not JSON: {e}"),
            })
    }

    fn field(&self, method: &'static str, path: &[&str]) -> Result<&Json> {
        let mut at = &self.0;
        for key in path {
            at = at.get(key).ok_or_else(|| missing(method, path))?;
        }
        Ok(at)
    }

    fn text(&self, method: &'static str, path: &[&str]) -> Result<&str> {
        self.field(method, path)?
            .as_str()
            .ok_or_else(|| missing(method, path))
    }

    /// `request.method`.
    pub(crate) fn method(&self, method: &'static str) -> Result<String> {
        self.text(method, &["request", "method"]).map(str::to_owned)
    }

    /// `request.querystring`, as Kong's `get_query()` table.
    pub(crate) fn query(&self, method: &'static str) -> Result<Struct> {
        match value::from_json(self.field(method, &["request", "querystring"])?.clone()).kind {
            Some(kong_pdk_proto::ValueKind::StructValue(s)) => Ok(s),
            // cjson writes an empty Lua table as `{}`; anything else is not a query.
            Some(kong_pdk_proto::ValueKind::ListValue(l)) if l.values.is_empty() => {
                Ok(Struct::default())
            }
            _ => Err(missing(method, &["request", "querystring"])),
        }
    }

    /// `request.querystring[name]`'s first value; `""` when absent. A flag
    /// (`?debug`) fails as Kong fails it: its value `true` is not a string.
    pub(crate) fn query_arg(&self, method: &'static str, name: &str) -> Result<String> {
        let query = self.field(method, &["request", "querystring"])?;
        let first = match query.get(name) {
            None | Some(Json::Null) => return Ok(String::new()),
            Some(Json::Array(values)) => values.first().unwrap_or(&Json::Null),
            Some(v) => v,
        };
        match first {
            Json::String(s) => Ok(s.clone()),
            _ => Err(Error::Value {
                method,
                message: format!(
                    "query argument {name:?} has no value (a flag), which Kong cannot return \
                     as a string; use get_query()"
                ),
            }),
        }
    }

    /// The query of `request.uri` (`$request_uri`), without `?`.
    pub(crate) fn raw_query(&self, method: &'static str) -> Result<String> {
        let uri = self.text(method, &["request", "uri"])?;
        Ok(uri.split_once('?').map_or("", |(_, q)| q).to_owned())
    }

    /// The port of `request.url` (`scheme://host:port/…`).
    pub(crate) fn port(&self, method: &'static str) -> Result<u16> {
        let url = self.text(method, &["request", "url"])?;
        let authority = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest.split('/').next().unwrap_or(rest));
        let port = match authority.rsplit_once(':') {
            // `[::1]` alone has colons but no port.
            Some((host, port)) if !port.contains(']') && !host.is_empty() => port,
            _ => return Err(missing(method, &["request", "url"])),
        };
        port.parse()
            .map_err(|_| missing(method, &["request", "url"]))
    }

    /// `request.tls.version`; `""` when the request did not use TLS.
    pub(crate) fn tls_version(&self, method: &'static str) -> Result<String> {
        match self.field(method, &["request"])?.get("tls") {
            None | Some(Json::Null) => Ok(String::new()),
            Some(_) => self
                .text(method, &["request", "tls", "version"])
                .map(str::to_owned),
        }
    }

    /// `client_ip`.
    pub(crate) fn client_ip(&self, method: &'static str) -> Result<String> {
        self.text(method, &["client_ip"]).map(str::to_owned)
    }
}

fn missing(method: &'static str, path: &[&str]) -> Error {
    Error::Decode {
        method,
        message: format!(
            "answered from kong.log.serialize() in the log phase, but the record has no usable `{}`",
            path.join(".")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LogRecord {
        LogRecord::parse(
            r#"{"request":{"method":"POST","uri":"/p?a=1&a=2&flag&e=",
                "url":"http://[::1]:8443/p?a=1&a=2&flag&e=",
                "querystring":{"a":["1","2"],"flag":true,"e":""}},
                "client_ip":"10.0.0.9"}"#,
        )
        .unwrap()
    }

    #[test]
    fn reads_what_the_record_carries() {
        let r = record();
        assert_eq!(r.method("m").unwrap(), "POST");
        assert_eq!(r.raw_query("m").unwrap(), "a=1&a=2&flag&e=");
        assert_eq!(r.port("m").unwrap(), 8443);
        assert_eq!(r.client_ip("m").unwrap(), "10.0.0.9");
        assert_eq!(r.tls_version("m").unwrap(), "");
        assert_eq!(r.query_arg("m", "a").unwrap(), "1");
        assert_eq!(r.query_arg("m", "e").unwrap(), "");
        assert_eq!(r.query_arg("m", "absent").unwrap(), "");
        assert!(r.query_arg("m", "flag").is_err());
        let q = value::struct_multimap(r.query("m").unwrap());
        assert_eq!(q["a"], ["1", "2"]);
        assert_eq!(q["flag"], [""]);
    }

    #[test]
    fn an_empty_query_is_an_empty_table_and_a_missing_field_an_error() {
        let r = LogRecord::parse(
            r#"{"request":{"method":"GET","uri":"/","url":"http://h:80/","querystring":{}}}"#,
        )
        .unwrap();
        assert!(r.query("m").unwrap().fields.is_empty());
        assert_eq!(r.raw_query("m").unwrap(), "");
        assert!(r.client_ip("m").is_err());
        assert!(LogRecord::parse("not json").is_err());
    }

    #[test]
    fn every_refused_getter_has_an_answer() {
        // log-phase.md's list, less client.get_protocol (which Kong answers
        // in the log phase for a route with one protocol: it only reads the
        // live request to choose among several), plus get_tls1_version_str.
        assert_eq!(LIVE_GETTERS.len(), 16);
        assert_eq!(log_answer("kong.request.get_header"), None);
    }
}
