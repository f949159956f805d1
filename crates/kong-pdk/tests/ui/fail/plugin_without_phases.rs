use kong_pdk::{Plugin, Schema};
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Config {}

#[kong_pdk::plugin]
impl Plugin for Config {}

fn main() {}
