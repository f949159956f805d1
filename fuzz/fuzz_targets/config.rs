//! Kong's instance config JSON → the plugin's config type, and JSON values
//! through Kong's `Value`: never panics; conversions round-trip.
#![no_main]
// The config fields exist to be deserialized, not read.
#![allow(dead_code)]

use std::collections::BTreeMap;

use kong_pdk::server::Server;
use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Inner {
    host: String,
    #[serde(default)]
    port: u16,
}

#[derive(Deserialize, Schema)]
struct Config {
    #[kong(default = "x")]
    name: String,
    ratio: Option<f64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, i64>,
    upstream: Option<Inner>,
    #[serde(default)]
    enabled: bool,
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, _kong: &mut Kong) -> PhaseResult {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let server = Server::<Config>::new("1.0.0", 1).name("fuzz");
    let _ = kong_pdk::__private::decode_config(server, data);
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        let back = kong_pdk::__private::value_to_json(kong_pdk::__private::value_from_json(
            json.clone(),
        ));
        // Numbers pass through doubles; everything else is exact.
        if !has_numbers(&json) {
            assert_eq!(back, json);
        }
    }
});

fn has_numbers(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(_) => true,
        serde_json::Value::Array(items) => items.iter().any(has_numbers),
        serde_json::Value::Object(map) => map.values().any(has_numbers),
        _ => false,
    }
}
