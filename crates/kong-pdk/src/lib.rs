//! # kong-pdk
//!
//! Write [Kong Gateway](https://konghq.com) external plugins in Rust.
//!
//! A plugin is a config type (serde + [`derive@Schema`]) with async phase
//! handlers ([`Plugin`]); `main` calls [`run`] with the plugin's version and
//! priority. `cargo build` gives the executable Kong starts, queries with
//! `-dump` and talks to over `<kong-prefix>/<name>.socket`.
//!
//! ```no_run
//! use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, Schema)]
//! struct Config {
//!     #[kong(default = "hello")]
//!     message: String,
//! }
//!
//! #[kong_pdk::plugin]
//! impl Plugin for Config {
//!     async fn access(&self, kong: &mut Kong) -> PhaseResult {
//!         let host = kong.request().get_header("host").await?;
//!         let greeting = format!("Rust says {} to {host}", self.message);
//!         kong.response().set_header("x-hello-from-rust", &greeting).await?;
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     kong_pdk::run::<Config>("0.1.0", 1)
//! }
//! ```
//!
//! Layout: [`Plugin`] and [`Phase`] (the trait and phases), [`Kong`] and [`pdk`] (the PDK
//! calls), [`schema`] (config schemas), [`server`] (the process Kong runs).

#[doc(hidden)]
pub mod __private;
mod calls;
pub mod entities;
mod error;
mod kong;
mod multimap;
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
pub use crate::plugin::{BoxError, Phase, PhaseResult, Plugin};
pub use crate::schema::Schema;

/// Runs the plugin server for `P`: parses the command line (`-dump`,
/// `-kong-prefix`, `-help`), then serves Kong until SIGTERM. Call it from
/// `main` with the plugin's version (`x.y.z`) and priority (Kong runs
/// plugins from the highest priority to the lowest).
pub fn run<P: Plugin>(version: &str, priority: i32) -> std::process::ExitCode {
    server::Server::<P>::new(version, priority).run()
}
