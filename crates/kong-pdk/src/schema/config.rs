//! Validating a plugin config against a plugin schema, the way Kong does when a plugin is
//! created: defaults filled in, then every field validated.

use serde_json::{Map, Value};

use super::check::{lua_eq, record_fields, validate_value};

/// Validates a plugin `config` against a plugin subschema (the `Schema` of a `-dump`) the
/// way Kong does when a plugin entity is created, and returns the config Kong would store
/// and send to the plugin.
///
/// Like Kong, it first completes the config: a missing field gets its `default`, a
/// missing field without one becomes `null` unless it is `required`, a missing required
/// record is built from its fields' defaults, and sets lose their duplicates. Then every
/// field is validated (type, `required`, `one_of`, `between`, lengths, patterns, unknown
/// fields). `config` may be `null` (no config given).
///
/// Errors are `config.path: message` strings in Kong's words, e.g.
/// `config.port: value should be between 0 and 65535` or
/// `config.message: required field missing`. The schema itself is not checked here; use
/// [`check_plugin_schema`](super::check_plugin_schema) for that.
///
/// ```
/// use serde_json::json;
///
/// let schema = json!({"name": "hello", "fields": [{"config": {"type": "record", "fields": [
///     {"message": {"type": "string", "required": true, "default": "hello"}},
///     {"port": {"type": "integer", "between": [1, 65535]}},
/// ]}}]});
/// let config = kong_pdk::schema::validate_config(&schema, &json!({})).unwrap();
/// assert_eq!(config, json!({"message": "hello", "port": null}));
///
/// let errors = kong_pdk::schema::validate_config(&schema, &json!({"port": 0})).unwrap_err();
/// assert_eq!(errors, ["config.port: value should be between 1 and 65535"]);
/// ```
pub fn validate_config(schema: &Value, config: &Value) -> Result<Value, Vec<String>> {
    let definition = schema
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|entry| entry.get("config"))
        .ok_or_else(|| vec!["schema: the plugin schema has no 'config' field".to_owned()])?;
    let input = match config {
        Value::Null => Map::new(),
        Value::Object(object) => object.clone(),
        Value::Array(items) if items.is_empty() => Map::new(),
        _ => return Err(vec!["config: expected a record".to_owned()]),
    };
    let completed = Value::Object(complete_record(definition, input));
    let mut errors = Vec::new();
    validate_value(definition, &completed, "config", &mut errors);
    if errors.is_empty() {
        Ok(completed)
    } else {
        Err(errors)
    }
}

/// Fills in the missing fields of a record (Kong's `process_auto_fields` on insert).
/// Unknown keys stay, so that validation reports them.
fn complete_record(definition: &Value, mut object: Map<String, Value>) -> Map<String, Value> {
    for (name, field) in record_fields(definition) {
        let value = object.remove(name);
        if let Some(value) = complete_field(field, value) {
            object.insert(name.to_owned(), value);
        }
    }
    object
}

fn complete_field(field: &Value, value: Option<Value>) -> Option<Value> {
    let required = field.get("required") == Some(&Value::Bool(true));
    let type_ = field.get("type").and_then(Value::as_str);
    if type_ == Some("record") {
        let base = match value {
            Some(value) => value,
            None => match field.get("default") {
                Some(default) => default.clone(),
                None if required => Value::Object(Map::new()),
                None => return Some(Value::Null),
            },
        };
        return Some(match base {
            Value::Object(object) => Value::Object(complete_record(field, object)),
            Value::Array(items) if items.is_empty() => {
                Value::Object(complete_record(field, Map::new()))
            }
            other => other,
        });
    }
    let value = match value {
        Some(value) => value,
        None => match field.get("default") {
            Some(default) => default.clone(),
            None if required => return None,
            None => return Some(Value::Null),
        },
    };
    // Kong fills defaults inside every element of arrays, sets and maps too
    // (kong/db/schema/init.lua, adjust_field_for_context).
    let value = match (type_, value, field.get("elements").or(field.get("values"))) {
        (Some("array" | "set"), Value::Array(items), Some(elements)) => Value::Array(
            items
                .into_iter()
                .map(|item| complete_field(elements, Some(item)).unwrap_or(Value::Null))
                .collect(),
        ),
        (Some("map"), Value::Object(entries), Some(values)) => Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k, complete_field(values, Some(v)).unwrap_or(Value::Null)))
                .collect(),
        ),
        (_, value, _) => value,
    };
    Some(match (type_, value) {
        (Some("set"), Value::Array(items)) => {
            let mut unique: Vec<Value> = Vec::with_capacity(items.len());
            for item in items {
                if !unique
                    .iter()
                    .any(|seen| lua_eq(seen, &item) || *seen == item)
                {
                    unique.push(item);
                }
            }
            Value::Array(unique)
        }
        (_, value) => value,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::validate_config;

    fn schema() -> Value {
        json!({"name": "t", "fields": [{"config": {"type": "record", "fields": [
            {"message": {"type": "string", "required": true, "default": "hello"}},
            {"name": {"type": "string", "required": true}},
            {"maybe": {"type": "integer", "between": [0, 10]}},
            {"tags": {"type": "set", "elements": {"type": "string"}, "default": []}},
            {"upstream": {"type": "record", "required": true, "fields": [
                {"host": {"type": "string", "default": "localhost"}},
                {"port": {"type": "integer", "default": 80, "between": [1, 65535]}},
            ]}},
            {"fallback": {"type": "record", "fields": [
                {"host": {"type": "string", "required": true}},
            ]}},
            {"mode": {"type": "string", "one_of": ["a", "b"], "default": "a"}},
        ]}}]})
    }

    #[test]
    fn fills_defaults_like_kong() {
        let config = validate_config(&schema(), &json!({"name": "n", "tags": ["x", "y", "x"]}));
        assert_eq!(
            config,
            Ok(json!({
                "message": "hello", "name": "n", "maybe": null, "tags": ["x", "y"],
                "upstream": {"host": "localhost", "port": 80}, "fallback": null, "mode": "a",
            }))
        );
    }

    #[test]
    fn reports_kong_errors() {
        let errors = validate_config(
            &schema(),
            &json!({
                "message": null, "maybe": 11, "extra": 1, "mode": "c",
                "upstream": {"port": 0}, "fallback": {},
            }),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "config.extra: unknown field",
                "config.message: required field missing",
                "config.name: required field missing",
                "config.maybe: value should be between 0 and 10",
                "config.upstream.port: value should be between 1 and 65535",
                "config.fallback.host: required field missing",
                "config.mode: expected one of: a, b",
            ]
        );
        assert_eq!(
            validate_config(&schema(), &json!("x")),
            Err(vec!["config: expected a record".to_owned()])
        );
        assert!(validate_config(&json!({"fields": []}), &json!({})).is_err());
    }

    #[test]
    fn fills_defaults_inside_arrays_and_maps_of_records() {
        let element = json!({"type": "record", "fields": [
            {"key": {"type": "string", "required": true}},
            {"tenant": {"type": "string", "required": true, "default": "default"}},
        ]});
        let schema = json!({"name": "t", "fields": [{"config": {"type": "record", "fields": [
            {"keys": {"type": "array", "elements": element}},
            {"by_name": {"type": "map", "keys": {"type": "string"}, "values": element}},
        ]}}]});
        let config = json!({
            "keys": [{"key": "a"}, {"key": "b", "tenant": "t"}],
            "by_name": {"x": {"key": "c"}},
        });
        assert_eq!(
            validate_config(&schema, &config),
            Ok(json!({
                "keys": [{"key": "a", "tenant": "default"}, {"key": "b", "tenant": "t"}],
                "by_name": {"x": {"key": "c", "tenant": "default"}},
            }))
        );
        let errors = validate_config(&schema, &json!({"keys": [{}]})).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("key")), "{errors:?}");
    }

    #[test]
    fn accepts_null_config_when_nothing_is_required() {
        let schema = json!({"name": "t", "fields": [{"config": {"type": "record", "fields": [
            {"a": {"type": "boolean", "default": true}},
        ]}}]});
        assert_eq!(
            validate_config(&schema, &Value::Null),
            Ok(json!({"a": true}))
        );
    }
}
