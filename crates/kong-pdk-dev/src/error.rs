//! [`Error`]: a message that names where the problem is.

use std::fmt;

/// An error for the user, naming the file and setting it comes from, e.g.
/// `kong.conf: pluginserver_rust_hello_query_cmd: command exited with 127`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }

    /// An error at `place` (`place: message`).
    pub fn at(place: impl fmt::Display, message: impl fmt::Display) -> Error {
        Error::new(format!("{place}: {message}"))
    }

    /// Several errors, one per line.
    pub fn many(errors: impl IntoIterator<Item = Error>) -> Error {
        let lines: Vec<String> = errors.into_iter().map(|e| e.message).collect();
        Error::new(lines.join("\n"))
    }

    /// This error prefixed with `place: `.
    pub fn context(self, place: impl fmt::Display) -> Error {
        Error::at(place, self.message)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
