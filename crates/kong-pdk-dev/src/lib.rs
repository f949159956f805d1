//! # kong-pdk-dev
//!
//! Developer tools for Kong Gateway external plugins (any language that
//! speaks `ProtoBuf:1`: kong-pdk, go-pdk, …):
//!
//! - `kong-pdk-dev gateway [-c kong.conf]` ([`gateway`]): a local HTTP
//!   gateway that reads the `kong.conf` and `kong.yml` a Kong user has,
//!   runs the plugin servers exactly as Kong does (query, start, restart,
//!   instances, phases, buffered responses, log after the response) and
//!   proxies real HTTP to the services. PDK calls are answered by the same
//!   model of Kong as the `kong-pdk-test` kit.
//! - `kong-pdk-dev check <plugin-executable>` ([`check`]): a conformance
//!   check of a plugin executable against Kong's side of the contract.
//! - `kong-pdk-dev schema-lua <plugin-executable>` ([`lua_schema`]): the
//!   plugin's schema as a Lua `schema.lua` module.
//! - `kong-pdk-dev bench <plugin-executable>` ([`mod@bench`]): a Kong-side load
//!   driver, side by side with a minimal raw server (`bench-raw`).
//!
//! See the crate's README for the commands.

pub mod bench;
pub mod check;
pub mod cli;
pub mod conf;
pub mod declarative;
pub mod dump;
pub mod echo;
pub mod error;
pub mod gateway;
pub mod log;
pub mod lua_schema;
pub mod prefix_lock;
pub mod proxy;
pub mod router;
pub mod rpc;
pub mod scaffold;
pub mod serve;
pub mod setup;
pub mod supervisor;
pub mod tracked;

pub use crate::error::{Error, Result};
