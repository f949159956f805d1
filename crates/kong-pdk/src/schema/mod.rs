//! Kong plugin config schemas, generated from Rust types by `#[derive(Schema)]`.
//!
//! Kong validates every plugin config against the schema the plugin server reports in its
//! `-dump` output, fills in defaults, and then sends the config to the plugin as JSON.
//! This module maps Rust types to Kong field definitions ([`Schema`], [`Field`]), builds the
//! plugin subschema Kong expects ([`plugin_schema`]), checks a schema the way Kong's
//! metaschema does ([`check_plugin_schema`]), and validates a config against a schema the
//! way Kong does, defaults included ([`validate_config`]).
//!
//! # Type mapping
//!
//! | Rust | Kong |
//! |---|---|
//! | `String` | `string` |
//! | `bool` | `boolean` |
//! | `i8`, `i16`, `i32`, `u8`, `u16`, `u32` | `integer` with `between` = the type's range |
//! | `i64`, `isize` | `integer`, `between [-(2^53-1), 2^53-1]` |
//! | `u64`, `usize` | `integer`, `between [0, 2^53-1]` |
//! | `f32`, `f64` | `number` |
//! | `Option<T>` | `T`, not required |
//! | `Box<T>` | `T` |
//! | `Vec<T>` | `array` of `T` |
//! | `[T; N]` | `array` of `T` with `len_min = len_max = N` |
//! | `HashSet<T>`, `BTreeSet<T>` | `set` of `T` |
//! | `HashMap<String, V>`, `BTreeMap<String, V>` | `map` with `string` keys and `V` values |
//! | a struct with `#[derive(Schema)]` | `record` |
//! | an enum of unit variants with `#[derive(Schema)]` | `string` with `one_of` the variant names |
//!
//! 64-bit integers are limited to ±(2^53−1): Kong keeps numbers as doubles, which hold
//! every integer exactly only up to 2^53, and Kong writes the config JSON with 16 significant
//! digits, so larger values would reach the plugin rounded or in exponent notation.
//!
//! There is deliberately no mapping for `serde_json::Value`, tuples, `char`, `Duration`,
//! or maps with non-string keys: Kong has no "any" type, and a field Kong does not know is
//! a field Kong rejects. Wrap such a value in a type you implement [`Schema`] for, or mark
//! the field `#[serde(skip)]` and compute it in [`Plugin::init`](crate::Plugin::init).
//!
//! # The derive
//!
//! ```
//! use kong_pdk::Schema;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, Schema)]
//! struct Config {
//!     /// The greeting sent back to the client.
//!     #[kong(default = "hello", len_max = 64)]
//!     message: String,
//!     #[kong(one_of = ["GET", "POST"])]
//!     methods: Vec<String>,
//!     timeout_ms: Option<u32>,
//! }
//!
//! let schema = kong_pdk::schema::plugin_schema::<Config>("hello");
//! assert!(kong_pdk::schema::check_plugin_schema(&schema).is_ok());
//! ```
//!
//! A field is `required = true` unless its type is `Option<T>` or it has
//! `#[serde(default)]`. A `#[kong(default = …)]` keeps it required: Kong fills in the
//! default when the config leaves the field out, and rejects an explicit `null` (which the
//! plugin could not deserialize).
//!
//! `#[serde(rename)]`, `#[serde(rename_all)]`, `#[serde(skip)]`, `#[serde(default)]` and
//! `#[serde(transparent)]` are honoured; `#[kong(...)]` takes `default`, `required`,
//! `one_of`, `between`, `len_min`, `len_max`, `match`, `not_match`, `referenceable`,
//! `encrypted`, `description` (doc comments become the description when none is given) and
//! `skip`. See [the derive's documentation](macro@crate::Schema) for the details.

mod check;
mod config;
mod field;
pub mod lua_pattern;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub use check::{RESERVED_CONFIG_FIELDS, check_plugin_schema};
pub use config::validate_config;
pub use field::{Field, FieldType};

/// A Rust type that maps to a Kong schema field type.
///
/// Implemented for the std types in the [module table](self#type-mapping) and by
/// `#[derive(Schema)]`. Implement it yourself for a newtype that Kong should see as one of
/// its types:
///
/// ```
/// use kong_pdk::schema::{Field, Schema};
///
/// /// A TCP port, deserialized from a number.
/// struct Port(u16);
///
/// impl Schema for Port {
///     fn field() -> Field {
///         Field::integer().between(1, 65535)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no Kong schema type",
    label = "Kong cannot describe this field",
    note = "Kong config fields can be String, bool, integers, floats, Option<T>, Vec<T>, sets, maps with String keys, or types that #[derive(Schema)]",
    note = "wrap other types in a type that implements kong_pdk::schema::Schema, or mark the field #[serde(skip)]"
)]
pub trait Schema {
    /// Whether a missing value is acceptable (`Option<T>`).
    const OPTIONAL: bool = false;

    /// Kong's definition of a field of this type, e.g. `{"type":"string"}`, without the
    /// per-field properties (`required`, `default`, `description`) the containing struct adds.
    fn field() -> Field;
}

/// Kong's plugin subschema for a plugin whose config type is `C`:
/// `{"name": name, "fields": [{"config": <C's record>}]}`.
///
/// This is the `Schema` value of the `-dump` output. Kong adds the other plugin fields
/// (`protocols`, `route`, `service`, `consumer`, `enabled`, …) itself.
pub fn plugin_schema<C: Schema + ?Sized>(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "fields": [{ "config": C::field() }],
    })
}

impl Schema for String {
    fn field() -> Field {
        Field::string()
    }
}

impl Schema for bool {
    fn field() -> Field {
        Field::boolean()
    }
}

/// The largest integer a double holds exactly, together with every smaller one: 2^53 − 1.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

macro_rules! integer_schema {
    ($($ty:ty),*) => {$(
        impl Schema for $ty {
            fn field() -> Field {
                let min = (<$ty>::MIN as i128).max(-(MAX_SAFE_INTEGER as i128)) as i64;
                let max = (<$ty>::MAX as i128).min(MAX_SAFE_INTEGER as i128) as i64;
                Field::integer().between(min, max)
            }
        }
    )*};
}

integer_schema!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl Schema for f32 {
    fn field() -> Field {
        Field::number()
    }
}

impl Schema for f64 {
    fn field() -> Field {
        Field::number()
    }
}

impl<T: Schema> Schema for Option<T> {
    const OPTIONAL: bool = true;
    fn field() -> Field {
        T::field()
    }
}

impl<T: Schema + ?Sized> Schema for Box<T> {
    const OPTIONAL: bool = T::OPTIONAL;
    fn field() -> Field {
        T::field()
    }
}

impl<T: Schema> Schema for Vec<T> {
    fn field() -> Field {
        Field::array(T::field())
    }
}

impl<T: Schema, const N: usize> Schema for [T; N] {
    fn field() -> Field {
        Field::array(T::field()).len_min(N as u64).len_max(N as u64)
    }
}

impl<T: Schema, S> Schema for HashSet<T, S> {
    fn field() -> Field {
        Field::set(T::field())
    }
}

impl<T: Schema> Schema for BTreeSet<T> {
    fn field() -> Field {
        Field::set(T::field())
    }
}

impl<V: Schema, S> Schema for HashMap<String, V, S> {
    fn field() -> Field {
        Field::map(Field::string(), V::field())
    }
}

impl<V: Schema> Schema for BTreeMap<String, V> {
    fn field() -> Field {
        Field::map(Field::string(), V::field())
    }
}

/// Support code for the `#[derive(Schema)]` output; not a public API.
#[doc(hidden)]
pub mod __private;

#[cfg(test)]
mod tests;
