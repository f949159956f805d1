//! Running a plugin server's `query_cmd` and validating its `-dump` output the
//! way Kong does when it loads an external plugin.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use kong_pdk::Phase;
use serde_json::Value;

/// The protocols the gateway speaks, as `-dump` names them.
pub const PROTOCOLS: [&str; 2] = ["ProtoBuf:1", "MsgPack:1"];

/// What Kong learns from a `-dump`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// The plugin's name (what `plugins` and `kong.yml` refer to).
    pub name: String,
    /// Kong runs plugins from the highest priority to the lowest.
    pub priority: i64,
    /// `x.y.z`.
    pub version: String,
    /// The phases Kong calls.
    pub phases: Vec<Phase>,
    /// The plugin subschema.
    pub schema: Value,
    /// The protocol Kong speaks with it (`Protocol`; Kong's default when
    /// absent is MsgPack:1).
    pub protocol: kong_pdk::Protocol,
    /// Findings that do not stop Kong.
    pub warnings: Vec<String>,
}

impl PluginInfo {
    /// Whether the plugin handles `phase`.
    pub fn has(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }
}

/// The output of a command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Its exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `cmd` through `sh -c` in `dir`, like Kong's `io.popen`, with a
/// timeout.
pub async fn run_shell(cmd: &str, dir: &Path, timeout: Duration) -> Result<Output, String> {
    let start = std::time::Instant::now();
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("`{cmd}` did not finish within {} s", timeout.as_secs()))?
        .map_err(|e| format!("`{cmd}`: {e}"))?;
    Ok(Output {
        stdout: out.stdout,
        stderr: out.stderr,
        code: out.status.code(),
        elapsed: start.elapsed(),
    })
}

/// Runs a query command and validates its output.
pub async fn query(cmd: &str, dir: &Path) -> Result<PluginInfo, Vec<String>> {
    let out = run_shell(cmd, dir, Duration::from_secs(30))
        .await
        .map_err(|e| vec![e])?;
    match validate(&out.stdout) {
        Ok(mut info) => {
            if out.code != Some(0) {
                info.warnings.push(format!(
                    "`{cmd}` exited with {} (Kong only reads its output)",
                    describe_code(out.code)
                ));
            }
            Ok(info)
        }
        Err(mut errors) => {
            if out.code != Some(0) {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let reason = match out.code {
                    Some(127) => "\"command not found\"".to_owned(),
                    c => describe_code(c),
                };
                errors.insert(
                    0,
                    format!(
                        "`{cmd}` exited with {reason}{}",
                        if stderr.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", stderr.trim())
                        }
                    ),
                );
            }
            Err(errors)
        }
    }
}

fn describe_code(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("code {c}"),
        None => "a signal".to_owned(),
    }
}

/// Validates `-dump` output like Kong: one JSON document; `Protocol`
/// `ProtoBuf:1`; the first of `Plugins` (Kong ≥ 3.9 uses only that one)
/// with a `Name`, an integer `Priority`, an `x.y.z` `Version`, `Phases` ⊆
/// {certificate, rewrite, access, response, preread, log}, and a `Schema`
/// that passes Kong's metaschema ([`kong_pdk::schema::check_plugin_schema`]).
pub fn validate(stdout: &[u8]) -> Result<PluginInfo, Vec<String>> {
    let text = String::from_utf8_lossy(stdout);
    let dump: Value = serde_json::from_str(&text).map_err(|e| {
        let shown: String = text.trim().chars().take(200).collect();
        vec![format!(
            "failed decoding plugin info: {e} (the output must be exactly one JSON document; got {shown:?})"
        )]
    })?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let protocol = dump
        .get("Protocol")
        .and_then(Value::as_str)
        .unwrap_or("MsgPack:1");
    let protocol = match protocol {
        "ProtoBuf:1" => kong_pdk::Protocol::ProtoBuf,
        "MsgPack:1" => kong_pdk::Protocol::MsgPack,
        other => {
            errors.push(format!(
                "Protocol is {other:?}: Kong speaks {} and {}",
                PROTOCOLS[0], PROTOCOLS[1]
            ));
            kong_pdk::Protocol::ProtoBuf
        }
    };
    let plugins = match dump.get("Plugins") {
        Some(Value::Array(p)) => p.clone(),
        Some(_) => return Err(vec!["Plugins: expected an array".into()]),
        None => match &dump {
            Value::Array(p) => p.clone(),
            _ => return Err(vec!["not a plugin info table: no Plugins array".into()]),
        },
    };
    let Some(plugin) = plugins.first() else {
        return Err(vec!["Plugins: empty (one plugin expected)".into()]);
    };
    if plugins.len() > 1 {
        warnings.push(format!(
            "Plugins has {} entries; Kong (≥ 3.9) loads only the first",
            plugins.len()
        ));
    }
    let name = match plugin.get("Name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        _ => {
            errors.push("Plugins[0].Name: expected a non-empty string".into());
            String::new()
        }
    };
    let priority = match plugin.get("Priority") {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => {
                errors.push(format!(
                    "Plugin {name:?} cannot be loaded because its PRIORITY field is not a valid integer number, got: {n}"
                ));
                0
            }
        },
        other => {
            errors.push(format!(
                "Plugin {name:?} cannot be loaded because its PRIORITY field is not a valid integer number, got: {}",
                other.map_or("nothing".to_owned(), Value::to_string)
            ));
            0
        }
    };
    let version = match plugin.get("Version") {
        Some(Value::String(v)) if is_version(v) => v.clone(),
        other => {
            errors.push(format!(
                "Plugin {name:?} cannot be loaded because its VERSION field does not follow the \"x.y.z\" format, got: {}",
                other.map_or("nothing".to_owned(), Value::to_string)
            ));
            String::new()
        }
    };
    let mut phases = Vec::new();
    match plugin.get("Phases") {
        Some(Value::Array(list)) => {
            for p in list {
                match p.as_str().and_then(Phase::from_name) {
                    Some(phase) if !phases.contains(&phase) => phases.push(phase),
                    Some(_) => warnings.push(format!("Phases: {p} is listed twice")),
                    None => errors.push(format!(
                        "Phases: {p} is not a phase Kong runs external plugins in (certificate, rewrite, access, response, preread, log)"
                    )),
                }
            }
        }
        None | Some(Value::Null) => {
            warnings.push("Phases: none; Kong will never call the plugin".into())
        }
        Some(_) => errors.push("Phases: expected an array of phase names".into()),
    }
    let schema = plugin.get("Schema").cloned().unwrap_or(Value::Null);
    if schema.is_null() {
        errors.push("Schema: missing".into());
    } else {
        if let Err(schema_errors) = kong_pdk::schema::check_plugin_schema(&schema) {
            errors.extend(schema_errors.into_iter().map(|e| format!("Schema: {e}")));
        }
        if let Some(schema_name) = schema.get("name").and_then(Value::as_str) {
            if schema_name != name {
                warnings.push(format!(
                    "Schema.name is {schema_name:?} but the plugin is named {name:?}"
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PluginInfo {
        name,
        priority,
        version,
        phases,
        schema,
        protocol,
        warnings,
    })
}

/// Kong's check: `x`, `x.y` or `x.y.z` with numeric parts (a pre-release
/// or build suffix on the last part is allowed).
fn is_version(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dump(plugin: Value) -> Vec<u8> {
        json!({"Protocol": "ProtoBuf:1", "SocketPath": "/x", "Plugins": [plugin]})
            .to_string()
            .into_bytes()
    }

    fn schema() -> Value {
        json!({"name": "p", "fields": [{"config": {"type": "record", "fields": []}}]})
    }

    #[test]
    fn a_good_dump_validates() {
        let info = validate(&dump(json!({
            "Name": "p", "Priority": 10, "Version": "1.2.3",
            "Phases": ["access", "log"], "Schema": schema()
        })))
        .unwrap();
        assert_eq!(info.name, "p");
        assert_eq!(info.priority, 10);
        assert_eq!(info.phases, [Phase::Access, Phase::Log]);
    }

    #[test]
    fn bad_dumps_are_refused_with_kongs_words() {
        let e = validate(b"starting...\n{}").unwrap_err();
        assert!(e[0].starts_with("failed decoding plugin info"), "{e:?}");
        let e = validate(&dump(json!({
            "Name": "p", "Priority": 1.5, "Version": "one", "Phases": ["header_filter"], "Schema": schema()
        })))
        .unwrap_err();
        assert!(
            e.iter()
                .any(|m| m.contains("PRIORITY field is not a valid integer")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("\"x.y.z\" format")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("header_filter")), "{e:?}");
        let e = validate(&dump(json!({
            "Name": "p", "Priority": 1, "Version": "1.0.0", "Phases": [],
            "Schema": {"name": "p", "fields": [{"config": {"type": "strung"}}]}
        })))
        .unwrap_err();
        assert!(e.iter().all(|m| m.starts_with("Schema: ")), "{e:?}");
        let e = validate(br#"{"Protocol":"MsgPack:1","Plugins":[]}"#).unwrap_err();
        assert!(e[0].contains("Plugins: empty"), "{e:?}");
    }

    #[test]
    fn versions() {
        for ok in ["1", "1.2", "1.2.3", "0.1.0-beta.1"] {
            assert!(is_version(ok), "{ok}");
        }
        for bad in ["", "1.2.3.4", "v1", "1..2"] {
            assert!(!is_version(bad), "{bad}");
        }
    }
}
