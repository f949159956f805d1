use kong_pdk::Schema;
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Config {
    #[kong(defualt = "hello")]
    misspelled: String,
    #[kong(required = true, required = false)]
    twice: String,
    #[kong(len_min = "3")]
    length_as_string: String,
    #[kong(between = [10, 1])]
    backwards: u32,
    #[kong(one_of = ["a", "b"], default = "c")]
    default_not_allowed: String,
    #[kong(default = "")]
    empty_default: String,
    #[kong(description = "short")]
    short_description: String,
    #[serde(skip)]
    #[kong(default = 1)]
    skipped: u32,
    #[kong(skip, default = 1)]
    kong_skipped: u32,
}

fn main() {}
