//! # kong-pdk-test
//!
//! Plays Kong's side of the ProtoBuf:1 plugin-server protocol, so plugin
//! servers can be tested without a Kong:
//!
//! - [`driver`]: a Kong-side client over the real socket and the real
//!   framing: start and close instances, run events and answer the PDK calls
//!   the plugin makes, exactly as Kong does (no reply to
//!   `kong.response.exit`, a closed connection for a rejected call).
//! - [`process`]: starts a built plugin executable with a temporary
//!   `-kong-prefix`, waits for its socket and stops it with SIGTERM.

pub mod driver;
pub mod process;

pub use driver::{Call, Connection, EventEnd, EventResult, Reply};
pub use process::PluginProcess;
