use kong_pdk::Schema;
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Config {
    #[kong(default = 5)]
    name: String,
    #[kong(default = "five")]
    count: u32,
    #[kong(default = 1.5)]
    whole: i64,
    #[kong(default = [1, 2])]
    not_a_list: bool,
    #[kong(match = "^a")]
    number: u8,
    #[kong(len_max = 3)]
    flag: bool,
    #[kong(default = ["a", "b"])]
    ports: Vec<u16>,
    #[kong(default = "eighty")]
    port: Port,
}

#[derive(Deserialize, Schema)]
#[serde(transparent)]
struct Port(u16);

fn main() {}
