//! Procedural macros of [kong-pdk](https://docs.rs/kong-pdk): `#[derive(Schema)]` and
//! `#[kong_pdk::plugin]`. Use them through `kong_pdk`, which re-exports both; the generated
//! code refers to `::kong_pdk`.

use proc_macro::TokenStream;

mod attr;
mod case;
mod plugin;
mod schema;

/// Derives `kong_pdk::schema::Schema`: the Kong schema of a plugin config, from its type.
///
/// On a struct with named fields it produces a Kong `record`; on an enum whose variants are
/// all unit variants, a `string` with `one_of` the variant names; on a
/// `#[serde(transparent)]` newtype, the schema of the wrapped type. Field types map to Kong
/// types as the table in `kong_pdk::schema` shows; a field type without a mapping is a
/// compile error.
///
/// ```ignore
/// use kong_pdk::Schema;
/// use serde::Deserialize;
///
/// #[derive(Deserialize, Schema)]
/// #[serde(rename_all = "kebab-case")]
/// struct Config {
///     /// Header that carries the request id.
///     #[kong(default = "x-request-id", match = "^[%w-]+$")]
///     header_name: String,
///     #[kong(one_of = ["local", "redis"], default = "local")]
///     policy: String,
///     #[kong(between = [1, 3600])]
///     ttl_seconds: Option<u32>,
///     #[kong(referenceable, encrypted)]
///     api_key: String,
///     #[serde(skip)]
///     cache: Vec<u8>,
/// }
/// ```
///
/// # Required fields
///
/// A field is `required = true` unless its type is `Option<T>` or it has
/// `#[serde(default)]` (on the field or on the struct). `#[kong(required = ...)]` overrides
/// this. A `#[kong(default = ...)]` alone keeps a non-`Option` field required: Kong fills
/// the default in when the config leaves the field out, and rejects an explicit `null`,
/// which the plugin could not deserialize.
///
/// # `#[kong(...)]` properties
///
/// | property | Kong property | example |
/// |---|---|---|
/// | `default = literal` | `default` | `default = "hello"`, `default = 5`, `default = -1.5`, `default = true`, `default = ["a", "b"]` |
/// | `required = bool` | `required` | `required = false` |
/// | `one_of = [...]` | `one_of` | `one_of = ["a", "b"]`, `one_of = [1, 2]` |
/// | `between = [min, max]` | `between` | `between = [1, 65535]` |
/// | `len_min = n`, `len_max = n` | `len_min`, `len_max` | `len_min = 0` (allows `""`) |
/// | `match = "pattern"`, `not_match = "pattern"` | `match`, `not_match` (Lua patterns) | `match = "^https?://"` |
/// | `referenceable` | `referenceable` (vault references) | |
/// | `encrypted` | `encrypted` (Kong Enterprise keyring) | |
/// | `description = "..."` | `description` (10 to 500 bytes) | |
/// | `skip` | — | leaves the field out of the schema; serde still deserializes it |
///
/// On a `Vec` or set field, `one_of`, `between`, `match`, `not_match` and `referenceable`
/// apply to the elements (Kong allows them only on strings and numbers); `len_min` and
/// `len_max` apply to the collection. On an integer field, `between` narrows the range the
/// type already has. Without `description`, the field's doc comment is used (lines joined
/// by spaces; left out if under 10 bytes, cut to 500).
///
/// `#[kong(skip)]` is for fields Kong fills in itself rather than the user: the keys Kong
/// adds to every config it sends (`route_id`, `service_id`, `consumer_id`,
/// `plugin_instance_name`, …), which a schema must not declare.
///
/// The compiler checks that each literal fits the field type (a string `default` on a `u32`
/// field is an error at the literal), that a default satisfies `one_of`, `between` and the
/// length limits, and reports unknown or repeated properties.
///
/// # serde attributes
///
/// `rename`, `rename_all` (all of serde's rules), `skip`, `skip_deserializing`, `default`
/// and `transparent` change the schema the same way they change deserialization;
/// `flatten` is rejected; other serde attributes are ignored.
#[proc_macro_derive(Schema, attributes(kong, serde))]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    schema::derive(input.into()).into()
}

/// Put on the `impl Plugin for YourConfig { ... }` block: fills in `Plugin::PHASES` with
/// the phase methods the block defines, in Kong's order, so Kong calls only those.
///
/// ```ignore
/// #[kong_pdk::plugin]
/// impl Plugin for Config {
///     async fn access(&self, kong: &mut Kong) -> PhaseResult { Ok(()) }
///     async fn log(&self, kong: &mut Kong) -> PhaseResult { Ok(()) }
/// }
/// // PHASES == &[Phase::Access, Phase::Log]
/// ```
///
/// The block may define the phase methods `certificate`, `rewrite`, `access`, `response`,
/// `preread` and `log`, the `init` hook and `FAIL_OPEN`; it must define at least one phase.
/// The macro takes no arguments: the version and priority go to `kong_pdk::run` in `main`.
#[proc_macro_attribute]
pub fn plugin(args: TokenStream, input: TokenStream) -> TokenStream {
    plugin::expand(args.into(), input.into()).into()
}
