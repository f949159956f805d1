//! The error type of PDK calls.

use std::fmt;
use std::io;

use crate::plugin::Phase;

/// The result of a PDK call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a PDK call failed.
///
/// Over the ProtoBuf protocol Kong cannot send an error string back: when a
/// PDK function fails on Kong's side (called in a phase where Kong forbids it,
/// bad arguments, …) Kong aborts the phase and closes the connection, which
/// surfaces here as [`Error::ConnectionClosed`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Kong closed the connection instead of answering `method`. Kong does this
    /// when the call is not allowed in the current phase or its arguments are
    /// rejected; the phase has already failed on Kong's side.
    ConnectionClosed {
        /// The PDK method that got no answer.
        method: &'static str,
        /// The phase it was called in.
        phase: Phase,
    },
    /// Reading or writing the socket failed.
    Io {
        /// The PDK method in flight.
        method: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// Kong's answer to `method` could not be decoded.
    Decode {
        /// The PDK method whose answer was malformed.
        method: &'static str,
        /// What was wrong with it.
        message: String,
    },
    /// Kong answered, but with an error (e.g. `RawBodyResult.error`).
    Kong {
        /// The PDK method.
        method: &'static str,
        /// Kong's message.
        message: String,
    },
    /// A value could not be converted to or from Kong's JSON-like values.
    Value {
        /// The PDK method.
        method: &'static str,
        /// What could not be converted.
        message: String,
    },
    /// The handler already called `kong.response.exit`; Kong will not answer
    /// anything else for this event.
    AfterExit {
        /// The PDK method called after the exit.
        method: &'static str,
    },
    /// An earlier failure left the connection unusable for this event.
    ConnectionBroken {
        /// The PDK method that was not sent.
        method: &'static str,
    },
    /// A getter that reads the live request, called in the log phase, where
    /// Kong cannot answer it (the log handler runs in a timer after the
    /// response) and `kong.log.serialize()` does not carry it. Returned
    /// before anything is sent, so the handler can go on.
    LogPhase {
        /// The getter.
        method: &'static str,
        /// What to do instead.
        advice: &'static str,
    },
    /// [`Kong::call`](crate::Kong::call) reaches Kong's whole Lua PDK only
    /// over MsgPack:1; this plugin speaks ProtoBuf:1, where Kong serves its
    /// 74 methods and answers any other name by failing the request.
    NeedsMsgPack {
        /// The function asked for.
        function: String,
    },
    /// A response body could not be decoded per its `Content-Encoding` (an
    /// unsupported coding, corrupt data, or more than the size limit once
    /// decoded). Nothing was sent to Kong.
    ContentEncoding {
        /// The PDK method whose result could not be decoded.
        method: &'static str,
        /// What was wrong, naming the coding or the limit.
        message: String,
    },
    /// A frame exceeded the configured maximum frame size.
    FrameTooLarge {
        /// The announced size.
        size: u64,
        /// The configured maximum.
        max: u64,
    },
}

impl Error {
    /// The PDK method involved, when there is one.
    pub fn method(&self) -> Option<&'static str> {
        match self {
            Error::ConnectionClosed { method, .. }
            | Error::Io { method, .. }
            | Error::Decode { method, .. }
            | Error::Kong { method, .. }
            | Error::Value { method, .. }
            | Error::AfterExit { method }
            | Error::ConnectionBroken { method }
            | Error::LogPhase { method, .. }
            | Error::ContentEncoding { method, .. } => Some(method),
            Error::NeedsMsgPack { .. } => Some("kong.call"),
            Error::FrameTooLarge { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ConnectionClosed { method, phase } => {
                write!(
                    f,
                    "Kong closed the connection instead of answering {method} in the {phase} phase \
                     (Kong rejects a PDK call this way when the phase does not allow it or the arguments are invalid)"
                )?;
                if *phase == Phase::Log {
                    f.write_str(
                        "; the log phase runs after the response on saved data, so calls that read \
                         the live request (method, path, query, body, client address, nginx \
                         variables) fail there: read them in access and pass them on with \
                         kong.ctx().set_shared",
                    )?;
                }
                Ok(())
            }
            Error::Io { method, source } => write!(f, "{method}: socket error: {source}"),
            Error::Decode { method, message } => {
                write!(f, "{method}: cannot decode Kong's answer: {message}")
            }
            Error::Kong { method, message } => write!(f, "{method}: Kong says: {message}"),
            Error::Value { method, message } => write!(f, "{method}: {message}"),
            Error::AfterExit { method } => write!(
                f,
                "{method} called after kong.response.exit; Kong answers nothing after an exit"
            ),
            Error::ConnectionBroken { method } => write!(
                f,
                "{method} not sent: an earlier failure left this event's connection unusable"
            ),
            Error::LogPhase { method, advice } => write!(
                f,
                "{method} reads the live request, which Kong cannot do in the log phase (the log \
                 handler runs in a timer after the response) and kong.log.serialize() does not \
                 carry it: {advice}"
            ),
            Error::NeedsMsgPack { function } => write!(
                f,
                "kong.call({function:?}) needs the MsgPack:1 protocol: ProtoBuf:1 reaches only Kong's 74 PDK methods; set `const PROTOCOL: Protocol = Protocol::MsgPack;` in the plugin's impl"
            ),
            Error::ContentEncoding { method, message } => write!(f, "{method}: {message}"),
            Error::FrameTooLarge { size, max } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds the maximum of {max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
