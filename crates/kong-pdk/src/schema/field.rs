//! [`Field`]: a typed model of one Kong schema field definition.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Number, Value};

/// The `type` of a Kong schema field that a Rust type can map to.
///
/// Kong also knows `foreign`, `function` and `json`; no Rust config type maps to them,
/// so they only appear in schemas checked by [`check_plugin_schema`](super::check_plugin_schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldType {
    /// `"string"`: a UTF-8 string.
    String,
    /// `"boolean"`.
    Boolean,
    /// `"integer"`: a Lua number without a fractional part.
    Integer,
    /// `"number"`: a Lua number (a double).
    Number,
    /// `"array"`: a JSON array; the definition has `elements`.
    Array,
    /// `"set"`: a JSON array whose duplicates Kong removes; the definition has `elements`.
    Set,
    /// `"map"`: a JSON object; the definition has `keys` and `values`.
    Map,
    /// `"record"`: a JSON object with named fields, in declaration order.
    Record,
}

impl FieldType {
    /// The name Kong uses for this type (the value of `"type"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Array => "array",
            FieldType::Set => "set",
            FieldType::Map => "map",
            FieldType::Record => "record",
        }
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kong's definition of one schema field: its type plus the field properties Kong
/// understands (`required`, `default`, validators, nested definitions).
///
/// Built with the constructors ([`Field::string`], [`Field::array`], [`Field::record`], …)
/// and the builder methods below; `#[derive(Schema)]` generates exactly such calls.
/// It serializes to Kong's JSON form with only the properties that are set, always in
/// the same order, e.g. `{"type":"string","required":true,"default":"hello"}`; a record
/// serializes its fields as Kong's array of single-key objects, in declaration order:
/// `{"type":"record","fields":[{"a":{…}},{"b":{…}}]}`.
///
/// ```
/// use kong_pdk::schema::Field;
///
/// let field = Field::array(Field::string())
///     .one_of(["GET", "POST"]) // on an array, value validators apply to its elements
///     .len_min(1)
///     .description("HTTP methods the plugin runs for");
/// assert_eq!(
///     serde_json::to_string(&field).unwrap(),
///     r#"{"type":"array","description":"HTTP methods the plugin runs for","len_min":1,"elements":{"type":"string","one_of":["GET","POST"]}}"#,
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    type_: FieldType,
    description: Option<String>,
    required: Option<bool>,
    default: Option<Value>,
    one_of: Option<Vec<Value>>,
    between: Option<(Number, Number)>,
    len_min: Option<u64>,
    len_max: Option<u64>,
    match_: Option<String>,
    not_match: Option<String>,
    referenceable: bool,
    encrypted: bool,
    elements: Option<Box<Field>>,
    keys: Option<Box<Field>>,
    values: Option<Box<Field>>,
    fields: Vec<(String, Field)>,
}

impl Field {
    /// A field of the given type with no properties set.
    ///
    /// Prefer the typed constructors: an `array`, `set` or `map` made this way has no
    /// `elements`/`keys`/`values`, which Kong rejects.
    pub fn new(type_: FieldType) -> Field {
        Field {
            type_,
            description: None,
            required: None,
            default: None,
            one_of: None,
            between: None,
            len_min: None,
            len_max: None,
            match_: None,
            not_match: None,
            referenceable: false,
            encrypted: false,
            elements: None,
            keys: None,
            values: None,
            fields: Vec::new(),
        }
    }

    /// `{"type":"string"}`. Note that Kong rejects the empty string unless `len_min` is `0`.
    pub fn string() -> Field {
        Field::new(FieldType::String)
    }

    /// `{"type":"boolean"}`.
    pub fn boolean() -> Field {
        Field::new(FieldType::Boolean)
    }

    /// `{"type":"integer"}`.
    pub fn integer() -> Field {
        Field::new(FieldType::Integer)
    }

    /// `{"type":"number"}`.
    pub fn number() -> Field {
        Field::new(FieldType::Number)
    }

    /// `{"type":"array","elements":…}`.
    pub fn array(elements: Field) -> Field {
        let mut field = Field::new(FieldType::Array);
        field.elements = Some(Box::new(elements));
        field
    }

    /// `{"type":"set","elements":…}`.
    pub fn set(elements: Field) -> Field {
        let mut field = Field::new(FieldType::Set);
        field.elements = Some(Box::new(elements));
        field
    }

    /// `{"type":"map","keys":…,"values":…}`.
    pub fn map(keys: Field, values: Field) -> Field {
        let mut field = Field::new(FieldType::Map);
        field.keys = Some(Box::new(keys));
        field.values = Some(Box::new(values));
        field
    }

    /// `{"type":"record","fields":[]}`; add fields with [`Field::field`].
    pub fn record() -> Field {
        Field::new(FieldType::Record)
    }

    /// Appends a named field to a record.
    ///
    /// # Panics
    /// If `self` is not a record: only records have named fields.
    pub fn field(mut self, name: impl Into<String>, field: Field) -> Field {
        let name = name.into();
        assert!(
            self.type_ == FieldType::Record,
            "Field::field({name:?}): a field of type '{}' has no named fields; only a record has",
            self.type_
        );
        self.fields.push((name, field));
        self
    }

    /// Sets Kong's `required`: Kong rejects a config where the value is missing or `null`
    /// (after filling in `default`).
    pub fn required(mut self, required: bool) -> Field {
        self.required = Some(required);
        self
    }

    /// Sets Kong's `default`: the value Kong stores when the config leaves the field out.
    pub fn default_value(mut self, value: impl Into<Value>) -> Field {
        self.default = Some(value.into());
        self
    }

    /// Sets Kong's `one_of`: the value must equal one of these.
    ///
    /// On an `array` or `set` field this applies to its elements (Kong accepts `one_of`
    /// only on strings and numbers).
    pub fn one_of<V: Into<Value>>(mut self, values: impl IntoIterator<Item = V>) -> Field {
        let values = values.into_iter().map(Into::into).collect();
        self.scalar_mut().one_of = Some(values);
        self
    }

    /// Sets Kong's `between`: the number must lie in `[min, max]`, both ends included.
    ///
    /// If the type already limits the range (`u8` maps to `between [0, 255]`), the result
    /// is the intersection, so Kong never accepts a value that the Rust type cannot hold.
    /// On an `array` or `set` field this applies to its elements.
    pub fn between(mut self, min: impl Into<Number>, max: impl Into<Number>) -> Field {
        let (mut min, mut max) = (min.into(), max.into());
        let target = self.scalar_mut();
        if let Some((old_min, old_max)) = target.between.take() {
            if as_f64(&old_min) > as_f64(&min) {
                min = old_min;
            }
            if as_f64(&old_max) < as_f64(&max) {
                max = old_max;
            }
        }
        target.between = Some((min, max));
        self
    }

    /// Sets Kong's `len_min`: the minimum length of a string (in bytes), array, set or map.
    ///
    /// Kong rejects empty strings unless a string field says `len_min = 0`.
    pub fn len_min(mut self, len: u64) -> Field {
        self.len_min = Some(len);
        self
    }

    /// Sets Kong's `len_max`: the maximum length of a string (in bytes), array, set or map.
    pub fn len_max(mut self, len: u64) -> Field {
        self.len_max = Some(len);
        self
    }

    /// Sets Kong's `match`: the string must match this Lua pattern (unanchored unless the
    /// pattern uses `^`/`$`). On an `array` or `set` field this applies to its elements.
    pub fn match_pattern(mut self, pattern: impl Into<String>) -> Field {
        self.scalar_mut().match_ = Some(pattern.into());
        self
    }

    /// Sets Kong's `not_match`: the string must not match this Lua pattern.
    /// On an `array` or `set` field this applies to its elements.
    pub fn not_match_pattern(mut self, pattern: impl Into<String>) -> Field {
        self.scalar_mut().not_match = Some(pattern.into());
        self
    }

    /// Sets Kong's `referenceable`: the string may be a vault reference
    /// (`{vault://env/my-secret}`), which Kong resolves before the plugin sees the config.
    /// On an `array` or `set` field this applies to its elements.
    pub fn referenceable(mut self) -> Field {
        self.scalar_mut().referenceable = true;
        self
    }

    /// Sets Kong's `encrypted`: Kong Enterprise stores the value encrypted at rest
    /// (when its keyring is enabled); open-source Kong ignores it.
    pub fn encrypted(mut self) -> Field {
        self.encrypted = true;
        self
    }

    /// Sets Kong's `description` (shown by Kong Manager and Konnect).
    /// Kong requires 10 to 500 bytes.
    pub fn description(mut self, description: impl Into<String>) -> Field {
        self.description = Some(description.into());
        self
    }

    /// The field's Kong type.
    pub fn field_type(&self) -> FieldType {
        self.type_
    }

    /// Kong's `required`, if set.
    pub fn is_required(&self) -> Option<bool> {
        self.required
    }

    /// Kong's `default`, if set.
    pub fn default(&self) -> Option<&Value> {
        self.default.as_ref()
    }

    /// The named fields of a record, in declaration order (empty for other types).
    pub fn fields(&self) -> &[(String, Field)] {
        &self.fields
    }

    /// The `elements` definition of an array or set.
    pub fn elements(&self) -> Option<&Field> {
        self.elements.as_deref()
    }

    /// The Kong JSON definition, as serialized.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a Field always serializes")
    }

    /// Where value validators go: the elements of an array or set, else the field itself.
    fn scalar_mut(&mut self) -> &mut Field {
        if matches!(self.type_, FieldType::Array | FieldType::Set) && self.elements.is_some() {
            self.elements.as_deref_mut().expect("checked above")
        } else {
            self
        }
    }
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.type_.as_str())?;
        if let Some(description) = &self.description {
            map.serialize_entry("description", description)?;
        }
        if let Some(required) = self.required {
            map.serialize_entry("required", &required)?;
        }
        if let Some(default) = &self.default {
            map.serialize_entry("default", default)?;
        }
        if let Some(one_of) = &self.one_of {
            map.serialize_entry("one_of", one_of)?;
        }
        if let Some((min, max)) = &self.between {
            map.serialize_entry("between", &[min, max])?;
        }
        if let Some(len_min) = self.len_min {
            map.serialize_entry("len_min", &len_min)?;
        }
        if let Some(len_max) = self.len_max {
            map.serialize_entry("len_max", &len_max)?;
        }
        if let Some(pattern) = &self.match_ {
            map.serialize_entry("match", pattern)?;
        }
        if let Some(pattern) = &self.not_match {
            map.serialize_entry("not_match", pattern)?;
        }
        if self.referenceable {
            map.serialize_entry("referenceable", &true)?;
        }
        if self.encrypted {
            map.serialize_entry("encrypted", &true)?;
        }
        if let Some(elements) = &self.elements {
            map.serialize_entry("elements", elements)?;
        }
        if let Some(keys) = &self.keys {
            map.serialize_entry("keys", keys)?;
        }
        if let Some(values) = &self.values {
            map.serialize_entry("values", values)?;
        }
        if self.type_ == FieldType::Record {
            map.serialize_entry("fields", &RecordFields(&self.fields))?;
        }
        map.end()
    }
}

/// Kong's `fields` array: `[{"name": {definition}}, …]`.
struct RecordFields<'a>(&'a [(String, Field)]);

impl Serialize for RecordFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, field) in self.0 {
            seq.serialize_element(&SingleEntry(name, field))?;
        }
        seq.end()
    }
}

struct SingleEntry<'a>(&'a str, &'a Field);

impl Serialize for SingleEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}
