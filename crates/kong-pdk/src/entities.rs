//! Kong entities as the PDK returns them: plain Rust structs.
//!
//! Over the ProtoBuf protocol Kong sends only the fields the protocol
//! declares, and a missing entity (no consumer authenticated, no route
//! matched) arrives as an empty one: check `id.is_empty()`.
//!
//! Every entity is `Serialize` and `Deserialize` with Kong's JSON field
//! names, so it can be logged, stored in `kong.ctx.shared` or forwarded as
//! is: a route's service is `"service": {"id": "…"}` and a service's client
//! certificate `"client_certificate": {"id": "…"}`, as in Kong's Admin API
//! (`null` when absent).

use std::collections::BTreeMap;

use kong_pdk_proto as pb;
use serde::{Deserialize, Serialize};

/// A route (`kong.router.get_route`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Route {
    /// The route's UUID (`""` when no route matched).
    pub id: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// Last update, seconds since the Unix epoch.
    pub updated_at: i64,
    /// The route's name.
    pub name: String,
    /// `http`, `https`, `grpc`, `tcp`, …
    pub protocols: Vec<String>,
    /// Matched HTTP methods.
    pub methods: Vec<String>,
    /// Matched hosts.
    pub hosts: Vec<String>,
    /// Matched paths.
    pub paths: Vec<String>,
    /// Matched headers, as Kong sends them.
    pub headers: Vec<String>,
    /// Status used to redirect plain HTTP to HTTPS.
    pub https_redirect_status_code: i32,
    /// Priority among regex paths.
    pub regex_priority: i32,
    /// Whether the matched path prefix is stripped upstream.
    pub strip_path: bool,
    /// Whether the client's `Host` is sent upstream.
    pub preserve_host: bool,
    /// Matched TLS server names.
    pub snis: Vec<String>,
    /// Matched stream sources.
    pub sources: Vec<String>,
    /// Matched stream destinations.
    pub destinations: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The id of the route's service, if any (`"service": {"id": …}` in JSON).
    #[serde(rename = "service", with = "foreign_key")]
    pub service_id: Option<String>,
}

impl From<pb::Route> for Route {
    fn from(r: pb::Route) -> Self {
        Route {
            id: r.id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            name: r.name,
            protocols: r.protocols,
            methods: r.methods,
            hosts: r.hosts,
            paths: r.paths,
            headers: r.headers,
            https_redirect_status_code: r.https_redirect_status_code,
            regex_priority: r.regex_priority,
            strip_path: r.strip_path,
            preserve_host: r.preserve_host,
            snis: r.snis,
            sources: r.sources,
            destinations: r.destinations,
            tags: r.tags,
            service_id: r.service.map(|s| s.id).filter(|id| !id.is_empty()),
        }
    }
}

/// A service (`kong.router.get_service`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Service {
    /// The service's UUID (`""` when none).
    pub id: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// Last update, seconds since the Unix epoch.
    pub updated_at: i64,
    /// The service's name.
    pub name: String,
    /// Proxy retries.
    pub retries: i32,
    /// `http`, `https`, `grpc`, …
    pub protocol: String,
    /// Upstream host.
    pub host: String,
    /// Upstream port.
    pub port: i32,
    /// Upstream path prefix.
    pub path: String,
    /// Connect timeout, ms.
    pub connect_timeout: i32,
    /// Write timeout, ms.
    pub write_timeout: i32,
    /// Read timeout, ms.
    pub read_timeout: i32,
    /// Tags.
    pub tags: Vec<String>,
    /// The id of the client certificate used upstream, if any
    /// (`"client_certificate": {"id": …}` in JSON).
    #[serde(rename = "client_certificate", with = "foreign_key")]
    pub client_certificate_id: Option<String>,
}

impl From<pb::Service> for Service {
    fn from(s: pb::Service) -> Self {
        Service {
            id: s.id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            name: s.name,
            retries: s.retries,
            protocol: s.protocol,
            host: s.host,
            port: s.port,
            path: s.path,
            connect_timeout: s.connect_timeout,
            write_timeout: s.write_timeout,
            read_timeout: s.read_timeout,
            tags: s.tags,
            client_certificate_id: s
                .client_certificate
                .map(|c| c.id)
                .filter(|id| !id.is_empty()),
        }
    }
}

/// A consumer (`kong.client.get_consumer`, `load_consumer`, `authenticate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Consumer {
    /// The consumer's UUID (`""` when none).
    pub id: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// Username.
    pub username: String,
    /// Custom id.
    pub custom_id: String,
    /// Tags.
    pub tags: Vec<String>,
}

impl Consumer {
    /// A consumer known by its id, for [`authenticate`](crate::pdk::Client::authenticate).
    pub fn with_id(id: impl Into<String>) -> Self {
        Consumer {
            id: id.into(),
            ..Consumer::default()
        }
    }

    /// Sets the username.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    /// Sets the custom id.
    pub fn custom_id(mut self, custom_id: impl Into<String>) -> Self {
        self.custom_id = custom_id.into();
        self
    }
}

impl From<pb::Consumer> for Consumer {
    fn from(c: pb::Consumer) -> Self {
        Consumer {
            id: c.id,
            created_at: c.created_at,
            username: c.username,
            custom_id: c.custom_id,
            tags: c.tags,
        }
    }
}

impl From<&Consumer> for pb::Consumer {
    fn from(c: &Consumer) -> Self {
        pb::Consumer {
            id: c.id.clone(),
            created_at: c.created_at,
            username: c.username.clone(),
            custom_id: c.custom_id.clone(),
            tags: c.tags.clone(),
        }
    }
}

/// The credential a consumer authenticated with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AuthenticatedCredential {
    /// The credential's id (`""` when none).
    pub id: String,
    /// The consumer it belongs to.
    pub consumer_id: String,
}

impl AuthenticatedCredential {
    /// A credential of `consumer_id` known by `id`.
    pub fn new(id: impl Into<String>, consumer_id: impl Into<String>) -> Self {
        AuthenticatedCredential {
            id: id.into(),
            consumer_id: consumer_id.into(),
        }
    }
}

impl From<pb::AuthenticatedCredential> for AuthenticatedCredential {
    fn from(c: pb::AuthenticatedCredential) -> Self {
        AuthenticatedCredential {
            id: c.id,
            consumer_id: c.consumer_id,
        }
    }
}

impl From<&AuthenticatedCredential> for pb::AuthenticatedCredential {
    fn from(c: &AuthenticatedCredential) -> Self {
        pb::AuthenticatedCredential {
            id: c.id.clone(),
            consumer_id: c.consumer_id.clone(),
        }
    }
}

/// Memory use of a shared dictionary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DictStats {
    /// Bytes allocated.
    pub allocated_slabs: i64,
    /// Capacity in bytes.
    pub capacity: i64,
}

/// Memory use of one worker's Lua VM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct WorkerMemory {
    /// Bytes allocated by the Lua GC.
    pub http_allocated_gc: i64,
    /// The worker's pid.
    pub pid: i64,
}

/// `kong.node.get_memory_stats()`: the two shared dictionaries the protocol
/// carries (`kong`, `kong_db_cache`) and every worker's Lua VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Shared dictionaries by name (`kong`, `kong_db_cache`).
    pub lua_shared_dicts: BTreeMap<String, DictStats>,
    /// Per worker.
    pub workers_lua_vms: Vec<WorkerMemory>,
}

impl From<pb::MemoryStats> for MemoryStats {
    fn from(m: pb::MemoryStats) -> Self {
        let mut lua_shared_dicts = BTreeMap::new();
        if let Some(dicts) = m.lua_shared_dicts {
            for (name, stats) in [("kong", dicts.kong), ("kong_db_cache", dicts.kong_db_cache)] {
                if let Some(s) = stats {
                    lua_shared_dicts.insert(
                        name.to_owned(),
                        DictStats {
                            allocated_slabs: s.allocated_slabs,
                            capacity: s.capacity,
                        },
                    );
                }
            }
        }
        MemoryStats {
            lua_shared_dicts,
            workers_lua_vms: m
                .workers_lua_vms
                .into_iter()
                .map(|w| WorkerMemory {
                    http_allocated_gc: w.http_allocated_gc,
                    pid: w.pid,
                })
                .collect(),
        }
    }
}

/// A reference to another entity as Kong writes it: `{"id": "…"}` or `null`.
mod foreign_key {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Ref<T> {
        id: T,
    }

    pub(super) fn serialize<S: Serializer>(id: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        id.as_deref().map(|id| Ref { id }).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Ref<String>>::deserialize(d)?
            .map(|r| r.id)
            .filter(|id| !id.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entities_serialize_with_kongs_field_names() {
        let route = Route {
            id: "r1".into(),
            name: "api".into(),
            paths: vec!["/api".into()],
            strip_path: true,
            service_id: Some("s1".into()),
            ..Route::default()
        };
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["service"], json!({"id": "s1"}));
        assert_eq!(json["paths"], json!(["/api"]));
        assert_eq!(json["strip_path"], json!(true));
        assert!(json.get("service_id").is_none());
        assert_eq!(serde_json::from_value::<Route>(json).unwrap(), route);

        let service = Service {
            host: "example.com".into(),
            port: 443,
            ..Service::default()
        };
        let json = serde_json::to_value(&service).unwrap();
        assert_eq!(json["client_certificate"], json!(null));
        assert_eq!(json["port"], json!(443));
        assert_eq!(serde_json::from_value::<Service>(json).unwrap(), service);

        let consumer = Consumer::with_id("c1").username("ann");
        assert_eq!(
            serde_json::to_value(&consumer).unwrap(),
            json!({"id": "c1", "created_at": 0, "username": "ann", "custom_id": "", "tags": []})
        );
        assert_eq!(
            serde_json::to_value(AuthenticatedCredential::new("k1", "c1")).unwrap(),
            json!({"id": "k1", "consumer_id": "c1"})
        );
    }

    #[test]
    fn entities_read_kongs_admin_api_json() {
        // Kong's Admin API has more fields: they are ignored, and absent
        // ones take their defaults.
        let route: Route = serde_json::from_value(json!({
            "id": "r1", "paths": ["/x"], "service": {"id": "s1"},
            "path_handling": "v0", "request_buffering": true
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(route.service_id.as_deref(), Some("s1"));
        assert_eq!(route.paths, ["/x"]);
    }
}
