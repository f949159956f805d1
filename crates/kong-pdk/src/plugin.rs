//! The [`Plugin`] trait a plugin author implements, and the [`Phase`]s Kong runs.

use std::fmt;
use std::future::Future;

use serde::de::DeserializeOwned;

use crate::kong::Kong;
use crate::schema::Schema;

/// Any error a phase handler may return; `?` converts every error type into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a phase handler returns.
pub type PhaseResult = std::result::Result<(), BoxError>;

/// The protocol between Kong and a plugin server, as `-dump` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `ProtoBuf:1`: length-prefixed protobuf frames; the 74 PDK functions
    /// of Kong's `service Kong`. go-pdk's protocol.
    ProtoBuf,
    /// `MsgPack:1`: msgpack-rpc; any function of Kong's Lua PDK by name.
    /// The Python and JavaScript PDKs' protocol.
    MsgPack,
}

impl Protocol {
    /// The name in `-dump`'s `Protocol`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::ProtoBuf => "ProtoBuf:1",
            Protocol::MsgPack => "MsgPack:1",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase of Kong's request processing that an external plugin can handle.
///
/// Kong calls only the phases a plugin lists in its `-dump` output, and listing
/// [`Phase::Response`] makes Kong buffer the whole upstream response for every
/// plugin on the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// TLS handshake (`ssl_certificate_by_lua`); global plugins only.
    Certificate,
    /// Before routing (`rewrite_by_lua`); global plugins only.
    Rewrite,
    /// Before proxying to the upstream service.
    Access,
    /// After the whole upstream response was buffered; before it is sent to the client.
    Response,
    /// Stream (TCP/TLS/UDP) connections, the stream counterpart of `access`.
    Preread,
    /// After the response was sent, from a timer on saved request data.
    Log,
}

impl Phase {
    /// Every phase, in the order Kong runs them for one request.
    pub const ALL: [Phase; 6] = [
        Phase::Certificate,
        Phase::Rewrite,
        Phase::Access,
        Phase::Response,
        Phase::Preread,
        Phase::Log,
    ];

    /// The name Kong uses on the wire (`CmdHandleEvent.event_name`, `-dump` `Phases`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Certificate => "certificate",
            Phase::Rewrite => "rewrite",
            Phase::Access => "access",
            Phase::Response => "response",
            Phase::Preread => "preread",
            Phase::Log => "log",
        }
    }

    /// Parses a wire phase name; `None` for anything Kong cannot send to an external plugin.
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Whether Kong answers a failure in this phase with an HTTP error.
    ///
    /// In `rewrite`, `access`, `response` and `preread` a failed handler makes the
    /// server ask Kong for `500 {"message":"An unexpected error occurred"}`;
    /// `log` and `certificate` failures are only logged.
    pub const fn can_respond(self) -> bool {
        matches!(
            self,
            Phase::Rewrite | Phase::Access | Phase::Response | Phase::Preread
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kong plugin: its configuration type, built from Kong's config JSON once per
/// plugin instance, with one async method per phase it handles.
///
/// Write the phase methods you need as `async fn` and put
/// [`#[kong_pdk::plugin]`](crate::plugin) on the `impl` block: it fills in
/// [`Plugin::PHASES`] from the methods you wrote, so Kong calls nothing else.
///
/// ```no_run
/// use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
/// use serde::Deserialize;
///
/// #[derive(Deserialize, Schema)]
/// struct Config {
///     #[kong(default = "hello")]
///     message: String,
/// }
///
/// #[kong_pdk::plugin]
/// impl Plugin for Config {
///     async fn access(&self, kong: &mut Kong) -> PhaseResult {
///         let host = kong.request().get_header("host").await?;
///         kong.response()
///             .set_header("x-hello", &format!("{} {host}", self.message))
///             .await?;
///         Ok(())
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     kong_pdk::run::<Config>("0.1.0", 1)
/// }
/// ```
pub trait Plugin: DeserializeOwned + Schema + Send + Sync + 'static {
    /// The phases this plugin handles, in Kong's order. Filled in by `#[kong_pdk::plugin]`.
    const PHASES: &'static [Phase];

    /// When `true`, a failing handler in `rewrite`/`access`/`response`/`preread` is
    /// only logged and the request goes on (fail open) instead of answering 500.
    const FAIL_OPEN: bool = false;

    /// When `false`, every PDK call goes to Kong exactly as written: no
    /// cached reads, no coalesced writes, no log-phase answers from
    /// `kong.log.serialize()`. The call layer is on by default; operators
    /// can also turn it off with `KONG_PDK_CALL_LAYER=off`.
    const CALL_LAYER: bool = true;

    /// The protocol the server speaks with Kong: [`Protocol::ProtoBuf`]
    /// (go-pdk's, the default) or [`Protocol::MsgPack`] (Kong's Python and
    /// JavaScript PDKs', which reaches every Lua PDK function through
    /// [`Kong::call`](crate::Kong::call)). `-dump` tells Kong which.
    const PROTOCOL: Protocol = Protocol::ProtoBuf;

    /// Runs once per instance, right after Kong's config was deserialized and before
    /// Kong gets the instance id: compile regexes, build clients, check rules that
    /// span several fields. An error fails the instance start and is logged.
    fn init(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// The `certificate` phase (TLS handshake, global plugins only).
    fn certificate(&self, kong: &mut Kong) -> impl Future<Output = PhaseResult> + Send {
        let _ = kong;
        async { Ok(()) }
    }

    /// The `rewrite` phase (before routing, global plugins only).
    fn rewrite(&self, kong: &mut Kong) -> impl Future<Output = PhaseResult> + Send {
        let _ = kong;
        async { Ok(()) }
    }

    /// The `access` phase (before proxying).
    fn access(&self, kong: &mut Kong) -> impl Future<Output = PhaseResult> + Send {
        let _ = kong;
        async { Ok(()) }
    }

    /// The `response` phase (buffered upstream response available).
    /// Implementing it makes Kong buffer upstream responses.
    fn response(&self, kong: &mut Kong) -> impl Future<Output = PhaseResult> + Send {
        let _ = kong;
        async { Ok(()) }
    }

    /// The `preread` phase (stream connections).
    fn preread(&self, kong: &mut Kong) -> impl Future<Output = PhaseResult> + Send {
        let _ = kong;
        async { Ok(()) }
    }

    /// The `log` phase (after the response, on saved request data).
    fn log(&self, kong: &mut Kong) -> impl Future<Output = PhaseResult> + Send {
        let _ = kong;
        async { Ok(()) }
    }
}
