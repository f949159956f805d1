use kong_pdk::Schema;
use serde::Deserialize;

#[derive(Deserialize, Schema)]
struct Tuple(String, u32);

#[derive(Deserialize, Schema)]
struct Inner {
    a: String,
}

#[derive(Deserialize, Schema)]
struct Flattened {
    #[serde(flatten)]
    inner: Inner,
}

#[derive(Deserialize, Schema)]
#[serde(rename_all = "UPPERCASE")]
struct Duplicates {
    name: String,
    #[serde(rename = "NAME")]
    other: String,
}

#[derive(Deserialize, Schema)]
#[serde(tag = "kind")]
enum Tagged {
    A,
}

fn main() {}
