//! Command-line flags, parsed the way Go's `flag` package does (go-pdk's
//! servers use it, and Kong and its docs use its spellings): `-x` and `--x`
//! are the same flag, values come as `-x v` or `-x=v`, bool flags take no
//! separate value, and parsing stops at `--`.

use std::ffi::OsString;
use std::path::PathBuf;

/// Kong's default prefix (`kong start -p` changes it).
pub const DEFAULT_PREFIX: &str = "/usr/local/kong";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print the plugin info JSON and exit.
    Dump {
        /// The Kong prefix (the socket path in the dump depends on it).
        prefix: PathBuf,
    },
    /// Serve on `<prefix>/<name>.socket`.
    Serve {
        /// The Kong prefix.
        prefix: PathBuf,
    },
    /// Print usage and exit 0.
    Help,
}

/// A command line that cannot be parsed; print it with the usage, exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The usage text, in the format of Go's `flag.PrintDefaults`.
pub fn usage(name: &str) -> String {
    format!(
        "Usage of {name}:\n  \
         -dump\n    \tDump info about plugins\n  \
         -help\n    \tShow usage info\n  \
         -kong-prefix string\n    \tKong prefix path (specified by the -p argument commonly used in the kong cli) (default \"{DEFAULT_PREFIX}\")\n"
    )
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter();
    let mut dump = false;
    let mut help = false;
    let mut prefix = PathBuf::from(DEFAULT_PREFIX);
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str().map(str::to_owned) else {
            return Err(UsageError("argument is not valid UTF-8".into()));
        };
        if arg == "--" {
            break;
        }
        let Some(flag) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|f| !f.is_empty() && !f.starts_with('-') && !f.starts_with('='))
        else {
            return Err(UsageError(format!("unexpected argument {arg:?}")));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        match name {
            "dump" => dump = parse_bool(name, inline.as_deref())?,
            "help" | "h" => help = parse_bool(name, inline.as_deref())?,
            "kong-prefix" => {
                let value = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .and_then(|v| v.into_string().ok())
                        .ok_or_else(|| UsageError("flag needs an argument: -kong-prefix".into()))?,
                };
                prefix = PathBuf::from(value);
            }
            other => {
                return Err(UsageError(format!(
                    "flag provided but not defined: -{other}"
                )));
            }
        }
    }
    if let Some(rest) = args.next() {
        return Err(UsageError(format!(
            "unexpected argument {:?}",
            rest.to_string_lossy()
        )));
    }
    Ok(if help {
        Command::Help
    } else if dump {
        Command::Dump { prefix }
    } else {
        Command::Serve { prefix }
    })
}

fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, UsageError> {
    match value {
        None => Ok(true),
        // The spellings Go's strconv.ParseBool accepts.
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(UsageError(format!(
            "invalid boolean value {v:?} for -{name}: parse error"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn dump(prefix: &str) -> Command {
        Command::Dump {
            prefix: prefix.into(),
        }
    }

    fn serve(prefix: &str) -> Command {
        Command::Serve {
            prefix: prefix.into(),
        }
    }

    #[test]
    fn accepts_every_spelling_kong_and_its_docs_use() {
        let table: &[(&[&str], Command)] = &[
            (&[], serve(DEFAULT_PREFIX)),
            (&["-dump"], dump(DEFAULT_PREFIX)),
            (&["--dump"], dump(DEFAULT_PREFIX)),
            (&["-dump=true"], dump(DEFAULT_PREFIX)),
            (&["-dump=false"], serve(DEFAULT_PREFIX)),
            (&["-kong-prefix", "/p"], serve("/p")),
            (&["-kong-prefix=/p"], serve("/p")),
            (&["--kong-prefix", "/p"], serve("/p")),
            (&["--kong-prefix=/p"], serve("/p")),
            (&["-kong-prefix", "/p", "-dump"], dump("/p")),
            (&["-dump", "-kong-prefix", "/p"], dump("/p")),
            (&["-help"], Command::Help),
            (&["--help"], Command::Help),
            (&["-h"], Command::Help),
            (&["-dump", "-h"], Command::Help),
            (&["-dump", "--"], dump(DEFAULT_PREFIX)),
        ];
        for (args, want) in table {
            assert_eq!(&p(args).unwrap(), want, "args {args:?}");
        }
    }

    #[test]
    fn rejects_unknown_flags_and_missing_values() {
        let table: &[(&[&str], &str)] = &[
            (&["-verbose"], "flag provided but not defined: -verbose"),
            (&["---dump"], "unexpected argument \"---dump\""),
            (&["-kong-prefix"], "flag needs an argument: -kong-prefix"),
            (
                &["-dump=maybe"],
                "invalid boolean value \"maybe\" for -dump",
            ),
            (&["extra"], "unexpected argument \"extra\""),
            (&["-dump", "extra"], "unexpected argument \"extra\""),
            (&["-"], "unexpected argument \"-\""),
        ];
        for (args, want) in table {
            let err = p(args).unwrap_err();
            assert!(err.0.contains(want), "args {args:?}: {err}");
        }
    }

    #[test]
    fn usage_lists_every_flag_with_its_default() {
        let u = usage("rust-hello");
        assert!(u.starts_with("Usage of rust-hello:\n"));
        assert!(u.contains("-dump\n    \tDump info about plugins"));
        assert!(u.contains("-help\n    \tShow usage info"));
        assert!(u.contains("-kong-prefix string"));
        assert!(u.contains("(default \"/usr/local/kong\")"));
    }
}
