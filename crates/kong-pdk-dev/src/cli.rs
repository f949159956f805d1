//! The command line: the commands, their flags and their help texts.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{check, gateway};

/// The usage text: every command in one line each.
pub const USAGE: &str = "\
Usage: kong-pdk-dev <command> [options]

Commands:
  gateway     run a local Kong-compatible gateway with your plugin servers
  check       check a plugin executable against Kong's side of the contract
  bench       load-test a plugin executable like Kong's workers would
  schema-lua  print a plugin's schema as a Lua schema.lua module
  new         create a plugin crate (code, tests, kong.conf, Dockerfile)
  help [command] | --version

`kong-pdk-dev <command> --help` describes a command.
";

/// `gateway --help`.
pub const GATEWAY_USAGE: &str = "\
Usage: kong-pdk-dev gateway [-c kong.conf] [--echo-upstream ADDR]
  Runs a local Kong-compatible gateway: reads kong.conf (default
  /etc/kong/kong.conf if it exists) and its declarative_config (kong.yml),
  starts the plugin servers like Kong, proxies HTTP on proxy_listen.
  KONG_* environment variables override kong.conf. Ctrl-C or SIGTERM stops
  it and its plugin servers.
  -c, --conf FILE       kong.conf to read (relative paths in it are resolved
                        against its directory)
  --echo-upstream ADDR  also serve the built-in echo upstream on ADDR
                        (same as dev_echo_upstream_listen = ADDR)
";

/// `check --help`.
pub const CHECK_USAGE: &str = "\
Usage: kong-pdk-dev check [--config JSON] <plugin-executable>
  Checks a plugin executable (kong-pdk, go-pdk or any ProtoBuf:1 server)
  against Kong's side of the contract: -dump, the socket, instances, each
  phase, errors. Prints a table; exits 1 when a check fails.
  --config JSON  the plugin config to start the instance with
                 (default: built from the schema's defaults)
";

/// `schema-lua --help`.
pub const SCHEMA_LUA_USAGE: &str = "\
Usage: kong-pdk-dev schema-lua <plugin-executable>
  Prints the plugin's schema (from its -dump) as a Lua schema.lua module:
  what a control plane that never starts plugin servers (hybrid mode,
  Konnect) needs to validate the plugin's config.
";

/// The help text of a command, by name.
pub fn usage_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "gateway" => GATEWAY_USAGE,
        "check" => CHECK_USAGE,
        "schema-lua" => SCHEMA_LUA_USAGE,
        "bench" => crate::bench::BENCH_USAGE,
        "new" => crate::scaffold::NEW_USAGE,
        _ => return None,
    })
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `gateway`.
    Gateway(gateway::Options),
    /// `check`.
    Check(check::Options),
    /// `bench` and its arguments.
    Bench(Vec<String>),
    /// `schema-lua <exe>`.
    SchemaLua(PathBuf),
    /// `new <name>`.
    New(crate::scaffold::Options),
    /// `help`, `-h`, `--help`: the usage, or a command's.
    Help(&'static str),
    /// `--version`.
    Version,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    let mut it = args.into_iter();
    let Some(sub) = it.next() else {
        return Err("missing command".into());
    };
    // `-x v`, `-x=v`, `--x v`, `--x=v`.
    fn split(arg: &str) -> Option<(String, Option<String>)> {
        let flag = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
        if flag.is_empty() {
            return None;
        }
        Some(match flag.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (flag.to_owned(), None),
        })
    }
    let value = |name: &str, inline: Option<String>, it: &mut std::vec::IntoIter<String>| {
        inline
            .or_else(|| it.next())
            .ok_or_else(|| format!("flag -{name} needs a value"))
    };
    let asks_help = it
        .as_slice()
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "-help" | "--help"));
    match sub.as_str() {
        "help" | "-h" | "--help" | "-help" => match it.next() {
            None => Ok(Command::Help(USAGE)),
            Some(c) => usage_of(&c)
                .map(Command::Help)
                .ok_or_else(|| format!("help: unknown command {c:?}")),
        },
        // Whatever else is on the line, `--help` asks for the command's text.
        command if usage_of(command).is_some() && asks_help => {
            Ok(Command::Help(usage_of(command).unwrap_or(USAGE)))
        }
        "version" | "--version" | "-version" | "-V" => Ok(Command::Version),
        "gateway" => {
            let mut options = gateway::Options::default();
            while let Some(arg) = it.next() {
                match split(&arg) {
                    Some((k, v)) if k == "c" || k == "conf" => {
                        options.conf = Some(PathBuf::from(value(&k, v, &mut it)?));
                    }
                    Some((k, v)) if k == "echo-upstream" => {
                        options.echo_upstream = Some(value(&k, v, &mut it)?);
                    }
                    _ => return Err(format!("gateway: unexpected argument {arg:?}")),
                }
            }
            Ok(Command::Gateway(options))
        }
        "check" => {
            let mut config = None;
            let mut exe = None;
            while let Some(arg) = it.next() {
                match split(&arg) {
                    Some((k, v)) if k == "config" => {
                        let text = value(&k, v, &mut it)?;
                        config = Some(
                            serde_json::from_str(&text)
                                .map_err(|e| format!("check: --config is not JSON: {e}"))?,
                        );
                    }
                    Some(_) => return Err(format!("check: unknown flag {arg:?}")),
                    None if exe.is_none() => exe = Some(PathBuf::from(arg)),
                    None => return Err(format!("check: unexpected argument {arg:?}")),
                }
            }
            let executable = exe.ok_or("check: missing the plugin executable")?;
            Ok(Command::Check(check::Options { executable, config }))
        }
        "bench" => Ok(Command::Bench(it.collect())),
        "schema-lua" => match (it.next(), it.next()) {
            (Some(exe), None) if !exe.starts_with('-') => Ok(Command::SchemaLua(exe.into())),
            _ => Err("schema-lua: give exactly one plugin executable".into()),
        },
        "new" => {
            use crate::scaffold::{Options, PdkSource};
            let mut pdk = PdkSource::Default;
            let mut name = None;
            while let Some(arg) = it.next() {
                match split(&arg) {
                    Some((k, v)) if k == "pdk-path" => {
                        pdk = PdkSource::Checkout(PathBuf::from(value(&k, v, &mut it)?));
                    }
                    Some((k, None)) if k == "no-patch" => pdk = PdkSource::CratesIo,
                    Some(_) => return Err(format!("new: unknown flag {arg:?}")),
                    None if name.is_none() => name = Some(arg),
                    None => return Err(format!("new: unexpected argument {arg:?}")),
                }
            }
            let name = name.ok_or("new: missing the plugin name")?;
            Ok(Command::New(Options { name, pdk }))
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// `bench`: its own single-threaded runtime, the other core is the plugin's.
fn bench(args: &[String]) -> ExitCode {
    crate::bench::main(args)
}

/// Runs the command line; the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let command = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            let usage = std::env::args()
                .nth(1)
                .and_then(|c| usage_of(&c))
                .unwrap_or(USAGE);
            eprintln!("kong-pdk-dev: {e}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    match &command {
        Command::Bench(args) => return bench(args),
        Command::SchemaLua(exe) => return crate::lua_schema::main(exe),
        Command::New(options) => return crate::scaffold::main(options),
        Command::Help(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // The gateway holds SIGTERM/SIGINT from here until its handlers exist,
    // so a signal at any moment stops it cleanly.
    let hold =
        matches!(command, Command::Gateway(_)).then(kong_pdk::server::hold_termination_signals);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Plugin servers are spawned from these threads: they must not
        // inherit the held signals.
        .on_thread_start(kong_pdk::server::release_termination_signals)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kong-pdk-dev: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Bench(args) => bench(&args),
        Command::SchemaLua(exe) => crate::lua_schema::main(&exe),
        Command::New(options) => crate::scaffold::main(&options),
        Command::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("kong-pdk-dev {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Gateway(options) => match gateway_run(&runtime, options, hold) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                for line in e.message().lines() {
                    crate::log::error(line);
                }
                eprintln!(
                    "kong-pdk-dev: gateway not started: {} error(s), see above",
                    e.message().lines().count()
                );
                ExitCode::FAILURE
            }
        },
        Command::Check(options) => {
            println!("kong-pdk-dev check {}", options.executable.display());
            let report = runtime.block_on(check::run(&options));
            print!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Installs the gateway's signal handlers, releases the held signals to
/// them, and runs the gateway.
fn gateway_run(
    runtime: &tokio::runtime::Runtime,
    options: gateway::Options,
    hold: Option<kong_pdk::server::SignalHold>,
) -> crate::error::Result<()> {
    let termination = {
        let _in_runtime = runtime.enter();
        kong_pdk::server::Termination::install()
    }
    .map_err(|e| crate::error::Error::new(format!("cannot handle SIGTERM: {e}")))?;
    drop(hold);
    runtime.block_on(gateway::run(options, termination))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags_in_go_and_gnu_spellings() {
        assert_eq!(
            parse(args(&[
                "gateway",
                "-c",
                "k.conf",
                "--echo-upstream=127.0.0.1:1"
            ]))
            .unwrap(),
            Command::Gateway(gateway::Options {
                conf: Some("k.conf".into()),
                echo_upstream: Some("127.0.0.1:1".into()),
            })
        );
        assert_eq!(
            parse(args(&["check", "--config", "{\"a\":1}", "./p"])).unwrap(),
            Command::Check(check::Options {
                executable: "./p".into(),
                config: Some(serde_json::json!({"a": 1})),
            })
        );
        assert!(parse(args(&["gateway", "-x"])).is_err());
        assert!(parse(args(&["check"])).is_err());
        assert!(parse(args(&[])).is_err());
        assert_eq!(parse(args(&["--help"])).unwrap(), Command::Help(USAGE));
        assert_eq!(
            parse(args(&["new", "--pdk-path=/src", "demo"])).unwrap(),
            Command::New(crate::scaffold::Options {
                name: "demo".into(),
                pdk: crate::scaffold::PdkSource::Checkout("/src".into()),
            })
        );
        assert!(parse(args(&["new"])).is_err());
    }
}
