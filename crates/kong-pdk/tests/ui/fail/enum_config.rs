use kong_pdk::Schema;
use serde::Deserialize;

#[derive(Deserialize, Schema)]
enum Config {
    Allow(String),
    Deny { status: u16 },
}

fn main() {}
