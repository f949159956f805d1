//! Kong's PDK, grouped like the Lua PDK: `kong.request.get_header(…)` is
//! `kong.request().get_header(…)`. Each call is one round trip to Kong.
//!
//! Things to know about every function:
//! - **Missing values**: over this protocol Kong cannot tell `nil` from
//!   empty. A missing header, an unknown variable or no consumer all read as
//!   `""`, `0`, an empty map or an entity with an empty `id`.
//! - **Phases**: each function says where Kong allows it. Calling it
//!   elsewhere makes Kong abort the phase (the client gets a 500 in
//!   `rewrite`/`access`) and close the connection; the call returns
//!   [`crate::Error::ConnectionClosed`].
//! - **The `log` phase** runs in a timer after the response was sent, on
//!   saved data: request headers, response status and headers, `ctx.shared`,
//!   `nginx` ctx values, the route, service and consumer still work; anything
//!   reading the live request (method, path, query, body, client address,
//!   nginx variables) fails.

mod body;
mod client;
mod client_tls;
mod content_encoding;
mod ctx;
mod ip;
mod log;
mod nginx;
mod node;
mod request;
mod response;
mod router;
mod service;
mod service_request;
mod service_response;
mod trace_context;
mod vault;

use kong_pdk_proto as pb;
use prost::Message;

pub use self::body::BodyType;
pub use self::client::Client;
pub use self::client_tls::ClientTls;
pub use self::content_encoding::{Coding, ContentEncoding, DEFAULT_MAX_DECODED, DecodedBody};
pub use self::ctx::Ctx;
pub use self::ip::Ip;
pub use self::log::{Log, LogArgs, SerializeMode};
pub use self::nginx::Nginx;
pub use self::node::{Node, ScaledDictStats, ScaledMemoryStats, ScaledWorkerMemory};
pub use self::request::{BodyOptions, RawBody, Request, UriCaptures};
pub use self::response::{ExitHeaders, Response};
pub use self::router::Router;
pub use self::service::Service;
pub use self::service_request::ServiceRequest;
pub use self::service_response::ServiceResponse;
pub use self::trace_context::{TraceContext, TraceFormat};
pub use self::vault::Vault;
use crate::error::{Error, Result};
use crate::kong::Kong;

/// Kong's default for the `max_*` argument of the header/query getters
/// (`lua_max_req_headers`, `lua_max_uri_args`, …).
pub const DEFAULT_MAX: u16 = 100;

/// Kong's limits for that argument: 1..=1000.
fn check_max(method: &'static str, max: u16) -> Result<pb::Int> {
    if (1..=1000).contains(&max) {
        Ok(pb::Int { v: max.into() })
    } else {
        Err(Error::Value {
            method,
            message: format!(
                "max must be between 1 and 1000 (Kong raises an error otherwise), got {max}"
            ),
        })
    }
}

async fn string<I: Message>(kong: &mut Kong, method: &'static str, args: &I) -> Result<String> {
    let reply: pb::Str = kong.pdk_call(method, args).await?;
    Ok(reply.v)
}

async fn int<I: Message>(kong: &mut Kong, method: &'static str, args: &I) -> Result<i32> {
    let reply: pb::Int = kong.pdk_call(method, args).await?;
    Ok(reply.v)
}

/// An `Int` answer that must be a port or a status.
async fn u16_of<I: Message>(kong: &mut Kong, method: &'static str, args: &I) -> Result<u16> {
    let v = int(kong, method, args).await?;
    u16::try_from(v).map_err(|_| Error::Decode {
        method,
        message: format!("{v} is out of range"),
    })
}

async fn number<I: Message>(kong: &mut Kong, method: &'static str, args: &I) -> Result<f64> {
    let reply: pb::Number = kong.pdk_call(method, args).await?;
    Ok(reply.v)
}

async fn empty<I: Message>(kong: &mut Kong, method: &'static str, args: &I) -> Result<()> {
    kong.pdk_call::<I, ()>(method, args).await
}

fn s(v: &str) -> pb::Str {
    pb::Str { v: v.to_owned() }
}

fn kv_str(k: &str, v: &str) -> pb::Kv {
    pb::Kv {
        k: k.to_owned(),
        v: Some(crate::value::string(v)),
    }
}
