use std::time::Duration;

use kong_pdk::Schema;
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Config {
    timeout: Duration,
    extra: serde_json::Value,
}

fn main() {}
