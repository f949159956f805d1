//! `#[derive(Schema)]` end to end: the emitted plugin schema of a config that uses every
//! feature is compared with a committed snapshot, checked like Kong checks it, and the
//! config deserializes from Kong-shaped JSON.
//!
//! Update the snapshot with `UPDATE_SNAPSHOTS=1 cargo test -p kong-pdk --test schema_derive`.

#![allow(dead_code)] // config structs exist for their schema, not their values

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use kong_pdk::Schema;
use kong_pdk::schema::{Field, check_plugin_schema, plugin_schema};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where to send the logs. It is a fairly long explanation that spans
/// two lines of doc comment.
#[derive(Debug, Deserialize, Schema, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Upstream {
    /// Host name of the log collector.
    host_name: String,
    #[kong(default = 514, between = [1, 65535])]
    port: u16,
    #[serde(default)]
    use_tls: bool,
}

/// Serde's default representation of unit variants: their names as strings.
#[derive(Debug, Deserialize, Schema, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Policy {
    Local,
    RedisCluster,
    #[serde(rename = "cluster")]
    Cluster,
}

/// A newtype Kong sees as the wrapped type.
#[derive(Debug, Deserialize, Schema, PartialEq)]
#[serde(transparent)]
struct Percent(#[kong(between = [0, 100])] u8);

#[derive(Debug, Deserialize, Schema)]
#[serde(rename_all = "snake_case")]
struct EveryFeature {
    // Every scalar type.
    /// A plain string, required.
    text: String,
    flag: bool,
    tiny: i8,
    small: i16,
    medium: i32,
    large: i64,
    pointer: isize,
    byte: u8,
    word: u16,
    double_word: u32,
    quad_word: u64,
    size: usize,
    ratio: f32,
    precise: f64,

    // Wrappers and collections.
    maybe: Option<String>,
    boxed: Box<u16>,
    list: Vec<String>,
    pair: [u8; 2],
    unique: HashSet<String>,
    sorted: BTreeSet<i32>,
    labels: HashMap<String, String>,
    limits: BTreeMap<String, Vec<u32>>,
    upstream: Upstream,
    fallback: Option<Upstream>,
    policy: Policy,
    load: Percent,

    // serde attributes.
    #[serde(rename = "X-Renamed")]
    renamed: String,
    #[serde(rename(deserialize = "from_kong", serialize = "ignored"))]
    renamed_for_deserialize: Option<bool>,
    #[serde(skip)]
    skipped: Vec<u8>,
    #[serde(skip_deserializing)]
    not_deserialized: u32,
    #[serde(default)]
    defaulted: u32,
    #[serde(default = "default_retries")]
    retries: u8,
    r#type: String,
    #[serde(alias = "other_name")]
    aliased: Option<String>,

    // Every #[kong] property.
    #[kong(default = "hello")]
    greeting: String,
    #[kong(default = -3)]
    offset: i32,
    #[kong(default = 0.25)]
    fraction: f64,
    #[kong(default = 2)]
    scale: f64,
    #[kong(default = true)]
    enabled: bool,
    #[kong(default = ["GET", "HEAD"], one_of = ["GET", "HEAD", "POST"], len_min = 1)]
    methods: Vec<String>,
    #[kong(default = [])]
    tags: BTreeSet<String>,
    #[kong(default = "local")]
    storage: Policy,
    #[kong(required = false)]
    not_required: Option<u8>,
    #[kong(required = true)]
    required_option: Option<String>,
    #[kong(one_of = [1, 2, 4])]
    workers: u8,
    #[kong(one_of = [0.5, 1.5])]
    factor: Option<f64>,
    #[kong(between = [10, 20])]
    window: u64,
    #[kong(between = [-1.5, 1.5])]
    skew: f32,
    #[kong(len_min = 0, len_max = 16, default = "")]
    suffix: String,
    #[kong(match = "^https?://", not_match = "%s")]
    url: String,
    #[kong(referenceable, encrypted)]
    api_key: String,
    #[kong(referenceable = true)]
    secrets: Vec<String>,
    #[kong(encrypted = false)]
    not_encrypted: Option<String>,
    /// Ignored: the explicit description wins.
    #[kong(description = "An explicit description")]
    described: Option<String>,
    /// Too short
    short_doc: Option<String>,
    /// Kong adds `route_id` to every config it sends; the schema must not declare it.
    #[kong(skip)]
    route_id: Option<String>,
}

fn default_retries() -> u8 {
    3
}

/// Compares `actual` with the JSON snapshot `name`, or rewrites the snapshot when
/// `UPDATE_SNAPSHOTS=1`. Objects compare by content, so key order does not matter.
fn assert_snapshot(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(actual).expect("JSON") + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create snapshots dir");
        std::fs::write(&path, &pretty).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read snapshot {}: {e}\nrun with UPDATE_SNAPSHOTS=1 to create it; actual:\n{pretty}",
            path.display()
        )
    });
    let expected_value: Value = serde_json::from_str(&expected).expect("snapshot is JSON");
    if &expected_value != actual {
        panic!(
            "schema differs from snapshot {}\n(run with UPDATE_SNAPSHOTS=1 to accept)\n\
             --- expected ---\n{expected}\n--- actual ---\n{pretty}",
            path.display()
        );
    }
}

#[test]
fn every_feature_matches_snapshot() {
    let schema = plugin_schema::<EveryFeature>("test-plugin");
    assert_snapshot("schema_every_feature", &schema);
}

#[test]
fn every_feature_passes_kongs_checks() {
    let schema = plugin_schema::<EveryFeature>("test-plugin");
    assert_eq!(check_plugin_schema(&schema), Ok(()));
}

#[test]
fn spot_checks() {
    let config = EveryFeature::field().to_json();
    let field = |name: &str| -> Value {
        config["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|entry| entry.get(name).cloned())
            .unwrap_or_else(|| panic!("no field {name}"))
    };
    let names: Vec<&str> = config["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    assert_eq!(&names[..3], ["text", "flag", "tiny"], "declaration order");
    assert!(
        names.contains(&"X-Renamed") && names.contains(&"from_kong") && names.contains(&"type")
    );
    assert!(!names.contains(&"skipped") && !names.contains(&"not_deserialized"));
    assert!(!names.contains(&"route_id"), "#[kong(skip)]");

    assert_eq!(
        field("text"),
        json!({"type": "string", "description": "A plain string, required.", "required": true})
    );
    assert_eq!(field("maybe"), json!({"type": "string"}));
    assert_eq!(
        field("defaulted"),
        json!({"type": "integer", "between": [0, 4294967295u32]})
    );
    assert_eq!(
        field("greeting"),
        json!({"type": "string", "required": true, "default": "hello"})
    );
    assert_eq!(field("required_option")["required"], json!(true));
    assert_eq!(field("not_required").get("required"), Some(&json!(false)));
    assert_eq!(
        field("policy"),
        json!({"type": "string", "required": true, "one_of": ["local", "redis_cluster", "cluster"]})
    );
    assert_eq!(
        field("load"),
        json!({"type": "integer", "required": true, "between": [0, 100]})
    );
    assert_eq!(
        field("described")["description"],
        json!("An explicit description")
    );
    assert_eq!(field("short_doc").get("description"), None);
    let upstream = field("upstream");
    assert_eq!(upstream["type"], "record");
    assert_eq!(
        upstream.get("description"),
        None,
        "a struct's own doc comment does not become a description"
    );
    assert_eq!(
        upstream["fields"][0],
        json!({"hostName": {"type": "string", "description": "Host name of the log collector.", "required": true}})
    );
    assert_eq!(
        upstream["fields"][2],
        json!({"useTls": {"type": "boolean"}})
    );
    assert_eq!(field("fallback").get("required"), None);
}

#[test]
fn kong_shaped_config_deserializes() {
    // What Kong sends: every schema field (defaults filled in, unset optional fields as
    // null after the server drops them), plus the keys Kong adds.
    let config = r#"{
        "text": "t", "flag": true, "tiny": -1, "small": 2, "medium": 3, "large": 4,
        "pointer": 5, "byte": 6, "word": 7, "double_word": 8, "quad_word": 9, "size": 10,
        "ratio": 0.5, "precise": 1.25,
        "boxed": 11, "list": ["a"], "pair": [1, 2], "unique": ["u"], "sorted": [3, 1],
        "labels": {"k": "v"}, "limits": {"m": [1, 2]},
        "upstream": {"hostName": "logs", "port": 514},
        "policy": "redis_cluster", "load": 42,
        "X-Renamed": "r", "from_kong": false,
        "type": "typed", "other_name": "via alias",
        "greeting": "hello", "offset": -3, "fraction": 0.25, "scale": 2, "enabled": true,
        "methods": ["GET", "HEAD"], "tags": [], "storage": "local",
        "required_option": "present", "workers": 2, "window": 15, "skew": -1,
        "suffix": "", "url": "https://example.com", "api_key": "secret", "secrets": [],
        "route_id": "6b0c4d1c-0000-0000-0000-000000000000", "service_id": null,
        "consumer_id": null, "plugin_instance_name": null, "__plugin_id": "p", "__ws_id": "w",
        "__key__": "k", "__seq__": 7
    }"#;
    let parsed: EveryFeature = serde_json::from_str(config).expect("Kong's config deserializes");
    assert_eq!(parsed.text, "t");
    assert_eq!(parsed.maybe, None);
    assert_eq!(parsed.retries, 3, "serde default");
    assert_eq!(parsed.defaulted, 0);
    assert_eq!(
        parsed.upstream,
        Upstream {
            host_name: "logs".into(),
            port: 514,
            use_tls: false
        }
    );
    assert_eq!(parsed.policy, Policy::RedisCluster);
    assert_eq!(parsed.load, Percent(42));
    assert_eq!(parsed.renamed, "r");
    assert_eq!(parsed.renamed_for_deserialize, Some(false));
    assert_eq!(parsed.aliased.as_deref(), Some("via alias"));
    assert_eq!(parsed.r#type, "typed");
    assert_eq!(parsed.methods, ["GET", "HEAD"]);
    assert_eq!(parsed.storage, Policy::Local);
    assert_eq!(
        parsed.route_id.as_deref(),
        Some("6b0c4d1c-0000-0000-0000-000000000000")
    );
    assert!(parsed.skipped.is_empty());
    assert_eq!(parsed.not_deserialized, 0);
    let _ = (
        parsed.boxed,
        parsed.pair,
        parsed.unique,
        parsed.sorted,
        parsed.labels,
        parsed.limits,
    );
}

#[test]
fn kong_completes_a_minimal_config() {
    // The least a user can configure; Kong fills in the rest from the schema.
    let minimal = json!({
        "text": "t", "flag": false, "tiny": 0, "small": 0, "medium": 0, "large": 0,
        "pointer": 0, "byte": 0, "word": 0, "double_word": 0, "quad_word": 0, "size": 0,
        "ratio": 0, "precise": 0, "boxed": 0, "list": [], "pair": [0, 0], "unique": [],
        "sorted": [], "labels": {}, "limits": {}, "upstream": {"hostName": "h"},
        "policy": "local", "load": 0, "X-Renamed": "r", "type": "t", "required_option": "o",
        "workers": 1, "window": 10, "skew": 0, "url": "http://x", "api_key": "{vault://env/key}",
        "secrets": [],
    });
    let schema = plugin_schema::<EveryFeature>("test-plugin");
    let completed = kong_pdk::schema::validate_config(&schema, &minimal).expect("valid config");
    assert_eq!(completed["greeting"], "hello");
    assert_eq!(completed["methods"], json!(["GET", "HEAD"]));
    assert_eq!(
        completed["upstream"],
        json!({"hostName": "h", "port": 514, "useTls": null})
    );
    assert_eq!(completed["maybe"], Value::Null);

    // What the server does with it: Kong's nulls count as absent.
    fn strip_nulls(value: Value) -> Value {
        match value {
            Value::Object(map) => map
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
            other => other,
        }
    }
    let parsed: EveryFeature =
        serde_json::from_value(strip_nulls(completed)).expect("the completed config deserializes");
    assert_eq!(parsed.greeting, "hello");
    assert_eq!(parsed.offset, -3);
    assert!(parsed.enabled);
    assert_eq!(parsed.storage, Policy::Local);
    assert_eq!(parsed.upstream.port, 514);
    assert_eq!(parsed.retries, 3);

    let errors = kong_pdk::schema::validate_config(&schema, &json!({"text": 5})).unwrap_err();
    assert!(
        errors.contains(&"config.text: expected a string".to_owned()),
        "{errors:#?}"
    );
    assert!(
        errors.contains(&"config.flag: required field missing".to_owned()),
        "{errors:#?}"
    );
}

/// A generic config: type parameters get a `Schema` bound.
#[derive(Deserialize, Schema)]
struct Generic<T> {
    value: T,
    values: Vec<T>,
}

#[test]
fn generic_structs() {
    assert_eq!(
        Generic::<bool>::field().to_json(),
        json!({"type": "record", "fields": [
            {"value": {"type": "boolean", "required": true}},
            {"values": {"type": "array", "required": true, "elements": {"type": "boolean"}}},
        ]})
    );
}

/// `#[serde(default)]` on the struct: no field is required.
#[derive(Deserialize, Schema, Default)]
#[serde(default)]
struct AllDefault {
    a: String,
    #[kong(required = true)]
    b: String,
}

#[test]
fn container_default() {
    assert_eq!(
        AllDefault::field().to_json(),
        json!({"type": "record", "fields": [
            {"a": {"type": "string"}},
            {"b": {"type": "string", "required": true}},
        ]})
    );
}

#[test]
fn hand_written_impls_compose() {
    struct Port;
    impl Schema for Port {
        fn field() -> Field {
            Field::integer().between(1, 65535)
        }
    }
    #[derive(Schema)]
    #[allow(dead_code)]
    struct Listen {
        port: Port,
    }
    assert_eq!(
        Listen::field().to_json()["fields"][0],
        json!({"port": {"type": "integer", "required": true, "between": [1, 65535]}})
    );
}
