use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Config {}

#[kong_pdk::plugin(version = "1.0.0", priority = 10)]
impl Plugin for Config {
    async fn access(&self, _kong: &mut Kong) -> PhaseResult {
        Ok(())
    }
}

#[kong_pdk::plugin]
struct NotAnImpl;

fn main() {}
