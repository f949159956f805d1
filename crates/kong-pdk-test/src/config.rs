//! The plugin config the way Kong sends it in `cmd_start_instance`:
//! validated against the plugin's schema for unknown fields, defaults filled
//! in, unset fields `null`, and Kong's own keys added.

use kong_pdk::Plugin;
use serde_json::{Map, Value as Json};

use crate::error::HarnessError;

/// Where a plugin instance is configured: Kong runs `certificate` and
/// `rewrite` only for global plugins, and adds `route_id` / `service_id` /
/// `consumer_id` to the config of scoped ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// A global plugin (the default): every phase runs.
    #[default]
    Global,
    /// Configured on the request's route.
    Route,
    /// Configured on the request's service.
    Service,
    /// Configured on the request's consumer.
    Consumer,
}

/// Kong's extra config keys.
#[derive(Debug, Clone)]
pub(crate) struct KongKeys {
    pub(crate) seq: i64,
    pub(crate) plugin_id: String,
    pub(crate) workspace_id: String,
    pub(crate) route_id: Option<String>,
    pub(crate) service_id: Option<String>,
    pub(crate) consumer_id: Option<String>,
}

/// The id Kong gives the plugin entity in the config Kong-shaped by
/// [`kong_config`].
pub const PLUGIN_ID: &str = "9d2f4c1e-6b3a-4d8f-a0e7-2c5b8e1f4a06";
/// The workspace id in Kong-shaped configs.
pub const WORKSPACE_ID: &str = "a7c3c4b2-9e1d-4f0a-8b6c-5d4e3f2a1b04";

impl KongKeys {
    pub(crate) fn global(seq: i64) -> KongKeys {
        KongKeys {
            seq,
            plugin_id: PLUGIN_ID.into(),
            workspace_id: WORKSPACE_ID.into(),
            route_id: None,
            service_id: None,
            consumer_id: None,
        }
    }
}

/// `config` as Kong sends it to the plugin server for plugin `P` named
/// `name` (`__seq__` = 1, global): fields the schema does not know are an
/// error (Kong rejects them), missing fields get their schema default (in
/// nested records too) or `null`, and Kong's keys `__seq__`, `__plugin_id`,
/// `__key__`, `__ws_id`, `route_id`, `service_id`, `consumer_id`,
/// `plugin_instance_name` are added.
///
/// Useful to start instances of a plugin executable with the
/// [`driver`](crate::driver).
///
/// ```
/// use kong_pdk::{Plugin, Schema};
///
/// #[derive(serde::Deserialize, Schema)]
/// struct Config {
///     #[kong(default = "hello")]
///     message: String,
///     limit: Option<u32>,
/// }
///
/// #[kong_pdk::plugin]
/// impl Plugin for Config {
///     async fn access(&self, _kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
///         Ok(())
///     }
/// }
///
/// let json = kong_pdk_test::kong_config::<Config>("hello", serde_json::json!({})).unwrap();
/// assert_eq!(json["message"], "hello");
/// assert!(json["limit"].is_null());
/// assert_eq!(json["__seq__"], 1);
/// assert!(kong_pdk_test::kong_config::<Config>("hello", serde_json::json!({"typo": 1})).is_err());
/// ```
pub fn kong_config<P: Plugin>(name: &str, config: Json) -> Result<Json, HarnessError> {
    shape::<P>(name, config, &KongKeys::global(1))
}

pub(crate) fn shape<P: Plugin>(
    name: &str,
    config: Json,
    keys: &KongKeys,
) -> Result<Json, HarnessError> {
    let schema = kong_pdk::schema::plugin_schema::<P>(name);
    let def = &schema["fields"][0]["config"];
    let Json::Object(mut object) = fill_record(def, config, "")? else {
        unreachable!("fill_record returns an object");
    };
    let opt = |v: &Option<String>| v.clone().map_or(Json::Null, Json::String);
    object.insert("route_id".into(), opt(&keys.route_id));
    object.insert("service_id".into(), opt(&keys.service_id));
    object.insert("consumer_id".into(), opt(&keys.consumer_id));
    object.insert("plugin_instance_name".into(), Json::Null);
    object.insert("__plugin_id".into(), Json::String(keys.plugin_id.clone()));
    object.insert("__ws_id".into(), Json::String(keys.workspace_id.clone()));
    let key = format!(
        "plugins:{name}:{}:{}:{}::{}",
        keys.route_id.as_deref().unwrap_or(""),
        keys.service_id.as_deref().unwrap_or(""),
        keys.consumer_id.as_deref().unwrap_or(""),
        keys.workspace_id
    );
    object.insert("__key__".into(), Json::String(key));
    object.insert("__seq__".into(), Json::from(keys.seq));
    Ok(Json::Object(object))
}

fn fields(def: &Json) -> Vec<(&str, &Json)> {
    def["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_object)
        .flat_map(|f| f.iter().map(|(k, v)| (k.as_str(), v)))
        .collect()
}

fn fill_record(def: &Json, value: Json, path: &str) -> Result<Json, HarnessError> {
    let Json::Object(mut given) = value else {
        return Err(HarnessError::Config(format!(
            "{}: expected a record (a JSON object), got {value}",
            if path.is_empty() { "config" } else { path }
        )));
    };
    let mut out = Map::new();
    for (name, field) in fields(def) {
        let here = format!("{path}{name}");
        let v = match given.remove(name) {
            Some(Json::Null) => Json::Null,
            Some(v) => fill_value(field, v, &here)?,
            None => match field.get("default") {
                Some(default) => default.clone(),
                None if field["type"] == "record" && field["required"] == true => {
                    fill_record(field, Json::Object(Map::new()), &format!("{here}."))?
                }
                None => Json::Null,
            },
        };
        out.insert(name.to_owned(), v);
    }
    if let Some(unknown) = given.keys().next() {
        return Err(HarnessError::Config(format!(
            "{path}{unknown}: unknown field (Kong rejects fields the plugin's schema does not declare)"
        )));
    }
    Ok(Json::Object(out))
}

fn fill_value(field: &Json, value: Json, path: &str) -> Result<Json, HarnessError> {
    match field["type"].as_str() {
        Some("record") => fill_record(field, value, &format!("{path}.")),
        Some("array" | "set") if field["elements"]["type"] == "record" => match value {
            Json::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| fill_record(&field["elements"], v, &format!("{path}[{i}].")))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            other => Ok(other),
        },
        Some("map") if field["values"]["type"] == "record" => match value {
            Json::Object(map) => map
                .into_iter()
                .map(|(k, v)| {
                    let filled = fill_record(&field["values"], v, &format!("{path}.{k}."))?;
                    Ok((k, filled))
                })
                .collect::<Result<Map<_, _>, HarnessError>>()
                .map(Json::Object),
            other => Ok(other),
        },
        _ => Ok(value),
    }
}
