//! What every connection of one server shares: the plugin's identity, the
//! settings, the instances, and how Kong's config JSON becomes an instance.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kong_pdk_proto as pb;

use super::instances::{Instance, Instances};
use super::stats::{Counted, ServerStats};
use super::{Server, Settings};
use crate::plugin::Plugin;
use crate::schema::RESERVED_CONFIG_FIELDS;

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct Shared<P> {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) priority: i32,
    pub(super) schema: String,
    pub(super) loaded_at: i64,
    pub(super) settings: Settings,
    pub(super) instances: Instances<P>,
    pub(super) stats: ServerStats,
    /// MsgPack:1 events in flight, by `EventId`.
    pub(super) events: crate::msgpack::Events,
    /// Ends handlers that run past `settings.handler_timeout`.
    pub(super) watchdog: super::watchdog::Watchdog,
}

impl<P: Plugin> Shared<P> {
    pub(super) fn new(server: Server<P>) -> Self {
        Shared {
            schema: server.schema().to_string(),
            loaded_at: unix_now(),
            instances: Instances::new(
                server.settings.instance_idle_timeout,
                Arc::clone(&server.stats.0),
            ),
            stats: server.stats,
            watchdog: super::watchdog::Watchdog::start(server.settings.handler_timeout),
            name: server.name,
            version: server.version,
            priority: server.priority,
            settings: server.settings,
            events: crate::msgpack::Events::default(),
        }
    }

    pub(super) fn count_event(&self) -> Counted<'_> {
        Counted::new(&self.stats.0.events)
    }

    pub(super) fn count_connection(&self) -> Counted<'_> {
        Counted::new(&self.stats.0.connections)
    }

    pub(super) fn events_in_flight(&self) -> usize {
        self.stats.events_in_flight()
    }

    pub(super) fn plugin_info(&self) -> pb::PluginInfo {
        pb::PluginInfo {
            name: self.name.clone(),
            updated_at: self.loaded_at,
            loaded_at: self.loaded_at,
            phases: P::PHASES.iter().map(|p| p.as_str().to_owned()).collect(),
            version: self.version.clone(),
            priority: self.priority,
            schema: self.schema.clone(),
        }
    }

    pub(super) fn status(&self, instance: &Instance<P>) -> pb::InstanceStatus {
        pb::InstanceStatus {
            name: self.name.clone(),
            instance_id: instance.id,
            config: None,
            started_at: instance.started_at,
        }
    }

    /// Builds an instance from Kong's config JSON; `Err` (logged here) says
    /// why not. Over ProtoBuf:1 the connection is then closed, which fails
    /// the start on Kong's side; over MsgPack:1 the text is the error reply.
    pub(super) async fn start_instance(
        &self,
        name: &str,
        config: &[u8],
    ) -> Result<pb::InstanceStatus, String> {
        let failed = |why: String| {
            tracing::error!("{why}");
            why
        };
        if name != self.name {
            return Err(failed(format!(
                "cannot start an instance of plugin {name:?}: this server runs {:?}",
                self.name
            )));
        }
        let (seq, mut plugin) = self
            .decode_config(config)
            .map_err(|e| failed(format!("cannot start an instance of {name}: {e}")))?;
        if let Err(e) = plugin.init().await {
            return Err(failed(format!(
                "cannot start an instance of {name}: init failed: {e}"
            )));
        }
        let instance = self.instances.insert(seq, plugin);
        tracing::info!("started instance {} of {name}", instance.id);
        Ok(self.status(&instance))
    }

    /// Kong's config JSON → (`__seq__`, plugin). `null`s count as absent.
    /// Kong's extra keys (`__seq__`, `route_id`, …) are kept, so a config
    /// type may read them (`#[kong(skip)] route_id: Option<String>`); if the
    /// type refuses them (`deny_unknown_fields`), they are removed and the
    /// config is tried again.
    pub(crate) fn decode_config(&self, config: &[u8]) -> Result<(i64, P), String> {
        let json: serde_json::Value = serde_json::from_slice(config)
            .map_err(|e| format!("the config is not valid JSON: {e}"))?;
        let mut config = crate::value::strip_nulls(json);
        let Some(object) = config.as_object_mut() else {
            return Err("the config is not a JSON object".into());
        };
        let seq = object
            .get("__seq__")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if let Ok(plugin) = P::deserialize(&config) {
            return Ok((seq, plugin));
        }
        if let Some(object) = config.as_object_mut() {
            for key in RESERVED_CONFIG_FIELDS {
                object.remove(*key);
            }
        }
        let plugin = P::deserialize(&config)
            .map_err(|e| format!("the config does not match the plugin's config type: {e}"))?;
        Ok((seq, plugin))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
