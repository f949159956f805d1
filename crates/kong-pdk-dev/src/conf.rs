//! The `kong.conf` subset the gateway reads, with Kong's defaults, name
//! mangling and `KONG_*` environment overrides.
//!
//! | Setting | Default | Notes |
//! |---|---|---|
//! | `prefix` | `/usr/local/kong` | created when missing |
//! | `proxy_listen` | `127.0.0.1:8000` | comma-separated `address:port [flags]`; `ssl` entries are skipped; `off` |
//! | `plugins` | `bundled` | the external plugins to load must be listed, as with Kong |
//! | `pluginserver_names` | none | names are lower-cased |
//! | `pluginserver_<name>_socket` | `<prefix>/<name>.socket` | `<name>` with `-` → `_` in the key |
//! | `pluginserver_<name>_start_cmd` | `/usr/local/bin/<name>` if it exists | else the server is managed externally |
//! | `pluginserver_<name>_query_cmd` | `/usr/local/bin/<name> -dump` if it exists | required |
//! | `declarative_config` | none | the `kong.yml` to serve |
//! | `dev_echo_upstream_listen` | none | kong-pdk-dev only: address of the built-in echo upstream |
//! | `nginx_main_env` | none | `NAME` or `NAME=value` (several with `; env `): what started plugin servers get of the environment, besides `TZ` |
//!
//! Every setting can be overridden by the environment variable `KONG_<SETTING>`
//! (upper case), e.g. `KONG_PROXY_LISTEN` or
//! `KONG_PLUGINSERVER_RUST_HELLO_START_CMD`. Relative paths in the file are
//! resolved against the file's directory, relative paths from the
//! environment against the current directory; commands run in the conf
//! file's directory.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Kong's default prefix.
pub const DEFAULT_PREFIX: &str = "/usr/local/kong";
/// The proxy address when `proxy_listen` is not set (Kong's default is
/// `0.0.0.0:8000`; a development gateway stays on loopback).
pub const DEFAULT_PROXY_LISTEN: &str = "127.0.0.1:8000";
/// Where Kong looks for plugin servers without a `start_cmd`/`query_cmd`.
pub const DEFAULT_PLUGINSERVER_PATH: &str = "/usr/local/bin";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the conf file (its name as given).
    File(String),
    /// A `KONG_*` environment variable.
    Env,
    /// Kong's default.
    Default(String),
}

/// One setting's value and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The setting's name, e.g. `proxy_listen`.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

impl Setting {
    /// Where to point the user: `kong.conf: proxy_listen` or
    /// `KONG_PROXY_LISTEN (environment)`.
    pub fn place(&self) -> Place<'_> {
        Place(self)
    }
}

/// The display form of [`Setting::place`].
#[derive(Debug)]
pub struct Place<'a>(&'a Setting);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match &s.origin {
            Origin::File(file) => write!(f, "{file}: {}", s.key),
            Origin::Env => write!(f, "KONG_{} (environment)", s.key.to_ascii_uppercase()),
            Origin::Default(file) => write!(f, "{file}: {} (default)", s.key),
        }
    }
}

/// One plugin server (`pluginserver_names` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginServerConf {
    /// The lower-cased name (a label: the plugin's name comes from `-dump`).
    pub name: String,
    /// The socket Kong connects to.
    pub socket: PathBuf,
    /// The command that starts the server (`sh -c "exec <cmd>"`); `None`
    /// when the server is managed externally.
    pub start_cmd: Option<Setting>,
    /// The command that prints the plugin info (`sh -c <cmd>`).
    pub query_cmd: Setting,
}

/// The settings the gateway uses.
#[derive(Debug, Clone)]
pub struct KongConf {
    /// The conf file's name as given (`<defaults>` when there is none).
    pub file: String,
    /// The directory relative paths and commands are resolved in.
    pub dir: PathBuf,
    /// Kong's prefix (sockets live here).
    pub prefix: PathBuf,
    /// The proxy listeners.
    pub proxy_listen: Vec<SocketAddr>,
    /// The plugin names listed in `plugins` (without `bundled`).
    pub plugins: Vec<String>,
    /// The plugin servers.
    pub pluginservers: Vec<PluginServerConf>,
    /// The declarative configuration file.
    pub declarative_config: Option<PathBuf>,
    /// Where the built-in echo upstream listens, if anywhere.
    pub echo_upstream_listen: Option<SocketAddr>,
    /// The environment of started plugin servers: nginx gives its workers
    /// (which start them) only `TZ` and what `env` directives name; Kong
    /// writes `nginx_main_env` as one.
    pub server_env: Vec<(String, String)>,
    /// Non-fatal findings (ignored listeners, misspelled keys, …).
    pub warnings: Vec<String>,
}

/// What an nginx worker's environment holds: `TZ` and each variable an
/// `env` directive names (`NAME` keeps the inherited value, `NAME=value`
/// sets one). `nginx_main_env` is one directive's argument; the usual way
/// to declare several is `A; env B`.
pub fn worker_environment(
    nginx_main_env: Option<&str>,
    inherited: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let inherited: BTreeMap<String, String> = inherited.into_iter().collect();
    let mut out = BTreeMap::new();
    if let Some(tz) = inherited.get("TZ") {
        out.insert("TZ".to_owned(), tz.clone());
    }
    for item in nginx_main_env.unwrap_or("").split(';') {
        let item = item.trim();
        let item = item.strip_prefix("env ").map_or(item, str::trim);
        match item.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                out.insert(name.to_owned(), value.to_owned());
            }
            Some(_) => {}
            None if item.is_empty() => {}
            None => {
                if let Some(value) = inherited.get(item) {
                    out.insert(item.to_owned(), value.clone());
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Parses the text of a kong.conf file into `key → value` (last one wins), the
/// way Kong reads it: `key = value` lines, `#` starts a comment unless
/// written `\#`, keys lower-cased, values trimmed.
pub fn parse_lines(text: &str, file: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::at(
                format!("{file}:{}", n + 1),
                format!("expected `key = value`, got {line:?}"),
            ));
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(Error::at(
                format!("{file}:{}", n + 1),
                format!("invalid setting name {:?}", key),
            ));
        }
        out.insert(key, value.trim().to_owned());
    }
    Ok(out)
}

fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            c => out.push(c),
        }
    }
    out
}

/// Removes `.` and `name/..` components without touching the file system.
pub fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// Splits a Kong array setting (`a, b,c`) into trimmed non-empty items.
pub fn split_array(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The settings of one source, looked up with the environment first.
struct Settings {
    file_name: String,
    file: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    file_dir: PathBuf,
    cwd: PathBuf,
}

impl Settings {
    fn get(&self, key: &str) -> Option<Setting> {
        if let Some(v) = self.env.get(key) {
            return Some(Setting {
                key: key.into(),
                value: v.clone(),
                origin: Origin::Env,
            });
        }
        self.file.get(key).map(|v| Setting {
            key: key.into(),
            value: v.clone(),
            origin: Origin::File(self.file_name.clone()),
        })
    }

    fn default(&self, key: &str, value: impl Into<String>) -> Setting {
        Setting {
            key: key.into(),
            value: value.into(),
            origin: Origin::Default(self.file_name.clone()),
        }
    }

    fn get_or(&self, key: &str, default: &str) -> Setting {
        self.get(key).unwrap_or_else(|| self.default(key, default))
    }

    /// A path setting, resolved against the directory of its origin.
    fn path(&self, setting: &Setting) -> PathBuf {
        let p = Path::new(&setting.value);
        if p.is_absolute() {
            return clean(p);
        }
        match setting.origin {
            Origin::Env => clean(&self.cwd.join(p)),
            _ => clean(&self.file_dir.join(p)),
        }
    }

    fn keys(&self) -> impl Iterator<Item = (&String, Origin)> {
        self.file
            .keys()
            .map(|k| (k, Origin::File(self.file_name.clone())))
            .chain(self.env.keys().map(|k| (k, Origin::Env)))
    }
}

impl KongConf {
    /// Loads `file` (or only defaults and the environment when `None`)
    /// with overrides from `env` (`KONG_*` variables; others are ignored).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<KongConf> {
        let cwd = std::env::current_dir().map_err(|e| Error::new(format!("current dir: {e}")))?;
        let (name, text, dir) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::at(path.display(), format!("cannot read: {e}")))?;
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| cwd.clone(), |p| clean(&cwd.join(p)));
                (path.display().to_string(), text, dir)
            }
            None => ("<defaults>".to_owned(), String::new(), cwd.clone()),
        };
        KongConf::parse(&text, &name, &dir, &cwd, env)
    }

    /// Parses conf `text` named `file` whose relative paths resolve in
    /// `dir` (environment paths in `cwd`).
    pub fn parse(
        text: &str,
        file: &str,
        dir: &Path,
        cwd: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<KongConf> {
        let env = env
            .into_iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("KONG_")?.to_ascii_lowercase();
                Some((key, v))
            })
            .collect();
        let s = Settings {
            file_name: file.to_owned(),
            file: parse_lines(text, file)?,
            env,
            file_dir: dir.to_path_buf(),
            cwd: cwd.to_path_buf(),
        };
        let mut warnings = Vec::new();
        let mut errors = Vec::new();

        let prefix = s.get_or("prefix", DEFAULT_PREFIX);
        let prefix_path = s.path(&prefix);

        let listen = s.get_or("proxy_listen", DEFAULT_PROXY_LISTEN);
        let proxy_listen = match parse_listen(&listen.value) {
            Ok((addrs, notes)) => {
                warnings.extend(
                    notes
                        .into_iter()
                        .map(|n| format!("{}: {n}", listen.place())),
                );
                addrs
            }
            Err(e) => {
                errors.push(Error::at(listen.place(), e));
                Vec::new()
            }
        };

        let plugins_setting = s.get_or("plugins", "bundled");
        let plugins: Vec<String> = split_array(&plugins_setting.value)
            .into_iter()
            .filter(|p| p != "bundled" && p != "off")
            .collect();

        let declarative_config = s.get("declarative_config").map(|d| s.path(&d));

        let echo_upstream_listen = match s.get("dev_echo_upstream_listen") {
            Some(setting) if setting.value != "off" && !setting.value.is_empty() => {
                match resolve_addr(&setting.value) {
                    Ok(addr) => Some(addr),
                    Err(e) => {
                        errors.push(Error::at(setting.place(), e));
                        None
                    }
                }
            }
            _ => None,
        };

        let server_env = worker_environment(
            s.get("nginx_main_env").map(|e| e.value).as_deref(),
            std::env::vars(),
        );

        let names_setting = s.get("pluginserver_names");
        let names: Vec<String> = names_setting
            .as_ref()
            .map(|n| {
                split_array(&n.value)
                    .into_iter()
                    .filter(|n| n != "off")
                    .map(|n| n.to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let mut pluginservers = Vec::new();
        for name in &names {
            let key = format!("pluginserver_{}", name.replace('-', "_"));
            let socket = s
                .get(&format!("{key}_socket"))
                .map(|v| s.path(&v))
                .unwrap_or_else(|| prefix_path.join(format!("{name}.socket")));
            let default_exe = Path::new(DEFAULT_PLUGINSERVER_PATH).join(name);
            let exists = default_exe.exists();
            let start_cmd = s.get(&format!("{key}_start_cmd")).or_else(|| {
                exists.then(|| {
                    s.default(
                        &format!("{key}_start_cmd"),
                        default_exe.display().to_string(),
                    )
                })
            });
            if start_cmd.is_none() {
                warnings.push(format!(
                    "start_command undefined for pluginserver {name}; assuming external process management"
                ));
            }
            let query_cmd = s.get(&format!("{key}_query_cmd")).or_else(|| {
                exists.then(|| {
                    s.default(
                        &format!("{key}_query_cmd"),
                        format!("{} -dump", default_exe.display()),
                    )
                })
            });
            let Some(query_cmd) = query_cmd else {
                errors.push(Error::at(
                    format!("{file}: {key}_query_cmd"),
                    format!(
                        "query_command undefined for pluginserver {name} (set {key}_query_cmd, e.g. `{key}_query_cmd = /path/to/{name} -dump`)"
                    ),
                ));
                continue;
            };
            pluginservers.push(PluginServerConf {
                name: name.clone(),
                socket,
                start_cmd,
                query_cmd,
            });
        }

        // Settings for plugin servers that are not listed: most likely typos.
        let known: Vec<String> = names
            .iter()
            .map(|n| format!("pluginserver_{}_", n.replace('-', "_")))
            .collect();
        for (key, origin) in s.keys() {
            if key == "pluginserver_names" || !key.starts_with("pluginserver_") {
                continue;
            }
            if known.iter().any(|k| key.starts_with(k.as_str())) {
                let rest = known
                    .iter()
                    .find_map(|k| key.strip_prefix(k.as_str()))
                    .unwrap_or_default();
                if matches!(rest, "socket" | "start_cmd" | "query_cmd") {
                    continue;
                }
            }
            let setting = Setting {
                key: key.clone(),
                value: String::new(),
                origin,
            };
            warnings.push(format!(
                "{}: ignored: not the socket, start_cmd or query_cmd of a server in pluginserver_names ({})",
                setting.place(),
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ));
        }

        if !errors.is_empty() {
            return Err(Error::many(errors));
        }
        Ok(KongConf {
            file: file.to_owned(),
            dir: dir.to_path_buf(),
            prefix: prefix_path,
            proxy_listen,
            plugins,
            pluginservers,
            declarative_config,
            echo_upstream_listen,
            server_env,
            warnings,
        })
    }
}

/// Parses `proxy_listen`: the addresses, and notes on skipped entries/flags.
fn parse_listen(value: &str) -> Result<(Vec<SocketAddr>, Vec<String>), String> {
    let mut addrs = Vec::new();
    let mut notes = Vec::new();
    if value.trim() == "off" {
        return Ok((addrs, notes));
    }
    for entry in split_array(value) {
        let mut parts = entry.split_whitespace();
        let addr = parts.next().unwrap_or_default();
        let flags: Vec<&str> = parts.collect();
        if flags.contains(&"ssl") {
            notes.push(format!(
                "skipping `{entry}`: TLS listeners are not supported by kong-pdk-dev"
            ));
            continue;
        }
        let ignored: Vec<&str> = flags
            .iter()
            .copied()
            .filter(|f| {
                !f.starts_with("backlog=") && !matches!(*f, "reuseport" | "deferred" | "bind")
            })
            .collect();
        if !ignored.is_empty() {
            notes.push(format!("ignoring flags {} of `{entry}`", ignored.join(" ")));
        }
        addrs.push(resolve_addr(addr)?);
    }
    Ok((addrs, notes))
}

/// Resolves `host:port` (`*` and `0.0.0.0` mean every interface).
pub fn resolve_addr(addr: &str) -> Result<SocketAddr, String> {
    let addr = addr.trim();
    let normalized = match addr.strip_prefix("*:") {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_owned(),
    };
    if let Ok(a) = normalized.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !normalized.contains(':') {
        return Err(format!("invalid address {addr:?} (expected host:port)"));
    }
    normalized
        .to_socket_addrs()
        .map_err(|e| format!("invalid address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {addr:?} does not resolve"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_environment_is_tz_and_what_env_directives_name() {
        let inherited = [
            ("TZ", "UTC"),
            ("PATH", "/bin"),
            ("KONG_PDK_LOG", "debug"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let env = |setting| worker_environment(setting, inherited.clone());
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(env(None), pairs(&[("TZ", "UTC")]));
        assert_eq!(
            env(Some("KONG_PDK_LOG")),
            pairs(&[("KONG_PDK_LOG", "debug"), ("TZ", "UTC")])
        );
        assert_eq!(
            env(Some(
                "KONG_PDK_LOG; env KONG_PDK_CALL_LAYER=off; env ABSENT"
            )),
            pairs(&[
                ("KONG_PDK_CALL_LAYER", "off"),
                ("KONG_PDK_LOG", "debug"),
                ("TZ", "UTC")
            ])
        );
    }

    fn conf(text: &str, env: &[(&str, &str)]) -> Result<KongConf> {
        KongConf::parse(
            text,
            "kong.conf",
            Path::new("/etc/kong"),
            Path::new("/home/me"),
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn defaults_and_mangling() {
        let c = conf(
            "prefix = /tmp/k  # comment\n\
             pluginserver_names = Rust-Hello\n\
             pluginserver_rust_hello_query_cmd = ./rust-hello -dump\n\
             pluginserver_rust_hello_start_cmd = ./rust-hello \\# not a comment\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.prefix, Path::new("/tmp/k"));
        assert_eq!(c.proxy_listen, ["127.0.0.1:8000".parse().unwrap()]);
        let ps = &c.pluginservers[0];
        assert_eq!(ps.name, "rust-hello");
        assert_eq!(ps.socket, Path::new("/tmp/k/rust-hello.socket"));
        assert_eq!(ps.query_cmd.value, "./rust-hello -dump");
        assert_eq!(
            ps.start_cmd.as_ref().unwrap().value,
            "./rust-hello # not a comment"
        );
        assert_eq!(
            ps.query_cmd.place().to_string(),
            "kong.conf: pluginserver_rust_hello_query_cmd"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = conf(
            "proxy_listen = 0.0.0.0:9000\nplugins = bundled,rust-hello\n\
             pluginserver_names = rust-hello\npluginserver_rust_hello_query_cmd = x\n\
             declarative_config = kong.yml\n",
            &[
                ("KONG_PROXY_LISTEN", "127.0.0.1:9001, 127.0.0.1:9443 ssl"),
                ("KONG_PLUGINSERVER_RUST_HELLO_START_CMD", "/bin/rust-hello"),
                ("KONG_PLUGINSERVER_RUST_HELLO_SOCKET", "s/hello.sock"),
                ("PATH", "/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.proxy_listen, ["127.0.0.1:9001".parse().unwrap()]);
        assert!(c.warnings[0].contains("TLS listeners are not supported"));
        assert_eq!(c.plugins, ["rust-hello"]);
        let ps = &c.pluginservers[0];
        assert_eq!(ps.start_cmd.as_ref().unwrap().value, "/bin/rust-hello");
        assert_eq!(ps.socket, Path::new("/home/me/s/hello.sock"));
        assert_eq!(
            ps.start_cmd.as_ref().unwrap().place().to_string(),
            "KONG_PLUGINSERVER_RUST_HELLO_START_CMD (environment)"
        );
        assert_eq!(
            c.declarative_config.unwrap(),
            Path::new("/etc/kong/kong.yml")
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let e = conf("pluginserver_names = nowhere-to-be-found\n", &[]).unwrap_err();
        assert!(
            e.message().starts_with(
                "kong.conf: pluginserver_nowhere_to_be_found_query_cmd: query_command undefined for pluginserver nowhere-to-be-found"
            ),
            "{e}"
        );
        let e = conf("proxy_listen = nonsense\n", &[]).unwrap_err();
        assert_eq!(
            e.message(),
            "kong.conf: proxy_listen: invalid address \"nonsense\" (expected host:port)"
        );
        let e = conf("just words\n", &[]).unwrap_err();
        assert!(
            e.message()
                .starts_with("kong.conf:1: expected `key = value`")
        );
    }

    #[test]
    fn misspelled_server_settings_warn() {
        let c = conf(
            "pluginserver_names = a\npluginserver_a_query_cmd = x\npluginserver_b_start_cmd = y\n",
            &[],
        )
        .unwrap();
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("kong.conf: pluginserver_b_start_cmd: ignored")),
            "{:?}",
            c.warnings
        );
    }
}
