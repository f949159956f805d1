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

/// Kong's own keys in the config it sends to a plugin server
/// (kong-side-contract §8): the plugin entity's id, workspace, scope and
/// `__seq__`. [`KongKeys::add_to`] puts them into a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KongKeys {
    /// `__seq__`: the plugins iterator's version; go-pdk and kong-pdk use it
    /// as the instance id.
    pub seq: i64,
    /// `__plugin_id`: the plugin entity's id.
    pub plugin_id: String,
    /// `__ws_id`: the workspace id.
    pub workspace_id: String,
    /// `route_id` of a route-scoped plugin.
    pub route_id: Option<String>,
    /// `service_id` of a service-scoped plugin.
    pub service_id: Option<String>,
    /// `consumer_id` of a consumer-scoped plugin.
    pub consumer_id: Option<String>,
    /// `plugin_instance_name`, when the entity has one.
    pub instance_name: Option<String>,
}

/// The id Kong gives the plugin entity in the config Kong-shaped by
/// [`kong_config`].
pub const PLUGIN_ID: &str = "9d2f4c1e-6b3a-4d8f-a0e7-2c5b8e1f4a06";
/// The workspace id in Kong-shaped configs.
pub const WORKSPACE_ID: &str = "a7c3c4b2-9e1d-4f0a-8b6c-5d4e3f2a1b04";

impl KongKeys {
    /// The keys of a global plugin with `__seq__` = `seq`.
    pub fn global(seq: i64) -> KongKeys {
        KongKeys {
            seq,
            plugin_id: PLUGIN_ID.into(),
            workspace_id: WORKSPACE_ID.into(),
            route_id: None,
            service_id: None,
            consumer_id: None,
            instance_name: None,
        }
    }

    /// `config` (a JSON object; anything else counts as empty) with Kong's
    /// keys added for plugin `name`. Like Kong, scope keys a global plugin
    /// does not have are left out rather than `null`.
    pub fn add_to(&self, name: &str, config: Json) -> Json {
        let mut object = match config {
            Json::Object(object) => object,
            _ => Map::new(),
        };
        for (key, value) in [
            ("route_id", &self.route_id),
            ("service_id", &self.service_id),
            ("consumer_id", &self.consumer_id),
            ("plugin_instance_name", &self.instance_name),
        ] {
            if let Some(value) = value {
                object.insert(key.into(), Json::String(value.clone()));
            }
        }
        object.insert("__plugin_id".into(), Json::String(self.plugin_id.clone()));
        object.insert("__ws_id".into(), Json::String(self.workspace_id.clone()));
        let key = format!(
            "plugins:{name}:{}:{}:{}::{}",
            self.route_id.as_deref().unwrap_or(""),
            self.service_id.as_deref().unwrap_or(""),
            self.consumer_id.as_deref().unwrap_or(""),
            self.workspace_id
        );
        object.insert("__key__".into(), Json::String(key));
        object.insert("__seq__".into(), Json::from(self.seq));
        Json::Object(object)
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
    // Kong's own validation: defaults, nulls for unset fields, every rule.
    let schema = kong_pdk::schema::plugin_schema::<P>(name);
    let completed = kong_pdk::schema::validate_config(&schema, &config)
        .map_err(|errors| HarnessError::Config(errors.join("; ")))?;
    Ok(keys.add_to(name, completed))
}
