//! # kong-pdk-test
//!
//! Unit tests for [kong-pdk](kong_pdk) plugins without a Kong. The kit plays
//! Kong's side: it starts the plugin's **real** server
//! ([`kong_pdk::server::Server`]) on a temporary socket inside the test's
//! runtime and drives it over the **real** ProtoBuf:1 protocol, answering
//! each PDK call from a model of the request and of Kong's rules. Nothing in
//! `kong-pdk` is mocked, so a test exercises the same code Kong talks to.
//!
//! ```
//! use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
//! use kong_pdk_test::{Request, TestEnv};
//! use serde_json::json;
//!
//! #[derive(serde::Deserialize, Schema)]
//! struct Config {
//!     #[kong(default = "hello")]
//!     message: String,
//! }
//!
//! #[kong_pdk::plugin]
//! impl Plugin for Config {
//!     async fn access(&self, kong: &mut Kong) -> PhaseResult {
//!         if kong.request().get_header("x-api-key").await?.is_empty() {
//!             kong.response().exit_status(401).await?;
//!         }
//!         let host = kong.request().get_host().await?;
//!         let greeting = format!("Rust says {} to {host}", self.message);
//!         kong.response().set_header("x-hello-from-rust", &greeting).await?;
//!         kong.service_request().set_path("/greeted").await?;
//!         Ok(())
//!     }
//!
//!     async fn log(&self, kong: &mut Kong) -> PhaseResult {
//!         let status = kong.response().get_status().await?;
//!         kong.log().notice(("served with ", status)).await?;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // In a test: #[tokio::test] async fn greets() { … }
//! let request = Request::get("https://example.com/path?q=1")
//!     .header("x-api-key", "k1")
//!     .client_ip("10.0.0.9");
//! let mut env = TestEnv::new(request);
//! let out = env.run::<Config>(json!({"message": "hi"})).await; // access, upstream, log
//!
//! assert_eq!(out.response.status, 200); // the echo upstream's answer
//! assert_eq!(
//!     out.response.header("x-hello-from-rust"),
//!     Some("Rust says hi to example.com")
//! );
//! assert_eq!(out.upstream_request.path, "/greeted");
//! assert_eq!(out.upstream_request.query, "q=1");
//! assert_eq!(out.log_messages(kong_pdk_test::LogLevel::Notice), ["served with 200"]);
//! assert!(out.unhandled_calls.is_empty());
//!
//! // Without a key the plugin exits: no upstream, but `log` still runs.
//! let mut env = TestEnv::new(Request::get("https://example.com/"));
//! let out = env.run::<Config>(json!({})).await;
//! assert_eq!(out.response.status, 401);
//! assert!(!out.proxied());
//! assert_eq!(out.log_messages(kong_pdk_test::LogLevel::Notice), ["served with 401"]);
//! # });
//! ```
//!
//! ## What a run does
//!
//! [`TestEnv::run`] runs the phases the plugin declares ([`Plugin::PHASES`](kong_pdk::Plugin::PHASES)) the
//! way Kong orders them for one HTTP request:
//!
//! 1. the config goes through Kong's shape ([`kong_config`]): unknown fields
//!    are an error, schema defaults are filled in (nested records too),
//!    unset fields are `null`, and `__seq__`, `__plugin_id`, `__key__`,
//!    `__ws_id`, `route_id`, … are added; a refused `cmd_start_instance` is
//!    an error saying why;
//! 2. `certificate` (TLS requests, global plugins), `rewrite` (global
//!    plugins), `access`;
//! 3. the upstream: the echo upstream ([`UpstreamRequest::echo`]) or a
//!    scripted one ([`TestEnv::upstream_response`], [`TestEnv::upstream_with`]);
//! 4. `response`, only when the plugin declares it: Kong then buffers the
//!    upstream response, which is what makes
//!    `kong.service.response.get_raw_body` work;
//! 5. the client response is final; `log` runs after it, on saved data.
//!
//! `kong.response.exit` ends the request there: later phases and the
//! upstream are skipped, `log` still runs, and the exit's status, body and
//! headers (merged over headers set earlier) are the client response. The
//! single-phase runs ([`TestEnv::access`], [`TestEnv::phase`], …) keep this
//! flow but call only one of the plugin's handlers.
//!
//! ## What is modelled
//!
//! All 74 PDK methods have answers in every phase Kong allows them in: the
//! client request (method, URL, headers, body, client address, TLS,
//! trusted IPs, `X-Forwarded-*`), the route, service and consumer, the
//! service request the plugin changes, the upstream response, the client
//! response, `kong.ctx.shared`, `ngx.ctx`, nginx variables, log lines and
//! the `kong.log.serialize()` record. Kong's rules apply:
//!
//! - **Phases.** A call where Kong forbids it (e.g.
//!   `kong.response.get_status` in `access`) gets no answer and the
//!   connection closes, as with Kong: the handler sees
//!   [`kong_pdk::Error::ConnectionClosed`], and the client gets Kong's 500 in
//!   `rewrite`/`access`/`response` ([`PhaseEnd::Failed`]).
//! - **The log phase** runs in a timer: calls that read the live request
//!   (method, query, port, body, client address, nginx variables) fail;
//!   headers, path, scheme, host, the response, `ctx.shared`, `ngx.ctx`,
//!   the route, service and consumer still work (as measured with Kong).
//!   kong-pdk's call layer answers some of the refused getters from
//!   `kong.log.serialize()`: with it on (the default) they succeed.
//! - **nil ≡ empty**: a missing header, query argument or consumer is an
//!   empty answer.
//! - **Arguments**: `max` outside 1..=1000, a status outside 100..=599, a
//!   path without `/`, an unknown method or scheme, a flag query argument
//!   read with `get_query_arg`: rejected as Kong rejects them.
//! - `kong.service.response.get_raw_body` only works when the response is
//!   buffered (the plugin declares `response`).
//! - As in Kong, `kong.service.request.set_header`/`set_method`/
//!   `set_raw_query`/`set_query`/`set_raw_body` change nginx's request in
//!   place, so `kong.request.*` reads the new values afterwards.
//!
//! Calls the model has no answer for (an nginx variable it does not know,
//! Kong's own `KONG_*` ctx values, a method Kong does not serve) are
//! answered with Kong's nil and listed in [`Outcome::unhandled_calls`], so
//! a test never passes by silence. [`Outcome::calls`] lists every call with
//! its decoded arguments.
//!
//! ## Other tools
//!
//! - [`Script`]: the exact calls a handler must make, for encoding-level
//!   tests.
//! - [`driver`]: a Kong-side client over the real socket, and
//!   [`process`]: a built plugin executable started as Kong starts it, for
//!   end-to-end tests.
//! - [`live`]: the same model of one request, driven by a caller that owns
//!   the flow (the `kong-pdk-dev` gateway).

pub mod driver;
pub mod live;
pub mod msgpack_driver;
pub mod process;
mod test_server;

mod config;
mod env;
mod error;
mod harness;
mod headers;
mod http;
mod request;
mod rules;
mod script;
mod sim;
mod values;

pub use kong_pdk::Phase;
pub use kong_pdk_proto as pb;
/// msgpack values, as the MsgPack:1 driver reads and writes them.
pub use rmpv;

pub use crate::config::{KongKeys, PLUGIN_ID, Scope, WORKSPACE_ID, kong_config};
pub use crate::driver::{Call, Connection, EventEnd, EventResult, Reply};
pub use crate::env::{DEFAULT_NODE_ID, ERROR_BODY, Outcome, PhaseEnd, PhaseRun, TestEnv};
pub use crate::error::HarnessError;
pub use crate::headers::HeaderList;
pub use crate::http::{ClientResponse, ResponseSource, UpstreamRequest, UpstreamResponse};
pub use crate::msgpack_driver::{
    AnyConnection, MpCall, MpEnd, MpEventResult, MpReply, MsgPackConnection,
};
pub use crate::process::PluginProcess;
pub use crate::request::{
    DEFAULT_ROUTE_ID, DEFAULT_SERVICE_HOST, DEFAULT_SERVICE_ID, Part, Request,
};
pub use crate::script::{Script, ScriptError, ScriptReport};
pub use crate::sim::{CallOutcome, LogEntry, LogLevel, PdkCall};
pub use crate::test_server::TestServer;
