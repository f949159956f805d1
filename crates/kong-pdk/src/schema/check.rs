//! Checking a plugin schema the way Kong's metaschema does, and validating values against
//! field definitions the way Kong's schema library does.

use std::fmt::Display;

use serde_json::{Map, Value};

use super::lua_pattern;

/// Keys Kong adds to every plugin config it sends to a plugin server, so a config field
/// must not use them as names.
pub const RESERVED_CONFIG_FIELDS: &[&str] = &[
    "route_id",
    "service_id",
    "consumer_id",
    "plugin_instance_name",
    "__plugin_id",
    "__ws_id",
    "__key__",
    "__seq__",
];

/// The fields of Kong's `plugins` entity, with their types: a plugin subschema may only
/// specialize these, and must keep their types.
const PLUGIN_ENTITY_FIELDS: &[(&str, &str)] = &[
    ("id", "string"),
    ("name", "string"),
    ("instance_name", "string"),
    ("created_at", "integer"),
    ("updated_at", "integer"),
    ("route", "foreign"),
    ("service", "foreign"),
    ("consumer", "foreign"),
    ("config", "record"),
    ("protocols", "set"),
    ("enabled", "boolean"),
    ("tags", "set"),
];

/// Every field type Kong knows.
const FIELD_TYPES: &[&str] = &[
    "array", "boolean", "foreign", "function", "integer", "json", "map", "number", "record", "set",
    "string",
];

/// Kong's entity checkers (the keys of an `entity_checks` entry).
const ENTITY_CHECKERS: &[&str] = &[
    "at_least_one_of",
    "conditional",
    "conditional_at_least_one_of",
    "custom_entity_check",
    "distinct",
    "mutually_exclusive",
    "mutually_exclusive_sets",
    "mutually_required",
    "only_one_of",
];

/// Checks a plugin subschema (the `Schema` of a `-dump`) against the rules Kong applies
/// when it loads a plugin (its metaschema for plugin subschemas), so a schema that passes
/// here is one Kong accepts.
///
/// Checked: the shape (`name`, `fields` with a `config` record, only Kong's plugin fields at
/// the top level, with their types); every field definition (a known `type`, only known
/// properties, each property with a value of the right kind and allowed for the type,
/// `elements` for arrays and sets, `keys` and `values` for maps, `fields` for records,
/// `between` with two ordered numbers, `one_of` values of the field's type, `description`
/// of 10 to 500 bytes, well-formed Lua patterns); every `default` against its own field
/// (type, `one_of`, `between`, lengths, patterns), as Kong does; unique field names; no
/// config field named like the keys Kong adds to configs ([`RESERVED_CONFIG_FIELDS`]).
///
/// The errors are `path: message` strings in a stable order, e.g.
/// `config.port.default: value should be between 0 and 65535`.
pub fn check_plugin_schema(schema: &Value) -> Result<(), Vec<String>> {
    let mut checker = Checker::default();
    checker.subschema(schema);
    if checker.errors.is_empty() {
        Ok(())
    } else {
        Err(checker.errors)
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
}

impl Checker {
    fn error(&mut self, path: &str, message: impl Display) {
        self.errors.push(format!("{path}: {message}"));
    }

    fn subschema(&mut self, schema: &Value) {
        let Some(schema) = schema.as_object() else {
            self.error("schema", "expected an object");
            return;
        };
        for key in sorted_keys(schema) {
            if !matches!(
                key,
                "name" | "fields" | "entity_checks" | "shorthand_fields" | "transformations"
            ) {
                self.error(key, "unknown field");
            }
        }
        match schema.get("name") {
            None | Some(Value::Null) => self.error("name", "required field missing"),
            Some(Value::String(name)) if name.is_empty() => {
                self.error("name", "length must be at least 1")
            }
            Some(Value::String(_)) => {}
            Some(_) => self.error("name", "expected a string"),
        }
        if let Some(checks) = schema.get("entity_checks") {
            self.entity_checks("entity_checks", checks);
        }
        if schema.contains_key("shorthand_fields") {
            self.error(
                "shorthand_fields",
                "shorthand fields need Lua functions, which a JSON schema cannot carry",
            );
        }
        if schema.contains_key("transformations") {
            self.error(
                "transformations",
                "transformations need Lua functions, which a JSON schema cannot carry",
            );
        }
        let fields = match schema.get("fields") {
            None | Some(Value::Null) => {
                self.error("fields", "required field missing");
                return;
            }
            Some(Value::Array(fields)) => fields,
            Some(_) => {
                self.error("fields", "expected an array");
                return;
            }
        };
        let mut has_config = false;
        for (name, definition) in self.field_list("fields", "", fields) {
            let Some(&(_, parent_type)) = PLUGIN_ENTITY_FIELDS.iter().find(|(n, _)| *n == name)
            else {
                self.error(
                    name,
                    "cannot create a new field: a plugin schema may only specialize the fields \
                     of Kong's plugins entity (config, protocols, consumer, route, service, …)",
                );
                continue;
            };
            let type_ = definition.get("type").and_then(Value::as_str);
            if type_.is_some_and(|t| t != parent_type) {
                self.error(
                    name,
                    format_args!(
                        "cannot change type in a specialized field: Kong's plugin field '{name}' \
                         is a '{parent_type}'"
                    ),
                );
                continue;
            }
            self.field(name, definition);
            if name == "config" {
                has_config = true;
                if let Some(Value::Array(config_fields)) = definition.get("fields") {
                    self.reserved_names(config_fields);
                }
            }
        }
        if !has_config {
            self.error(
                "config",
                "required field missing: a plugin schema must define a 'config' record",
            );
        }
    }

    fn reserved_names(&mut self, config_fields: &[Value]) {
        for entry in config_fields {
            let Some(entry) = entry.as_object().filter(|e| e.len() == 1) else {
                continue;
            };
            let name = entry.keys().next().map(String::as_str).unwrap_or_default();
            if RESERVED_CONFIG_FIELDS.contains(&name) {
                self.error(
                    &format!("config.{name}"),
                    format_args!(
                        "'{name}' is a reserved name: Kong adds it to every plugin config it sends"
                    ),
                );
            }
        }
    }

    /// The entries of a `fields` array as (name, definition) pairs, reporting malformed
    /// entries and duplicate names.
    fn field_list<'v>(
        &mut self,
        path: &str,
        prefix: &str,
        fields: &'v [Value],
    ) -> Vec<(&'v str, &'v Value)> {
        let mut list: Vec<(&str, &Value)> = Vec::new();
        for (index, entry) in fields.iter().enumerate() {
            match entry.as_object() {
                Some(entry) if entry.len() == 1 => {
                    let (name, definition) = entry.iter().next().expect("one entry");
                    if name.is_empty() {
                        self.error(
                            &format!("{path}[{index}]"),
                            "a field name must not be empty",
                        );
                    } else if list.iter().any(|(n, _)| n == name) {
                        self.error(
                            &format!("{prefix}{name}"),
                            "duplicate field name: each name may appear once in 'fields'",
                        );
                    } else {
                        list.push((name, definition));
                    }
                }
                _ => self.error(
                    &format!("{path}[{index}]"),
                    "each entry in fields must be an object with one key, the field name",
                ),
            }
        }
        list
    }

    fn field(&mut self, path: &str, definition: &Value) {
        let errors_before = self.errors.len();
        let Some(def) = definition.as_object() else {
            self.error(path, "expected a field definition (an object)");
            return;
        };
        let type_ = match def.get("type") {
            None => {
                self.error(path, "missing type declaration");
                return;
            }
            Some(Value::String(t)) if FIELD_TYPES.contains(&t.as_str()) => t.as_str(),
            Some(Value::String(t)) => {
                self.error(
                    &format!("{path}.type"),
                    format_args!(
                        "invalid type '{t}': expected one of: {}",
                        FIELD_TYPES.join(", ")
                    ),
                );
                return;
            }
            Some(_) => {
                self.error(&format!("{path}.type"), "expected a string");
                return;
            }
        };

        let abstract_ = def.get("abstract") == Some(&Value::Bool(true));
        let required: &[&str] = match type_ {
            "array" | "set" => &["elements"],
            "map" => &["keys", "values"],
            "record" if !abstract_ => &["fields"],
            "json" => &["json_schema"],
            _ => &[],
        };
        for attr in required {
            if !def.contains_key(*attr) {
                self.error(
                    path,
                    format_args!("field of type '{type_}' must declare '{attr}'"),
                );
            }
        }

        for attr in sorted_keys(def) {
            if attr == "type" {
                continue;
            }
            let value = &def[attr];
            let attr_path = format!("{path}.{attr}");
            let Some(kind) = attribute_kind(attr) else {
                self.error(&attr_path, "unknown field");
                continue;
            };
            if let Some(types) = attribute_types(attr) {
                if !types.contains(&type_) {
                    self.error(
                        path,
                        format_args!("field of type '{type_}' cannot have attribute '{attr}'"),
                    );
                    continue;
                }
            }
            self.attribute(path, &attr_path, type_, kind, value);
        }

        if def.get("unique_across_ws") == Some(&Value::Bool(true))
            && def.get("unique") != Some(&Value::Bool(true))
        {
            self.error(path, "'unique_across_ws' needs 'unique' = true");
        }
        if let (Some(min), Some(max)) = (
            def.get("len_min").and_then(Value::as_u64),
            def.get("len_max").and_then(Value::as_u64),
        ) {
            if min > max {
                self.error(
                    path,
                    format_args!("len_min ({min}) is greater than len_max ({max})"),
                );
            }
        }

        // Kong validates `default` against the field itself; only meaningful once the
        // definition is sound.
        if self.errors.len() == errors_before {
            if let Some(default) = def.get("default") {
                let mut value_errors = Vec::new();
                validate_value(
                    definition,
                    default,
                    &format!("{path}.default"),
                    &mut value_errors,
                );
                self.errors.extend(value_errors);
            }
        }
    }

    fn attribute(&mut self, path: &str, attr_path: &str, type_: &str, kind: Kind, value: &Value) {
        match kind {
            Kind::Bool => {
                if !value.is_boolean() {
                    self.error(attr_path, "expected a boolean");
                }
            }
            Kind::Str => {
                if !value.is_string() {
                    self.error(attr_path, "expected a string");
                }
            }
            Kind::Any | Kind::Default => {}
            Kind::Number => {
                if !value.is_number() {
                    self.error(attr_path, "expected a number");
                }
            }
            Kind::Length => {
                if value.as_u64().is_none() {
                    self.error(attr_path, "expected a non-negative integer");
                }
            }
            Kind::Function => self.error(
                attr_path,
                "expected a function, which a JSON schema cannot carry",
            ),
            Kind::Description => match value.as_str() {
                Some(d) if d.len() < 10 => self.error(attr_path, "length must be at least 10"),
                Some(d) if d.len() > 500 => self.error(attr_path, "length must be at most 500"),
                Some(_) => {}
                None => self.error(attr_path, "expected a string"),
            },
            Kind::OnDelete => {
                if !matches!(value.as_str(), Some("restrict" | "cascade" | "null")) {
                    self.error(attr_path, "expected one of: restrict, cascade, null");
                }
            }
            Kind::Pattern => match value.as_str() {
                Some(pattern) => {
                    if let Err(e) = lua_pattern::check(pattern) {
                        self.error(attr_path, e);
                    }
                }
                None => self.error(attr_path, "expected a string"),
            },
            Kind::Between => self.between(attr_path, value),
            Kind::OneOf => self.one_of(attr_path, type_, value),
            Kind::MatchList => self.match_list(attr_path, value),
            Kind::MatchAny => self.match_any(attr_path, value),
            Kind::StringLists => {
                let ok = value.as_array().is_some_and(|lists| {
                    lists.iter().all(|list| {
                        list.as_array()
                            .is_some_and(|items| items.iter().all(Value::is_string))
                    })
                });
                if !ok {
                    self.error(attr_path, "expected an array of arrays of strings");
                }
            }
            Kind::Examples => {
                if !value.is_array() {
                    self.error(attr_path, "expected an array");
                }
            }
            Kind::Nested => {
                if value.is_object() {
                    self.field(attr_path, value);
                } else {
                    self.error(attr_path, "expected a field definition (an object)");
                }
            }
            Kind::Fields => match value.as_array() {
                Some(fields) => {
                    for (name, definition) in
                        self.field_list(attr_path, &format!("{path}."), fields)
                    {
                        self.field(&format!("{path}.{name}"), definition);
                    }
                }
                None => self.error(attr_path, "expected an array"),
            },
            Kind::EntityChecks => self.entity_checks(attr_path, value),
            Kind::ShorthandFields => self.error(
                attr_path,
                "shorthand fields need Lua functions, which a JSON schema cannot carry",
            ),
            Kind::JsonSchema => {
                if !value.is_object() {
                    self.error(attr_path, "expected an object");
                }
            }
        }
    }

    fn between(&mut self, path: &str, value: &Value) {
        match value.as_array().map(Vec::as_slice) {
            Some([min, max]) => match (min.as_f64(), max.as_f64()) {
                (Some(lo), Some(hi)) if lo > hi => self.error(
                    path,
                    format_args!(
                        "the lower bound ({}) is greater than the upper bound ({})",
                        lua_number(min),
                        lua_number(max)
                    ),
                ),
                (Some(_), Some(_)) => {}
                _ => self.error(path, "expected an array of two numbers"),
            },
            Some(_) => self.error(path, "length must be 2"),
            None => self.error(path, "expected an array of two numbers"),
        }
    }

    fn one_of(&mut self, path: &str, type_: &str, value: &Value) {
        let Some(options) = value.as_array() else {
            self.error(path, "expected an array");
            return;
        };
        if options.is_empty() {
            self.error(path, "must list at least one value");
        }
        for (index, option) in options.iter().enumerate() {
            if let Err(message) = check_type(type_, option) {
                self.error(&format!("{path}[{index}]"), message);
            }
        }
    }

    fn match_list(&mut self, path: &str, value: &Value) {
        let Some(items) = value.as_array() else {
            self.error(path, "expected an array");
            return;
        };
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            let Some(item) = item.as_object() else {
                self.error(&item_path, "expected a record");
                continue;
            };
            match item.get("pattern") {
                Some(Value::String(pattern)) => {
                    if let Err(e) = lua_pattern::check(pattern) {
                        self.error(&format!("{item_path}.pattern"), e);
                    }
                }
                None | Some(Value::Null) => {
                    self.error(&format!("{item_path}.pattern"), "required field missing")
                }
                Some(_) => self.error(&format!("{item_path}.pattern"), "expected a string"),
            }
            self.optional_string_keys(&item_path, item, &["pattern", "err"]);
        }
    }

    fn match_any(&mut self, path: &str, value: &Value) {
        let Some(item) = value.as_object() else {
            self.error(path, "expected a record");
            return;
        };
        match item.get("patterns").and_then(Value::as_array) {
            Some(patterns) => {
                for (index, pattern) in patterns.iter().enumerate() {
                    let pattern_path = format!("{path}.patterns[{index}]");
                    match pattern.as_str() {
                        Some(p) => {
                            if let Err(e) = lua_pattern::check(p) {
                                self.error(&pattern_path, e);
                            }
                        }
                        None => self.error(&pattern_path, "expected a string"),
                    }
                }
            }
            None => self.error(&format!("{path}.patterns"), "expected an array of strings"),
        }
        self.optional_string_keys(path, item, &["patterns", "err"]);
    }

    /// Reports keys other than `allowed`, and a non-string `err`.
    fn optional_string_keys(&mut self, path: &str, item: &Map<String, Value>, allowed: &[&str]) {
        for key in sorted_keys(item) {
            if !allowed.contains(&key) {
                self.error(&format!("{path}.{key}"), "unknown field");
            }
        }
        if item.get("err").is_some_and(|e| !e.is_string()) {
            self.error(&format!("{path}.err"), "expected a string");
        }
    }

    fn entity_checks(&mut self, path: &str, value: &Value) {
        let Some(checks) = value.as_array() else {
            self.error(path, "expected an array");
            return;
        };
        for (index, check) in checks.iter().enumerate() {
            let check_path = format!("{path}[{index}]");
            match check.as_object() {
                Some(check) if check.len() == 1 => {
                    let name = check.keys().next().expect("one entry");
                    if !ENTITY_CHECKERS.contains(&name.as_str()) {
                        self.error(
                            &check_path,
                            format_args!(
                                "unknown entity check '{name}': expected one of: {}",
                                ENTITY_CHECKERS.join(", ")
                            ),
                        );
                    } else if name == "custom_entity_check" {
                        self.error(
                            &check_path,
                            "custom_entity_check needs a Lua function, which a JSON schema cannot carry",
                        );
                    }
                }
                _ => self.error(
                    &check_path,
                    "each entity check must be an object with one key, the checker name",
                ),
            }
        }
    }
}

/// How the metaschema types a field property.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    Str,
    Any,
    Number,
    Length,
    Function,
    Description,
    OnDelete,
    Pattern,
    Between,
    OneOf,
    MatchList,
    MatchAny,
    StringLists,
    Examples,
    Default,
    Nested,
    Fields,
    EntityChecks,
    ShorthandFields,
    JsonSchema,
}

fn attribute_kind(attr: &str) -> Option<Kind> {
    Some(match attr {
        "required" | "auto" | "unique" | "unique_across_ws" | "abstract" | "generate_admin_api"
        | "immutable" | "encrypted" | "referenceable" | "is_regex" | "timestamp" | "uuid"
        | "legacy" => Kind::Bool,
        "reference" | "err" | "starts_with" => Kind::Str,
        "description" => Kind::Description,
        "examples" => Kind::Examples,
        "on_delete" => Kind::OnDelete,
        "default" => Kind::Default,
        "json_schema" => Kind::JsonSchema,
        "between" => Kind::Between,
        "eq" | "ne" | "contains" => Kind::Any,
        "gt" => Kind::Number,
        "len_eq" | "len_min" | "len_max" => Kind::Length,
        "match" | "not_match" => Kind::Pattern,
        "match_all" | "match_none" => Kind::MatchList,
        "match_any" => Kind::MatchAny,
        "one_of" | "not_one_of" => Kind::OneOf,
        "custom_validator" => Kind::Function,
        "mutually_exclusive_subsets" => Kind::StringLists,
        "elements" | "keys" | "values" => Kind::Nested,
        "fields" => Kind::Fields,
        "entity_checks" => Kind::EntityChecks,
        "shorthand_fields" => Kind::ShorthandFields,
        _ => return None,
    })
}

/// The field types a property is allowed on (`None`: any type).
fn attribute_types(attr: &str) -> Option<&'static [&'static str]> {
    const STRINGY: &[&str] = &["string"];
    const NUMERIC: &[&str] = &["integer", "number"];
    Some(match attr {
        "between" | "gt" | "timestamp" => NUMERIC,
        "len_eq" | "len_min" | "len_max" => &["string", "array", "set", "map"],
        "match" | "not_match" | "match_all" | "match_none" | "match_any" | "starts_with"
        | "is_regex" | "uuid" | "referenceable" => STRINGY,
        "one_of" | "not_one_of" => &["string", "number", "integer"],
        "contains" | "mutually_exclusive_subsets" => &["array", "set"],
        "unique" | "unique_across_ws" => &["string", "number", "integer", "foreign"],
        "abstract" => &[
            "string", "number", "integer", "record", "array", "set", "map",
        ],
        "json_schema" => &["json"],
        "elements" => &["array", "set"],
        "keys" | "values" => &["map"],
        "fields" | "entity_checks" | "shorthand_fields" => &["record"],
        "reference" | "on_delete" => &["foreign"],
        _ => return None,
    })
}

fn sorted_keys(map: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// Whether `value` has Kong type `type_` (for scalars and containers); Kong's message if not.
fn check_type(type_: &str, value: &Value) -> Result<(), &'static str> {
    let ok = match type_ {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => is_integer(value),
        "array" => value.is_array(),
        "set" => value.is_array(),
        "map" | "record" => value.is_object() || is_empty_array(value),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match type_ {
        "string" => "expected a string",
        "boolean" => "expected a boolean",
        "number" => "expected a number",
        "integer" => "expected an integer",
        "array" => "expected an array",
        "set" => "expected a set",
        "map" => "expected a map",
        _ => "expected a record",
    })
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

/// Lua cannot tell `[]` from `{}`: both decode to an empty table.
fn is_empty_array(value: &Value) -> bool {
    value.as_array().is_some_and(Vec::is_empty)
}

/// A number the way Lua's `tostring` shows it (`5`, `0.5`).
fn lua_number(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", f as i64)
            } else {
                format!("{f}")
            }
        }
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// Whether a string is a Kong vault reference such as `{vault://env/secret}`.
pub(crate) fn is_vault_reference(value: &str) -> bool {
    value.starts_with("{vault://") && value.ends_with('}')
}

/// Validates `value` against the field definition `definition` like Kong's
/// `Schema:validate_field`, pushing `path: message` errors.
///
/// A `null` value is an error only for a `required` field. Records report each failing
/// field under its own path; arrays, sets and maps report their first failing element
/// under their own path, as Kong does.
pub(crate) fn validate_value(
    definition: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    if let Err(message) = value_error(definition, value, path, errors) {
        errors.push(format!("{path}: {message}"));
    }
}

/// The error for one value; record fields push their own errors into `errors`.
fn value_error(
    def: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    if value.is_null() {
        if def.get("required") == Some(&Value::Bool(true)) {
            return Err("required field missing".to_owned());
        }
        return Ok(());
    }
    let type_ = def.get("type").and_then(Value::as_str).unwrap_or_default();
    match type_ {
        "function" => return Err("expected a function".to_owned()),
        "foreign" | "json" => return Ok(()),
        t if !FIELD_TYPES.contains(&t) => return Err(format!("invalid type: {t}")),
        _ => {}
    }
    check_type(type_, value).map_err(str::to_owned)?;

    match type_ {
        "array" | "set" => {
            let elements = def.get("elements").unwrap_or(&Value::Null);
            for item in value.as_array().into_iter().flatten() {
                if item.is_null() {
                    return Err("required field missing".to_owned());
                }
                element_error(elements, item)?;
            }
        }
        "map" => {
            let keys = def.get("keys").unwrap_or(&Value::Null);
            let values = def.get("values").unwrap_or(&Value::Null);
            for (key, item) in value.as_object().into_iter().flatten() {
                element_error(keys, &Value::String(key.clone()))?;
                if item.is_null() {
                    return Err("required field missing".to_owned());
                }
                element_error(values, item)?;
            }
        }
        "record" => {
            validate_record(def, value, path, errors);
            return Ok(());
        }
        // Kong resolves vault references later; the validators apply to the secret.
        "string"
            if def.get("referenceable") == Some(&Value::Bool(true))
                && value.as_str().is_some_and(is_vault_reference) =>
        {
            return Ok(());
        }
        _ => {}
    }
    run_validators(def, type_, value)
}

/// An element of an array, set or map: nested records report as one message.
fn element_error(def: &Value, value: &Value) -> Result<(), String> {
    let mut nested = Vec::new();
    value_error(def, value, "", &mut nested)?;
    match nested.first() {
        Some(first) => Err(first
            .trim_start_matches(": ")
            .trim_start_matches('.')
            .to_owned()),
        None => Ok(()),
    }
}

fn validate_record(def: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let empty = Map::new();
    let object = value.as_object().unwrap_or(&empty);
    let fields = record_fields(def);
    for key in sorted_keys(object) {
        if !fields.iter().any(|(name, _)| *name == key) {
            errors.push(format!("{path}.{key}: unknown field"));
        }
    }
    for (name, field) in fields {
        let field_path = format!("{path}.{name}");
        match object.get(name) {
            Some(item) => validate_value(field, item, &field_path, errors),
            None => {
                if field.get("default").is_some() {
                    continue;
                }
                if field.get("required") == Some(&Value::Bool(true)) {
                    if field.get("type").and_then(Value::as_str) == Some("record") {
                        // Kong expands a missing required record to its defaults.
                        validate_record(field, &Value::Object(Map::new()), &field_path, errors);
                    } else {
                        errors.push(format!("{field_path}: required field missing"));
                    }
                }
            }
        }
    }
}

/// The (name, definition) pairs of a record definition's `fields`.
pub(crate) fn record_fields(def: &Value) -> Vec<(&str, &Value)> {
    def.get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.as_object()?.iter().next())
        .map(|(name, field)| (name.as_str(), field))
        .collect()
}

/// Kong's field validators, in Kong's order; the first failure wins.
fn run_validators(def: &Value, type_: &str, value: &Value) -> Result<(), String> {
    let text = value.as_str();
    if let Some(wanted) = def.get("eq") {
        if !lua_eq(value, wanted) {
            return Err(format!("value must be {}", lua_number(wanted)));
        }
    }
    if let Some(unwanted) = def.get("ne") {
        if lua_eq(value, unwanted) {
            return Err(format!("value must not be {}", lua_number(value)));
        }
    }
    if let Some(options) = def.get("not_one_of").and_then(Value::as_array) {
        if options.iter().any(|o| lua_eq(value, o)) {
            return Err(format!("must not be one of: {}", lua_list(options)));
        }
    }
    if let Some(options) = def.get("one_of").and_then(Value::as_array) {
        if !options.iter().any(|o| lua_eq(value, o)) {
            return Err(format!("expected one of: {}", lua_list(options)));
        }
    }
    let number = value.as_f64();
    if let (Some(limit), Some(n)) = (def.get("gt").and_then(Value::as_f64), number) {
        if n <= limit {
            return Err(format!(
                "value must be greater than {}",
                lua_number(&def["gt"])
            ));
        }
    }
    if def.get("timestamp") == Some(&Value::Bool(true)) && number.is_some_and(|n| n <= 0.0) {
        return Err("expected a valid timestamp".to_owned());
    }
    if def.get("uuid") == Some(&Value::Bool(true)) && !text.is_some_and(is_uuid) {
        return Err("expected a valid UUID".to_owned());
    }
    if let (Some([min, max]), Some(n)) = (
        def.get("between")
            .and_then(Value::as_array)
            .map(Vec::as_slice),
        number,
    ) {
        if let (Some(lo), Some(hi)) = (min.as_f64(), max.as_f64()) {
            if n < lo || n > hi {
                return Err(format!(
                    "value should be between {} and {}",
                    lua_number(min),
                    lua_number(max)
                ));
            }
        }
    }
    let length = match value {
        Value::String(s) => Some(s.len() as u64),
        Value::Array(items) => Some(items.len() as u64),
        Value::Object(entries) => Some(entries.len() as u64),
        _ => None,
    };
    if let Some(len) = length {
        let len_min = def.get("len_min").and_then(Value::as_u64);
        // Kong rejects empty strings unless the field sets len_min.
        let len_min = len_min.or((type_ == "string").then_some(1));
        if let Some(n) = def.get("len_eq").and_then(Value::as_u64) {
            if len != n {
                return Err(format!("length must be {n}"));
            }
        }
        if let Some(n) = len_min {
            if len < n {
                return Err(format!("length must be at least {n}"));
            }
        }
        if let Some(n) = def.get("len_max").and_then(Value::as_u64) {
            if len > n {
                return Err(format!("length must be at most {n}"));
            }
        }
    }
    if let Some(text) = text {
        if let Some(prefix) = def.get("starts_with").and_then(Value::as_str) {
            if !text.starts_with(prefix) {
                return Err(format!("should start with: {prefix}"));
            }
        }
        if let Some(pattern) = def.get("not_match").and_then(Value::as_str) {
            if matches(text, pattern)? {
                return Err(format!("invalid value: {text}"));
            }
        }
        for item in def
            .get("match_none")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(pattern) = item.get("pattern").and_then(Value::as_str) {
                if matches(text, pattern)? {
                    return Err(custom_error(item, text));
                }
            }
        }
        if let Some(pattern) = def.get("match").and_then(Value::as_str) {
            if !matches(text, pattern)? {
                return Err(format!("invalid value: {text}"));
            }
        }
        for item in def
            .get("match_all")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(pattern) = item.get("pattern").and_then(Value::as_str) {
                if !matches(text, pattern)? {
                    return Err(custom_error(item, text));
                }
            }
        }
        if let Some(any) = def.get("match_any") {
            let patterns = any.get("patterns").and_then(Value::as_array);
            let mut matched = false;
            for pattern in patterns.into_iter().flatten().filter_map(Value::as_str) {
                if matches(text, pattern)? {
                    matched = true;
                    break;
                }
            }
            if !matched {
                return Err(custom_error(any, text));
            }
        }
    }
    if let (Some(wanted), Some(items)) = (def.get("contains"), value.as_array()) {
        if !items.iter().any(|item| lua_eq(item, wanted)) {
            return Err(format!("expected to contain: {}", lua_number(wanted)));
        }
    }
    Ok(())
}

fn matches(text: &str, pattern: &str) -> Result<bool, String> {
    lua_pattern::is_match(text, pattern).map_err(|e| format!("bad pattern '{pattern}': {e}"))
}

fn custom_error(item: &Value, text: &str) -> String {
    match item.get("err").and_then(Value::as_str) {
        Some(err) => err.to_owned(),
        None => format!("invalid value: {text}"),
    }
}

/// Lua's `==` on decoded JSON: numbers compare by value, tables by identity (never equal).
pub(crate) fn lua_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

/// `table.concat(options, ", ")`.
fn lua_list(options: &[Value]) -> String {
    options
        .iter()
        .map(lua_number)
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
