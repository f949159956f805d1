//! What the gateway knows at startup: kong.conf + kong.yml + each plugin's
//! `-dump`, checked and combined the way Kong does when it starts.

use std::collections::HashMap;
use std::sync::Arc;

use kong_pdk::Phase;
use kong_pdk_proto as pb;
use serde_json::Value;

use crate::conf::KongConf;
use crate::declarative::{self, CREATED_AT, Declarative};
use crate::dump;
use crate::error::{Error, Result};
use crate::rpc::{InstanceConfig, PluginServer};

/// The workspace id of every entity (Kong's `default` workspace).
pub const WORKSPACE_ID: &str = "0dc6f45b-8f8d-40d2-a504-473544ee190b";
/// The node id `kong.node.get_id` returns.
pub const NODE_ID: &str = "6b0a3c9e-1d2f-4e5a-8b7c-9d0e1f2a3b4c";

/// A plugin entity ready to run: its server and the config Kong sends.
#[derive(Debug)]
pub struct ConfiguredPlugin {
    /// The entity from `kong.yml`.
    pub entity: declarative::Plugin,
    /// The server hosting the plugin.
    pub server: Arc<PluginServer>,
    /// The validated config with Kong's extra keys.
    pub instance: InstanceConfig,
}

impl ConfiguredPlugin {
    /// Whether the plugin handles `phase`.
    pub fn has(&self, phase: Phase) -> bool {
        self.server.info.has(phase)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.entity.name
    }
}

/// Key of Kong's plugin "combos": `(route, service, consumer)`.
type Combo = (Option<String>, Option<String>, Option<String>);

/// Everything the proxy needs.
#[derive(Debug)]
pub struct Setup {
    /// The declarative configuration.
    pub decl: Declarative,
    /// The plugin servers, highest priority first.
    pub servers: Vec<Arc<PluginServer>>,
    /// The plugin entities.
    pub plugins: Vec<Arc<ConfiguredPlugin>>,
    /// `plugin name → combo → plugin`.
    combos: HashMap<String, HashMap<Combo, Arc<ConfiguredPlugin>>>,
    /// The consumers as `kong.client.load_consumer` returns them.
    pub consumers: Vec<pb::Consumer>,
    /// The last `__seq__` given to a plugin config.
    pub last_seq: i64,
}

impl Setup {
    /// Checks the declarative configuration against the plugins: every
    /// plugin listed in `plugins` and installed, every config valid for its
    /// plugin's schema; assigns `__seq__` (from `last_seq + 1` on, as Kong
    /// gives every config a new one when it rebuilds its plugins iterator)
    /// and Kong's extra keys.
    pub fn new(
        conf: &KongConf,
        decl: Declarative,
        servers: Vec<Arc<PluginServer>>,
        last_seq: i64,
    ) -> Result<Setup> {
        let mut errors = Vec::new();
        let by_name: HashMap<&str, &Arc<PluginServer>> =
            servers.iter().map(|s| (s.plugin(), s)).collect();
        for listed in &conf.plugins {
            if !by_name.contains_key(listed.as_str()) {
                // Kong would load a Lua plugin of that name; the gateway has none.
                crate::log::warn(format!(
                    "{}: plugins: '{listed}' is not served by any plugin server in pluginserver_names; kong-pdk-dev runs only external plugins, so it is ignored",
                    conf.file
                ));
            }
        }
        let mut plugins = Vec::new();
        let mut seq = last_seq;
        for entity in &decl.plugins {
            let Some(server) = by_name.get(entity.name.as_str()) else {
                errors.push(Error::at(
                    &entity.place,
                    format!(
                        "plugin '{}' is not installed: no plugin server in pluginserver_names serves it",
                        entity.name
                    ),
                ));
                continue;
            };
            if !conf.plugins.contains(&entity.name) {
                errors.push(Error::at(
                    &entity.place,
                    format!(
                        "plugin '{}' not enabled; add it to the 'plugins' configuration property ({}: plugins = bundled,{})",
                        entity.name, conf.file, entity.name
                    ),
                ));
                continue;
            }
            let config =
                match kong_pdk::schema::validate_config(&server.info.schema, &entity.config) {
                    Ok(c) => c,
                    Err(es) => {
                        errors.extend(es.into_iter().map(|e| Error::at(&entity.place, e)));
                        continue;
                    }
                };
            seq += 1;
            let instance = InstanceConfig {
                plugin_id: entity.id.clone(),
                seq,
                config: kong_config(entity, config, seq),
            };
            plugins.push(Arc::new(ConfiguredPlugin {
                entity: entity.clone(),
                server: Arc::clone(server),
                instance,
            }));
        }
        if !errors.is_empty() {
            return Err(Error::many(errors));
        }
        let mut combos: HashMap<String, HashMap<Combo, Arc<ConfiguredPlugin>>> = HashMap::new();
        for p in &plugins {
            let e = &p.entity;
            combos.entry(e.name.clone()).or_default().insert(
                (e.route.clone(), e.service.clone(), e.consumer.clone()),
                Arc::clone(p),
            );
        }
        let mut servers = servers;
        servers.sort_by(|a, b| {
            b.info
                .priority
                .cmp(&a.info.priority)
                .then_with(|| b.plugin().cmp(a.plugin()))
        });
        let consumers = decl
            .consumers
            .iter()
            .map(|c| pb::Consumer {
                id: c.id.clone(),
                created_at: CREATED_AT,
                username: c.username.clone(),
                custom_id: c.custom_id.clone(),
                tags: c.tags.clone(),
            })
            .collect();
        Ok(Setup {
            decl,
            servers,
            plugins,
            combos,
            consumers,
            last_seq: seq,
        })
    }

    /// The config of plugin `name` for a request on `route`/`service` by
    /// `consumer`, most specific first (Kong's `lookup_cfg`, without
    /// consumer groups).
    pub fn lookup(
        &self,
        name: &str,
        route: Option<&str>,
        service: Option<&str>,
        consumer: Option<&str>,
    ) -> Option<Arc<ConfiguredPlugin>> {
        let combos = self.combos.get(name)?;
        let s = |x: Option<&str>| x.map(str::to_owned);
        let mut candidates: Vec<Combo> = Vec::new();
        if route.is_some() && service.is_some() && consumer.is_some() {
            candidates.push((s(route), s(service), s(consumer)));
        }
        if route.is_some() && consumer.is_some() {
            candidates.push((s(route), None, s(consumer)));
        }
        if service.is_some() && consumer.is_some() {
            candidates.push((None, s(service), s(consumer)));
        }
        if route.is_some() && service.is_some() {
            candidates.push((s(route), s(service), None));
        }
        if consumer.is_some() {
            candidates.push((None, None, s(consumer)));
        }
        if route.is_some() {
            candidates.push((s(route), None, None));
        }
        if service.is_some() {
            candidates.push((None, s(service), None));
        }
        candidates.push((None, None, None));
        candidates.iter().find_map(|c| combos.get(c).cloned())
    }

    /// The global config of plugin `name`.
    pub fn global(&self, name: &str) -> Option<Arc<ConfiguredPlugin>> {
        self.combos.get(name)?.get(&(None, None, None)).cloned()
    }

    /// The `pb::Route` of route `i`, as `kong.router.get_route` returns it.
    pub fn route_pb(&self, i: usize) -> pb::Route {
        let r = &self.decl.routes[i];
        pb::Route {
            id: r.id.clone(),
            created_at: CREATED_AT,
            updated_at: CREATED_AT,
            name: r.name.clone(),
            protocols: r.protocols.clone(),
            methods: r.methods.clone(),
            hosts: r.hosts.clone(),
            paths: r.paths.clone(),
            headers: Vec::new(),
            https_redirect_status_code: r.https_redirect_status_code,
            regex_priority: r.regex_priority,
            strip_path: r.strip_path,
            preserve_host: r.preserve_host,
            snis: Vec::new(),
            sources: Vec::new(),
            destinations: Vec::new(),
            tags: r.tags.clone(),
            service: r.service.map(|s| pb::ServiceKey {
                id: self.decl.services[s].id.clone(),
            }),
        }
    }

    /// The `pb::Service` of service `i`.
    pub fn service_pb(&self, i: usize) -> pb::Service {
        let s = &self.decl.services[i];
        let ms = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        pb::Service {
            id: s.id.clone(),
            created_at: CREATED_AT,
            updated_at: CREATED_AT,
            name: s.name.clone(),
            retries: s.retries,
            protocol: s.protocol.clone(),
            host: s.host.clone(),
            port: i32::from(s.port),
            path: s.path.clone().unwrap_or_default(),
            connect_timeout: ms(s.connect_timeout),
            write_timeout: ms(s.write_timeout),
            read_timeout: ms(s.read_timeout),
            tags: s.tags.clone(),
            client_certificate: None,
        }
    }
}

/// The config JSON Kong sends: the validated config plus `route_id`,
/// `service_id`, `consumer_id` (when scoped), `plugin_instance_name`,
/// `__plugin_id`, `__ws_id`, `__key__` and `__seq__`.
pub fn kong_config(entity: &declarative::Plugin, config: Value, seq: i64) -> Value {
    let keys = kong_pdk_test::KongKeys {
        seq,
        plugin_id: entity.id.clone(),
        workspace_id: WORKSPACE_ID.into(),
        route_id: entity.route.clone(),
        service_id: entity.service.clone(),
        consumer_id: entity.consumer.clone(),
        instance_name: entity.instance_name.clone(),
    };
    keys.add_to(&entity.name, config)
}

/// Runs every server's `query_cmd` (concurrently) and validates the dumps.
pub async fn query_servers(conf: &KongConf) -> Result<Vec<Arc<PluginServer>>> {
    let mut tasks = Vec::new();
    for ps in &conf.pluginservers {
        let cmd = ps.query_cmd.value.clone();
        let dir = conf.dir.clone();
        tasks.push(tokio::spawn(async move { dump::query(&cmd, &dir).await }));
    }
    let mut errors = Vec::new();
    let mut servers: Vec<Arc<PluginServer>> = Vec::new();
    for (ps, task) in conf.pluginservers.iter().zip(tasks) {
        let result = task
            .await
            .unwrap_or_else(|e| Err(vec![format!("query task failed: {e}")]));
        match result {
            Ok(info) => {
                for w in &info.warnings {
                    crate::log::warn(format!("{}: {w}", ps.query_cmd.place()));
                }
                if let Some(other) = servers.iter().find(|s| s.plugin() == info.name) {
                    errors.push(Error::at(
                        ps.query_cmd.place(),
                        format!(
                            "plugin '{}' is already served by pluginserver '{}'",
                            info.name, other.server
                        ),
                    ));
                    continue;
                }
                servers.push(Arc::new(PluginServer::new(
                    &ps.name,
                    info,
                    ps.socket.clone(),
                )));
            }
            Err(es) => errors.extend(es.into_iter().map(|e| Error::at(ps.query_cmd.place(), e))),
        }
    }
    if errors.is_empty() {
        Ok(servers)
    } else {
        Err(Error::many(errors))
    }
}
