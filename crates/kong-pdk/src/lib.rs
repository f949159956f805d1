#![doc = include_str!("../README.md")]
//!
//! Layout: [`Plugin`] and [`Phase`] (the trait and phases), [`Kong`] and [`pdk`] (the PDK
//! calls), [`schema`] (config schemas), [`server`] (the process Kong runs).

#[doc(hidden)]
pub mod __private;
mod calls;
pub mod entities;
mod error;
mod fast_hash;
mod kong;
mod msgpack;
mod multimap;
#[cfg(feature = "otel")]
mod otel;
pub mod pdk;
mod plugin;
pub mod schema;
pub mod server;
mod value;
#[doc(hidden)]
pub mod wire;

pub use kong_pdk_macros::{Schema, plugin};

pub use crate::error::{Error, Result};
pub use crate::kong::Kong;
pub use crate::multimap::{Headers, Query};
pub use crate::plugin::{BoxError, Phase, PhaseResult, Plugin, Protocol};
pub use crate::schema::Schema;

/// Runs the plugin server for `P`: parses the command line (`-dump`,
/// `-kong-prefix`, `-help`), then serves Kong until SIGTERM. Call it from
/// `main` with the plugin's version (`x.y.z`) and priority (Kong runs
/// plugins from the highest priority to the lowest).
pub fn run<P: Plugin>(version: &str, priority: i32) -> std::process::ExitCode {
    server::Server::<P>::new(version, priority).run()
}
