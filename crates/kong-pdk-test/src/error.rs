//! [`HarnessError`]: why a simulated run could not take place.

use std::fmt;
use std::io;

/// Why the simulated Kong could not run the plugin (as opposed to the
/// plugin failing, which is part of the [`Outcome`](crate::Outcome)).
#[derive(Debug)]
#[non_exhaustive]
pub enum HarnessError {
    /// The config does not fit the plugin's Kong schema (Kong would reject
    /// it when the plugin is configured).
    Config(String),
    /// The plugin server refused `cmd_start_instance`; the message says why
    /// when the kit could find out.
    StartRefused(String),
    /// The phase cannot run for this plugin or request (not declared by the
    /// plugin, `certificate` without TLS, `rewrite` on a scoped plugin).
    Phase(String),
    /// Talking to the in-process plugin server failed.
    Io(io::Error),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Config(m) => write!(f, "invalid plugin config: {m}"),
            HarnessError::StartRefused(m) => {
                write!(f, "the plugin server refused to start the instance: {m}")
            }
            HarnessError::Phase(m) => f.write_str(m),
            HarnessError::Io(e) => write!(f, "talking to the plugin server failed: {e}"),
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HarnessError {
    fn from(e: io::Error) -> Self {
        HarnessError::Io(e)
    }
}
