use std::collections::HashMap;

use kong_pdk::{Kong, Phase, PhaseResult, Plugin, Schema};
use serde::Deserialize;

#[derive(Deserialize, Schema)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Block,
    LogOnly,
}

#[derive(Deserialize, Schema)]
#[serde(transparent)]
struct Port(#[kong(between = [1, 65535])] u16);

/// A generic transparent wrapper.
#[derive(Deserialize, Schema)]
#[serde(transparent)]
struct Labelled<T> {
    value: T,
    #[serde(skip)]
    label: Option<String>,
}

#[derive(Deserialize, Schema)]
struct Config {
    /// The greeting sent back to the client.
    #[kong(default = "hello", len_max = 64)]
    message: String,
    #[kong(default = "block")]
    mode: Mode,
    #[kong(default = 8080)]
    port: Port,
    #[kong(one_of = ["GET", "POST"], default = ["GET"])]
    methods: Vec<String>,
    headers: Option<HashMap<String, String>>,
    #[kong(default = "x", len_max = 8)]
    labelled: Labelled<String>,
    #[kong(between = [1, 5])]
    labelled_number: Option<Labelled<u8>>,
}

#[kong_pdk::plugin]
impl Plugin for Config {
    const FAIL_OPEN: bool = true;

    async fn init(&mut self) -> Result<(), kong_pdk::BoxError> {
        Ok(())
    }

    async fn log(&self, _kong: &mut Kong) -> PhaseResult {
        Ok(())
    }

    async fn access(&self, _kong: &mut Kong) -> PhaseResult {
        Ok(())
    }
}

fn main() {
    assert_eq!(Config::PHASES, &[Phase::Access, Phase::Log]);
    let schema = kong_pdk::schema::plugin_schema::<Config>("hello");
    kong_pdk::schema::check_plugin_schema(&schema).unwrap();
    let config = &schema["fields"][0]["config"]["fields"];
    assert_eq!(config[5]["labelled"]["default"], "x");
    assert_eq!(config[6]["labelled_number"]["between"], serde_json::json!([1, 5]));
}
