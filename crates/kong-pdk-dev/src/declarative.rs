//! Kong's declarative configuration (`kong.yml`): services, routes,
//! consumers and plugins, nested or at the top level.
//!
//! ```yaml
//! _format_version: "3.0"
//! services:
//!   - name: echo
//!     url: http://127.0.0.1:18000
//!     routes:
//!       - name: hello
//!         paths: [/hello]
//!         plugins:
//!           - name: rust-hello
//!             config: { message: hi }
//! plugins:                     # global (or with route:/service:/consumer:)
//!   - name: rust-log
//!     config: { path: /tmp/kong-requests.log }
//! consumers:
//!   - username: ann
//! ```
//!
//! Entities without an `id` get a stable one derived from their position
//! and name. Fields Kong knows but the gateway does not use are accepted
//! (with a warning when they would change behaviour); unknown fields are
//! errors, as in Kong.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Timestamp given to every entity (`created_at`/`updated_at`).
pub const CREATED_AT: i64 = 1_767_225_600;

/// A service: where matching requests are proxied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// `http`.
    pub protocol: String,
    /// The upstream host.
    pub host: String,
    /// The upstream port.
    pub port: u16,
    /// The upstream path prefix, if any.
    pub path: Option<String>,
    /// Retries (reported to plugins only).
    pub retries: i32,
    /// Connect timeout, ms.
    pub connect_timeout: u64,
    /// Write timeout, ms.
    pub write_timeout: u64,
    /// Read timeout, ms.
    pub read_timeout: u64,
    /// Tags.
    pub tags: Vec<String>,
}

/// A route: which requests go to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The index of its service in [`Declarative::services`].
    pub service: Option<usize>,
    /// Protocols (`http`, `https`).
    pub protocols: Vec<String>,
    /// Methods, upper case.
    pub methods: Vec<String>,
    /// Hosts (may start or end with a `*` wildcard).
    pub hosts: Vec<String>,
    /// Path prefixes.
    pub paths: Vec<String>,
    /// Whether the matched prefix is removed from the upstream path.
    pub strip_path: bool,
    /// Whether the client's `Host` goes upstream.
    pub preserve_host: bool,
    /// Kong's `regex_priority` (reported to plugins only).
    pub regex_priority: i32,
    /// Kong's `https_redirect_status_code` (reported to plugins only).
    pub https_redirect_status_code: i32,
    /// Tags.
    pub tags: Vec<String>,
}

/// A consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The id.
    pub id: String,
    /// The username.
    pub username: String,
    /// The custom id.
    pub custom_id: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// A plugin entity: a plugin name, its config and its scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    /// The id.
    pub id: String,
    /// The plugin name (as in the `-dump`).
    pub name: String,
    /// The config as written (validated later against the plugin's schema).
    pub config: Value,
    /// `instance_name`.
    pub instance_name: Option<String>,
    /// The route it is scoped to.
    pub route: Option<String>,
    /// The service it is scoped to.
    pub service: Option<String>,
    /// The consumer it is scoped to.
    pub consumer: Option<String>,
    /// Protocols it runs for.
    pub protocols: Vec<String>,
    /// Where it is written, for messages: `kong.yml: services[0].plugins[1]`.
    pub place: String,
}

/// A whole declarative configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Declarative {
    /// Services.
    pub services: Vec<Service>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Consumers.
    pub consumers: Vec<Consumer>,
    /// Enabled plugins.
    pub plugins: Vec<Plugin>,
    /// Non-fatal findings.
    pub warnings: Vec<String>,
}

/// Top-level keys Kong knows that the gateway ignores.
const IGNORED_TOP: &[&str] = &[
    "_transform",
    "_workspace",
    "_comment",
    "_info",
    "upstreams",
    "targets",
    "certificates",
    "ca_certificates",
    "snis",
    "vaults",
    "key_sets",
    "keys",
    "consumer_groups",
    "keyauth_credentials",
    "basicauth_credentials",
    "hmacauth_credentials",
    "jwt_secrets",
    "oauth2_credentials",
    "acls",
    "mtls_auth_credentials",
    "filter_chains",
];

const SERVICE_FIELDS: &[&str] = &[
    "id",
    "name",
    "url",
    "protocol",
    "host",
    "port",
    "path",
    "retries",
    "connect_timeout",
    "write_timeout",
    "read_timeout",
    "tags",
    "routes",
    "plugins",
    "enabled",
    "client_certificate",
    "tls_verify",
    "tls_verify_depth",
    "ca_certificates",
    "created_at",
    "updated_at",
];

const ROUTE_FIELDS: &[&str] = &[
    "id",
    "name",
    "service",
    "protocols",
    "methods",
    "hosts",
    "paths",
    "headers",
    "strip_path",
    "preserve_host",
    "regex_priority",
    "https_redirect_status_code",
    "path_handling",
    "request_buffering",
    "response_buffering",
    "snis",
    "sources",
    "destinations",
    "tags",
    "plugins",
    "created_at",
    "updated_at",
];

const CONSUMER_FIELDS: &[&str] = &[
    "id",
    "username",
    "custom_id",
    "tags",
    "plugins",
    "created_at",
    "updated_at",
    "keyauth_credentials",
    "basicauth_credentials",
    "hmacauth_credentials",
    "jwt_secrets",
    "oauth2_credentials",
    "acls",
    "groups",
];

const PLUGIN_FIELDS: &[&str] = &[
    "id",
    "name",
    "config",
    "enabled",
    "instance_name",
    "route",
    "service",
    "consumer",
    "consumer_group",
    "protocols",
    "tags",
    "ordering",
    "created_at",
    "updated_at",
];

/// A stable UUID-shaped id derived from `seed` (FNV-1a, 128 bits).
pub fn stable_id(seed: &str) -> String {
    let hash = |basis: u64| {
        seed.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let hi = hash(0xcbf2_9ce4_8422_2325);
    let lo = hash(0x8422_2325_cbf2_9ce4 ^ hi);
    // Version 4 / RFC 4122 variant bits, so it looks like any other UUID.
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Collects errors while walking the document.
struct Walker {
    file: String,
    errors: Vec<Error>,
    warnings: Vec<String>,
}

impl Walker {
    fn error(&mut self, path: &str, message: impl std::fmt::Display) {
        self.errors
            .push(Error::at(format!("{}: {path}", self.file), message));
    }

    fn warn(&mut self, path: &str, message: impl std::fmt::Display) {
        self.warnings
            .push(format!("{}: {path}: {message}", self.file));
    }

    fn object<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                self.error(path, "expected a record");
                None
            }
        }
    }

    fn check_fields(&mut self, path: &str, m: &Map<String, Value>, known: &[&str]) {
        for key in m.keys() {
            if !known.contains(&key.as_str()) {
                self.error(&format!("{path}.{key}"), "unknown field");
            }
        }
    }

    fn string(&mut self, path: &str, m: &Map<String, Value>, key: &str) -> Option<String> {
        match m.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.error(&format!("{path}.{key}"), "expected a string");
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, m: &Map<String, Value>, key: &str, default: bool) -> bool {
        match m.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.error(&format!("{path}.{key}"), "expected a boolean");
                default
            }
        }
    }

    fn integer(
        &mut self,
        path: &str,
        m: &Map<String, Value>,
        key: &str,
        default: i64,
        (min, max): (i64, i64),
    ) -> i64 {
        match m.get(key) {
            None | Some(Value::Null) => default,
            Some(v) => match v.as_i64() {
                Some(n) if (min..=max).contains(&n) => n,
                Some(_) => {
                    self.error(
                        &format!("{path}.{key}"),
                        format!("value should be between {min} and {max}"),
                    );
                    default
                }
                None => {
                    self.error(&format!("{path}.{key}"), "expected an integer");
                    default
                }
            },
        }
    }

    fn strings(&mut self, path: &str, m: &Map<String, Value>, key: &str) -> Vec<String> {
        match m.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        _ => self.error(&format!("{path}.{key}[{i}]"), "expected a string"),
                    }
                }
                out
            }
            Some(_) => {
                self.error(&format!("{path}.{key}"), "expected an array");
                Vec::new()
            }
        }
    }

    fn list<'v>(&mut self, path: &str, m: &'v Map<String, Value>, key: &str) -> &'v [Value] {
        match m.get(key) {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.error(&format!("{path}.{key}"), "expected an array");
                &[]
            }
        }
    }

    /// The `id` field, or a stable one from `seed`.
    fn id(&mut self, path: &str, m: &Map<String, Value>, seed: &str) -> String {
        match self.string(path, m, "id") {
            Some(id) if is_uuid(&id) => id.to_ascii_lowercase(),
            Some(_) => {
                self.error(&format!("{path}.id"), "expected a valid UUID");
                stable_id(seed)
            }
            None => stable_id(seed),
        }
    }

    /// A foreign key: a name/id string or `{id: …}`/`{name: …}`.
    fn reference(&mut self, path: &str, m: &Map<String, Value>, key: &str) -> Option<String> {
        match m.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => {
                let r = ["id", "name", "username"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))
                    .map(str::to_owned);
                if r.is_none() {
                    self.error(&format!("{path}.{key}"), "expected an id or a name");
                }
                r
            }
            Some(_) => {
                self.error(&format!("{path}.{key}"), "expected an id or a name");
                None
            }
        }
    }
}

/// Parses the text of a `kong.yml` (YAML or JSON) named `file`.
pub fn parse(text: &str, file: &str) -> Result<Declarative> {
    let doc: Value = serde_norway::from_str(text)
        .map_err(|e| Error::at(file, format!("not valid YAML: {e}")))?;
    from_value(&doc, file)
}

/// Reads and parses a `kong.yml` file.
pub fn load(path: &std::path::Path) -> Result<Declarative> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::at(path.display(), format!("cannot read: {e}")))?;
    parse(&text, &path.display().to_string())
}

/// Builds a [`Declarative`] from a parsed document.
pub fn from_value(doc: &Value, file: &str) -> Result<Declarative> {
    let mut w = Walker {
        file: file.to_owned(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let Some(root) = doc.as_object() else {
        return Err(Error::at(file, "expected a record at the top level"));
    };
    let mut out = Declarative::default();
    match root.get("_format_version") {
        Some(Value::String(v)) if matches!(v.as_str(), "1.1" | "2.1" | "3.0") => {}
        Some(Value::String(v)) => w.error(
            "_format_version",
            format!("unsupported version {v:?} (expected \"3.0\", \"2.1\" or \"1.1\")"),
        ),
        Some(Value::Number(_)) => w.error(
            "_format_version",
            "expected a string (quote it: _format_version: \"3.0\")",
        ),
        _ => w.error(
            "_format_version",
            "required field missing (add _format_version: \"3.0\")",
        ),
    }
    for (key, value) in root {
        if matches!(
            key.as_str(),
            "_format_version" | "services" | "routes" | "plugins" | "consumers"
        ) {
            continue;
        }
        if IGNORED_TOP.contains(&key.as_str()) {
            let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
            if !empty && !key.starts_with('_') {
                w.warn(key, "ignored: kong-pdk-dev does not use this entity");
            }
            continue;
        }
        w.error(key, "unknown field");
    }

    // Plugins with the scope they are nested in.
    let mut plugin_values: Vec<(String, &Value, Scope)> = Vec::new();

    for (i, sv) in w.list("", root, "services").iter().enumerate() {
        let path = format!("services[{i}]");
        let Some(m) = w.object(&path, sv) else {
            continue;
        };
        w.check_fields(&path, m, SERVICE_FIELDS);
        let Some(service) = service(&mut w, &path, m, i) else {
            continue;
        };
        let s_index = out.services.len();
        let service_id = service.id.clone();
        out.services.push(service);
        for (j, rv) in w.list(&path, m, "routes").iter().enumerate() {
            let rpath = format!("{path}.routes[{j}]");
            let Some(rm) = w.object(&rpath, rv) else {
                continue;
            };
            w.check_fields(&rpath, rm, ROUTE_FIELDS);
            if rm.contains_key("service") {
                w.error(
                    &format!("{rpath}.service"),
                    "a nested route belongs to its service; remove this field",
                );
            }
            let route = route(&mut w, &rpath, rm, Some(s_index));
            for (k, pv) in w.list(&rpath, rm, "plugins").iter().enumerate() {
                plugin_values.push((
                    format!("{rpath}.plugins[{k}]"),
                    pv,
                    Scope {
                        route: Some(route.id.clone()),
                        ..Scope::default()
                    },
                ));
            }
            out.routes.push(route);
        }
        for (k, pv) in w.list(&path, m, "plugins").iter().enumerate() {
            plugin_values.push((
                format!("{path}.plugins[{k}]"),
                pv,
                Scope {
                    service: Some(service_id.clone()),
                    ..Scope::default()
                },
            ));
        }
    }

    for (i, rv) in w.list("", root, "routes").iter().enumerate() {
        let path = format!("routes[{i}]");
        let Some(m) = w.object(&path, rv) else {
            continue;
        };
        w.check_fields(&path, m, ROUTE_FIELDS);
        let service = match w.reference(&path, m, "service") {
            Some(r) => {
                let found = out
                    .services
                    .iter()
                    .position(|s| s.id == r.to_ascii_lowercase() || s.name == r);
                if found.is_none() {
                    w.error(
                        &format!("{path}.service"),
                        format!("no service named or with id {r:?}"),
                    );
                }
                found
            }
            None => None,
        };
        let route = route(&mut w, &path, m, service);
        for (k, pv) in w.list(&path, m, "plugins").iter().enumerate() {
            plugin_values.push((
                format!("{path}.plugins[{k}]"),
                pv,
                Scope {
                    route: Some(route.id.clone()),
                    ..Scope::default()
                },
            ));
        }
        out.routes.push(route);
    }

    for (i, cv) in w.list("", root, "consumers").iter().enumerate() {
        let path = format!("consumers[{i}]");
        let Some(m) = w.object(&path, cv) else {
            continue;
        };
        w.check_fields(&path, m, CONSUMER_FIELDS);
        let username = w.string(&path, m, "username").unwrap_or_default();
        let custom_id = w.string(&path, m, "custom_id").unwrap_or_default();
        if username.is_empty() && custom_id.is_empty() {
            w.error(
                &path,
                "at least one of these fields must be non-empty: 'custom_id', 'username'",
            );
        }
        let id = w.id(&path, m, &format!("consumer:{username}:{custom_id}:{i}"));
        for (k, pv) in w.list(&path, m, "plugins").iter().enumerate() {
            plugin_values.push((
                format!("{path}.plugins[{k}]"),
                pv,
                Scope {
                    consumer: Some(id.clone()),
                    ..Scope::default()
                },
            ));
        }
        let tags = w.strings(&path, m, "tags");
        out.consumers.push(Consumer {
            id,
            username,
            custom_id,
            tags,
        });
    }

    for (i, pv) in w.list("", root, "plugins").iter().enumerate() {
        plugin_values.push((format!("plugins[{i}]"), pv, Scope::default()));
    }

    for (path, pv, scope) in plugin_values {
        if let Some(p) = plugin(&mut w, &path, pv, scope, &out) {
            out.plugins.push(p);
        }
    }

    unique(
        &mut w,
        "services",
        out.services.iter().map(|s| (&s.name, &s.id)),
    );
    unique(
        &mut w,
        "routes",
        out.routes.iter().map(|r| (&r.name, &r.id)),
    );
    unique(
        &mut w,
        "consumers",
        out.consumers.iter().map(|c| (&c.username, &c.id)),
    );
    let mut scopes = BTreeSet::new();
    for p in &out.plugins {
        let key = (&p.name, &p.route, &p.service, &p.consumer, &p.instance_name);
        if !scopes.insert(key) {
            w.errors.push(Error::at(
                &p.place,
                format!(
                    "plugin {:?} is configured twice for the same route/service/consumer (Kong allows one per scope)",
                    p.name
                ),
            ));
        }
    }

    if w.errors.is_empty() {
        out.warnings = w.warnings;
        Ok(out)
    } else {
        Err(Error::many(w.errors))
    }
}

fn unique<'a>(w: &mut Walker, kind: &str, items: impl Iterator<Item = (&'a String, &'a String)>) {
    let mut names = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for (name, id) in items {
        if !name.is_empty() && names.insert(name.clone(), ()).is_some() {
            w.error(
                kind,
                format!(
                    "uniqueness violation: '{kind}' entity with name {name:?} already declared"
                ),
            );
        }
        if !ids.insert(id.clone()) {
            w.error(
                kind,
                format!("uniqueness violation: '{kind}' entity with id {id:?} already declared"),
            );
        }
    }
}

#[derive(Debug, Default)]
struct Scope {
    route: Option<String>,
    service: Option<String>,
    consumer: Option<String>,
}

fn service(w: &mut Walker, path: &str, m: &Map<String, Value>, i: usize) -> Option<Service> {
    let name = w.string(path, m, "name").unwrap_or_default();
    let id = w.id(path, m, &format!("service:{name}:{i}"));
    let (mut protocol, mut host, mut port, mut spath) = ("http".to_owned(), None, None, None);
    if let Some(url) = w.string(path, m, "url") {
        for key in ["protocol", "host", "port", "path"] {
            if m.contains_key(key) {
                w.error(&format!("{path}.{key}"), "cannot be set together with url");
            }
        }
        match parse_url(&url) {
            Ok((p, h, po, pa)) => {
                protocol = p;
                host = Some(h);
                port = Some(po);
                spath = pa;
            }
            Err(e) => w.error(&format!("{path}.url"), e),
        }
    } else {
        if let Some(p) = w.string(path, m, "protocol") {
            protocol = p;
        }
        host = w.string(path, m, "host");
        if m.contains_key("port") {
            port = Some(w.integer(path, m, "port", 80, (0, 65535)) as u16);
        }
        spath = w.string(path, m, "path");
        if host.is_none() {
            w.error(
                &format!("{path}.host"),
                "required field missing (or set url)",
            );
        }
    }
    match protocol.as_str() {
        "http" => {}
        "https" => w.error(
            &format!("{path}.protocol"),
            "https upstreams are not supported by kong-pdk-dev (it has no TLS client); use http",
        ),
        other => w.error(
            &format!("{path}.protocol"),
            format!("protocol {other:?} is not supported by kong-pdk-dev (use http)"),
        ),
    }
    if let Some(p) = &spath {
        if !p.starts_with('/') {
            w.error(&format!("{path}.path"), "should start with: /");
        }
    }
    if m.get("enabled") == Some(&Value::Bool(false)) {
        w.warn(
            &format!("{path}.enabled"),
            "ignored: the service is served anyway",
        );
    }
    let timeout =
        |w: &mut Walker, key: &str| w.integer(path, m, key, 60000, (1, 2_147_483_646)) as u64;
    let connect_timeout = timeout(w, "connect_timeout");
    let write_timeout = timeout(w, "write_timeout");
    let read_timeout = timeout(w, "read_timeout");
    Some(Service {
        id,
        name,
        protocol,
        host: host?,
        port: port.unwrap_or(80),
        path: spath,
        retries: w.integer(path, m, "retries", 5, (0, 32767)) as i32,
        connect_timeout,
        write_timeout,
        read_timeout,
        tags: w.strings(path, m, "tags"),
    })
}

/// `(scheme, host, port, path)` of a service URL.
fn parse_url(url: &str) -> Result<(String, String, u16, Option<String>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("invalid url {url:?} (expected http://host[:port][/path])"))?;
    let scheme = scheme.to_ascii_lowercase();
    let split = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("invalid port {p:?} in url {url:?}"))?;
            (h.to_owned(), Some(port))
        }
        _ => (authority.to_owned(), None),
    };
    if host.is_empty() {
        return Err(format!("missing host in url {url:?}"));
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let path = (!path.is_empty()).then(|| path.to_owned());
    Ok((scheme, host, port.unwrap_or(default_port), path))
}

fn route(w: &mut Walker, path: &str, m: &Map<String, Value>, service: Option<usize>) -> Route {
    let name = w.string(path, m, "name").unwrap_or_default();
    let id = w.id(path, m, &format!("route:{name}:{path}"));
    let mut protocols = w.strings(path, m, "protocols");
    if protocols.is_empty() {
        protocols = vec!["http".into(), "https".into()];
    }
    let methods = w.strings(path, m, "methods");
    for (i, method) in methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            w.error(
                &format!("{path}.methods[{i}]"),
                "invalid value: must be upper case letters",
            );
        }
    }
    let hosts = w.strings(path, m, "hosts");
    for (i, host) in hosts.iter().enumerate() {
        let wildcards = host.matches('*').count();
        if wildcards > 1 || (wildcards == 1 && !host.starts_with("*.") && !host.ends_with(".*")) {
            w.error(
                &format!("{path}.hosts[{i}]"),
                "invalid wildcard: must be placed at leftmost or rightmost label",
            );
        }
    }
    let paths = w.strings(path, m, "paths");
    for (i, p) in paths.iter().enumerate() {
        if p.starts_with("~/") {
            w.error(
                &format!("{path}.paths[{i}]"),
                "regex paths are not supported by kong-pdk-dev (use a plain prefix)",
            );
        } else if !p.starts_with('/') {
            w.error(
                &format!("{path}.paths[{i}]"),
                "should start with: / (fixed path) or ~/ (regex path)",
            );
        }
    }
    if ["headers", "snis", "sources", "destinations"]
        .iter()
        .any(|k| m.get(*k).is_some_and(|v| !v.is_null()))
    {
        w.warn(
            path,
            "headers/snis/sources/destinations are ignored when routing",
        );
    }
    if methods.is_empty() && hosts.is_empty() && paths.is_empty() && !m.contains_key("headers") {
        w.error(
            path,
            "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https' or 'http'",
        );
    }
    if service.is_none() {
        w.warn(
            path,
            "no service: requests matching it get 503 like in Kong",
        );
    }
    Route {
        id,
        name,
        service,
        protocols,
        methods,
        hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        paths,
        strip_path: w.boolean(path, m, "strip_path", true),
        preserve_host: w.boolean(path, m, "preserve_host", false),
        regex_priority: w.integer(
            path,
            m,
            "regex_priority",
            0,
            (i64::from(i32::MIN), i64::from(i32::MAX)),
        ) as i32,
        https_redirect_status_code: w.integer(
            path,
            m,
            "https_redirect_status_code",
            426,
            (300, 599),
        ) as i32,
        tags: w.strings(path, m, "tags"),
    }
}

fn plugin(
    w: &mut Walker,
    path: &str,
    v: &Value,
    scope: Scope,
    decl: &Declarative,
) -> Option<Plugin> {
    let m = w.object(path, v)?;
    w.check_fields(path, m, PLUGIN_FIELDS);
    let Some(name) = w.string(path, m, "name") else {
        w.error(&format!("{path}.name"), "required field missing");
        return None;
    };
    let place = format!("{}: {path} ({name})", w.file);
    let mut route = scope.route;
    let mut service = scope.service;
    let mut consumer = scope.consumer;
    if let Some(r) = w.reference(path, m, "route") {
        match decl
            .routes
            .iter()
            .find(|x| x.id == r.to_ascii_lowercase() || x.name == r)
        {
            Some(x) => route = Some(x.id.clone()),
            None => w.error(
                &format!("{path}.route"),
                format!("no route named or with id {r:?}"),
            ),
        }
    }
    if let Some(s) = w.reference(path, m, "service") {
        match decl
            .services
            .iter()
            .find(|x| x.id == s.to_ascii_lowercase() || x.name == s)
        {
            Some(x) => service = Some(x.id.clone()),
            None => w.error(
                &format!("{path}.service"),
                format!("no service named or with id {s:?}"),
            ),
        }
    }
    if let Some(c) = w.reference(path, m, "consumer") {
        match decl
            .consumers
            .iter()
            .find(|x| x.id == c.to_ascii_lowercase() || x.username == c || x.custom_id == c)
        {
            Some(x) => consumer = Some(x.id.clone()),
            None => w.error(
                &format!("{path}.consumer"),
                format!("no consumer named or with id {c:?}"),
            ),
        }
    }
    if m.contains_key("consumer_group") {
        w.warn(
            &format!("{path}.consumer_group"),
            "ignored: consumer groups are not supported",
        );
    }
    let id = w.id(path, m, &format!("plugin:{name}:{path}"));
    if !w.boolean(path, m, "enabled", true) {
        return None;
    }
    let mut protocols = w.strings(path, m, "protocols");
    if protocols.is_empty() {
        protocols = vec!["grpc", "grpcs", "http", "https"]
            .into_iter()
            .map(str::to_owned)
            .collect();
    }
    let config = m.get("config").cloned().unwrap_or(Value::Null);
    if !matches!(config, Value::Null | Value::Object(_)) {
        w.error(&format!("{path}.config"), "expected a record");
    }
    Some(Plugin {
        id,
        instance_name: w.string(path, m, "instance_name"),
        name,
        config,
        route,
        service,
        consumer,
        protocols,
        place,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YML: &str = r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://127.0.0.1:18000/base
    routes:
      - name: hello
        paths: [/hello]
        plugins:
          - name: rust-hello
            config: { message: hi }
    plugins:
      - name: rust-tenant-audit
routes:
  - name: top
    service: echo
    hosts: ["*.example.com"]
    methods: [GET]
    strip_path: false
consumers:
  - username: ann
plugins:
  - name: rust-log
    config: { path: /tmp/x.log }
  - name: rust-hello
    route: top
    consumer: ann
"#;

    #[test]
    fn nested_and_top_level_entities() {
        let d = parse(YML, "kong.yml").unwrap();
        assert_eq!(d.services.len(), 1);
        let s = &d.services[0];
        assert_eq!(
            (s.host.as_str(), s.port, s.path.as_deref()),
            ("127.0.0.1", 18000, Some("/base"))
        );
        assert_eq!(d.routes.len(), 2);
        assert_eq!(d.routes[0].service, Some(0));
        assert!(d.routes[0].strip_path);
        assert!(!d.routes[1].strip_path);
        assert_eq!(d.routes[1].hosts, ["*.example.com"]);
        assert_eq!(d.plugins.len(), 4);
        let hello = &d.plugins[0];
        assert_eq!(hello.route.as_deref(), Some(d.routes[0].id.as_str()));
        assert_eq!(hello.config["message"], "hi");
        assert_eq!(d.plugins[1].service.as_deref(), Some(s.id.as_str()));
        let global = &d.plugins[2];
        assert!(global.route.is_none() && global.service.is_none());
        assert_eq!(
            d.plugins[3].consumer.as_deref(),
            Some(d.consumers[0].id.as_str())
        );
        assert_eq!(
            hello.place,
            "kong.yml: services[0].routes[0].plugins[0] (rust-hello)"
        );
        // Stable ids.
        assert_eq!(parse(YML, "kong.yml").unwrap(), d);
        assert!(is_uuid(&s.id));
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(
            "_format_version: \"3.0\"\nservices:\n  - name: a\n    url: http://x\n    routes:\n      - paths: [nope]\n        color: red\n",
            "kong.yml",
        )
        .unwrap_err();
        let msg = e.message();
        assert!(
            msg.contains("kong.yml: services[0].routes[0].paths[0]: should start with: /"),
            "{msg}"
        );
        assert!(
            msg.contains("kong.yml: services[0].routes[0].color: unknown field"),
            "{msg}"
        );
        let e = parse("services: []\n", "kong.yml").unwrap_err();
        assert!(
            e.message()
                .contains("_format_version: required field missing")
        );
        let e = parse(
            "_format_version: \"3.0\"\nplugins:\n  - name: p\n    route: ghost\n",
            "k.yml",
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "k.yml: plugins[0].route: no route named or with id \"ghost\""
        );
        let e = parse("{{{", "k.yml").unwrap_err();
        assert!(e.message().starts_with("k.yml: not valid YAML"));
    }

    #[test]
    fn disabled_plugins_are_dropped_and_duplicates_refused() {
        let d = parse(
            "_format_version: \"3.0\"\nplugins:\n  - name: p\n    enabled: false\n  - name: p\n",
            "k.yml",
        )
        .unwrap();
        assert_eq!(d.plugins.len(), 1);
        let e = parse(
            "_format_version: \"3.0\"\nplugins:\n  - name: p\n  - name: p\n",
            "k.yml",
        )
        .unwrap_err();
        assert!(e.message().contains("configured twice"), "{e}");
    }
}
