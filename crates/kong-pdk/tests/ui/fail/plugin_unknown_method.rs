use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Config {}

#[kong_pdk::plugin]
impl Plugin for Config {
    const PHASES: &'static [kong_pdk::Phase] = &[];

    async fn access(&self, _kong: &mut Kong) -> PhaseResult {
        Ok(())
    }

    async fn header_filter(&self, _kong: &mut Kong) -> PhaseResult {
        Ok(())
    }
}

fn main() {}
