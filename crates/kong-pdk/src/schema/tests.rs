use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use super::*;

fn json_of<T: Schema>() -> Value {
    T::field().to_json()
}

#[test]
fn scalar_types() {
    assert_eq!(json_of::<String>(), json!({"type": "string"}));
    assert_eq!(json_of::<bool>(), json!({"type": "boolean"}));
    assert_eq!(json_of::<f32>(), json!({"type": "number"}));
    assert_eq!(json_of::<f64>(), json!({"type": "number"}));
}

#[test]
fn integer_types_carry_their_range() {
    let safe = MAX_SAFE_INTEGER;
    assert_eq!(safe, 9_007_199_254_740_991);
    let cases: [(Value, i64, i64); 10] = [
        (json_of::<i8>(), -128, 127),
        (json_of::<i16>(), -32768, 32767),
        (json_of::<i32>(), -2_147_483_648, 2_147_483_647),
        (json_of::<i64>(), -safe, safe),
        (json_of::<isize>(), -safe, safe),
        (json_of::<u8>(), 0, 255),
        (json_of::<u16>(), 0, 65535),
        (json_of::<u32>(), 0, 4_294_967_295),
        (json_of::<u64>(), 0, safe),
        (json_of::<usize>(), 0, safe),
    ];
    for (field, min, max) in cases {
        assert_eq!(field, json!({"type": "integer", "between": [min, max]}));
    }
}

#[test]
fn wrappers_and_collections() {
    fn optional<T: Schema>() -> bool {
        T::OPTIONAL
    }
    assert!(optional::<Option<String>>());
    assert!(!optional::<String>());
    assert!(optional::<Box<Option<u8>>>());
    assert!(!optional::<Vec<Option<u8>>>());
    assert_eq!(json_of::<Option<String>>(), json!({"type": "string"}));
    assert_eq!(json_of::<Box<bool>>(), json!({"type": "boolean"}));
    assert_eq!(
        json_of::<Vec<String>>(),
        json!({"type": "array", "elements": {"type": "string"}})
    );
    assert_eq!(
        json_of::<[bool; 3]>(),
        json!({"type": "array", "len_min": 3, "len_max": 3, "elements": {"type": "boolean"}})
    );
    assert_eq!(
        json_of::<HashSet<String>>(),
        json!({"type": "set", "elements": {"type": "string"}})
    );
    assert_eq!(
        json_of::<BTreeSet<u8>>(),
        json!({"type": "set", "elements": {"type": "integer", "between": [0, 255]}})
    );
    let map = json!({"type": "map", "keys": {"type": "string"}, "values": {"type": "number"}});
    assert_eq!(json_of::<HashMap<String, f64>>(), map);
    assert_eq!(json_of::<BTreeMap<String, f64>>(), map);
    assert_eq!(
        json_of::<Vec<Vec<Option<String>>>>(),
        json!({"type": "array", "elements": {"type": "array", "elements": {"type": "string"}}})
    );
}

#[test]
fn serialization_is_ordered_and_sparse() {
    let field = Field::record()
        .field("b", Field::string().required(true).default_value("x"))
        .field(
            "a",
            Field::integer()
                .between(1, 10)
                .description("a number of things"),
        );
    assert_eq!(
        serde_json::to_string(&field).unwrap(),
        r#"{"type":"record","fields":[{"b":{"type":"string","required":true,"default":"x"}},{"a":{"type":"integer","description":"a number of things","between":[1,10]}}]}"#
    );
    assert_eq!(
        serde_json::to_string(&Field::record()).unwrap(),
        r#"{"type":"record","fields":[]}"#
    );
    let every = Field::string()
        .encrypted()
        .referenceable()
        .not_match_pattern("%s")
        .match_pattern("^a")
        .len_max(9)
        .len_min(0)
        .one_of(["a", "ab"])
        .default_value("a")
        .required(false)
        .description("every property");
    assert_eq!(
        serde_json::to_string(&every).unwrap(),
        r#"{"type":"string","description":"every property","required":false,"default":"a","one_of":["a","ab"],"len_min":0,"len_max":9,"match":"^a","not_match":"%s","referenceable":true,"encrypted":true}"#
    );
}

#[test]
fn value_validators_apply_to_elements_of_arrays_and_sets() {
    let field = Vec::<String>::field()
        .one_of(["GET", "POST"])
        .match_pattern("^%u+$")
        .referenceable()
        .len_min(1);
    assert_eq!(
        field.to_json(),
        json!({
            "type": "array",
            "len_min": 1,
            "elements": {"type": "string", "one_of": ["GET", "POST"], "match": "^%u+$", "referenceable": true},
        })
    );
    let set = HashSet::<u16>::field().between(1, 1024);
    assert_eq!(
        set.to_json(),
        json!({"type": "set", "elements": {"type": "integer", "between": [1, 1024]}})
    );
}

#[test]
fn between_narrows_the_type_range() {
    assert_eq!(
        u8::field().between(-5, 10).to_json()["between"],
        json!([0, 10])
    );
    assert_eq!(
        u8::field().between(3, 1000).to_json()["between"],
        json!([3, 255])
    );
    assert_eq!(
        f64::field().between(-5, 10).to_json()["between"],
        json!([-5, 10])
    );
    let half = serde_json::Number::from_f64(0.5).unwrap();
    assert_eq!(
        f64::field().between(half, 1).to_json()["between"],
        json!([0.5, 1])
    );
}

#[test]
#[should_panic(expected = "only a record has")]
fn named_fields_only_on_records() {
    let _ = Field::string().field("x", Field::string());
}

#[test]
fn plugin_schema_wraps_the_config_record() {
    struct Config;
    impl Schema for Config {
        fn field() -> Field {
            Field::record().field("message", Field::string().required(true))
        }
    }
    let schema = plugin_schema::<Config>("hello");
    assert_eq!(
        schema,
        json!({
            "name": "hello",
            "fields": [{"config": {"type": "record", "fields": [
                {"message": {"type": "string", "required": true}},
            ]}}],
        })
    );
    assert_eq!(check_plugin_schema(&schema), Ok(()));
}

// ---- check_plugin_schema ----

/// A plugin schema whose config has these fields.
fn with_config_fields(fields: Value) -> Value {
    json!({"name": "test", "fields": [{"config": {"type": "record", "fields": fields}}]})
}

/// A plugin schema whose config has one field `f` defined as `definition`.
fn with_field(definition: Value) -> Value {
    with_config_fields(json!([{ "f": definition }]))
}

fn errors(schema: &Value) -> Vec<String> {
    check_plugin_schema(schema).expect_err("the schema should be rejected")
}

fn assert_rejected(schema: Value, expected: &str) {
    let errors = errors(&schema);
    assert!(
        errors.iter().any(|e| e == expected),
        "expected error {expected:?}, got {errors:#?}\nfor {schema:#}"
    );
}

#[test]
fn accepts_good_schemas() {
    let good = [
        with_config_fields(json!([])),
        with_field(json!({"type": "string", "required": true, "default": "hi", "len_max": 5})),
        with_field(json!({"type": "string", "default": "", "len_min": 0})),
        with_field(json!({"type": "string", "one_of": ["a", "b"], "default": "b"})),
        with_field(json!({"type": "string", "match": "^[%w-]+$", "default": "x-id"})),
        with_field(
            json!({"type": "string", "not_match": "%s", "referenceable": true, "encrypted": true}),
        ),
        with_field(json!({"type": "string", "description": "exactly ten"})),
        with_field(json!({"type": "integer", "between": [0, 65535], "default": 8000})),
        with_field(json!({"type": "integer", "one_of": [1, 2, 3], "default": 2})),
        with_field(json!({"type": "number", "between": [0.5, 1.5], "default": 1})),
        with_field(json!({"type": "boolean", "default": false})),
        with_field(json!({"type": "array", "elements": {"type": "string"}, "default": ["a"]})),
        with_field(json!({"type": "array", "elements": {"type": "string"}, "default": []})),
        with_field(json!({"type": "set", "elements": {"type": "integer"}, "len_min": 1})),
        with_field(
            json!({"type": "map", "keys": {"type": "string"}, "values": {"type": "boolean"},
                          "default": {"a": true}}),
        ),
        with_field(json!({"type": "record", "fields": [
            {"inner": {"type": "string", "default": "x"}},
            {"deeper": {"type": "record", "fields": [{"n": {"type": "integer"}}]}},
        ], "default": {"inner": "y"}})),
        with_field(json!({"type": "string", "default": null})),
        with_field(
            json!({"type": "string", "referenceable": true, "default": "{vault://env/key}",
                          "match": "^sk_"}),
        ),
        json!({"name": "test", "fields": [
            {"protocols": {"type": "set", "elements": {"type": "string"}, "default": ["http"]}},
            {"consumer": {"type": "foreign", "reference": "consumers", "eq": null}},
            {"config": {"type": "record", "fields": []}},
        ], "entity_checks": [{"at_least_one_of": ["config.a"]}]}),
    ];
    for schema in good {
        assert_eq!(check_plugin_schema(&schema), Ok(()), "{schema:#}");
    }
}

#[test]
fn rejects_bad_subschema_shapes() {
    assert_rejected(json!([]), "schema: expected an object");
    assert_rejected(
        json!({"fields": [{"config": {"type": "record", "fields": []}}]}),
        "name: required field missing",
    );
    assert_rejected(json!({"name": 5, "fields": []}), "name: expected a string");
    assert_rejected(json!({"name": "x"}), "fields: required field missing");
    assert_rejected(
        json!({"name": "x", "fields": {}}),
        "fields: expected an array",
    );
    assert_rejected(
        json!({"name": "x", "fields": []}),
        "config: required field missing: a plugin schema must define a 'config' record",
    );
    assert_rejected(
        json!({"name": "x", "fields": [{"config": {"type": "string"}}]}),
        "config: cannot change type in a specialized field: Kong's plugin field 'config' is a 'record'",
    );
    assert_rejected(
        json!({"name": "x", "fields": [{"config": {"type": "record", "fields": []}}, {"extra": {"type": "string"}}]}),
        "extra: cannot create a new field: a plugin schema may only specialize the fields of Kong's plugins entity (config, protocols, consumer, route, service, …)",
    );
    assert_rejected(
        json!({"name": "x", "version": "1", "fields": [{"config": {"type": "record", "fields": []}}]}),
        "version: unknown field",
    );
    assert_rejected(
        json!({"name": "x", "fields": [{"config": {"type": "record", "fields": []}, "b": {}}]}),
        "fields[0]: each entry in fields must be an object with one key, the field name",
    );
    assert_rejected(
        json!({"name": "x", "fields": [{"config": {"type": "record"}}]}),
        "config: field of type 'record' must declare 'fields'",
    );
}

#[test]
fn rejects_bad_field_definitions() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!("string"),
            "config.f: expected a field definition (an object)",
        ),
        (
            json!({"required": true}),
            "config.f: missing type declaration",
        ),
        (
            json!({"type": "text"}),
            "config.f.type: invalid type 'text': expected one of: array, boolean, foreign, function, integer, json, map, number, record, set, string",
        ),
        (
            json!({"type": "string", "colour": "red"}),
            "config.f.colour: unknown field",
        ),
        (
            json!({"type": "array"}),
            "config.f: field of type 'array' must declare 'elements'",
        ),
        (
            json!({"type": "set"}),
            "config.f: field of type 'set' must declare 'elements'",
        ),
        (
            json!({"type": "map", "keys": {"type": "string"}}),
            "config.f: field of type 'map' must declare 'values'",
        ),
        (
            json!({"type": "map", "values": {"type": "string"}}),
            "config.f: field of type 'map' must declare 'keys'",
        ),
        (
            json!({"type": "array", "elements": "string"}),
            "config.f.elements: expected a field definition (an object)",
        ),
        (
            json!({"type": "array", "elements": {"type": "array"}}),
            "config.f.elements: field of type 'array' must declare 'elements'",
        ),
        (
            json!({"type": "string", "between": [1, 2]}),
            "config.f: field of type 'string' cannot have attribute 'between'",
        ),
        (
            json!({"type": "integer", "between": [1]}),
            "config.f.between: length must be 2",
        ),
        (
            json!({"type": "integer", "between": [1, "2"]}),
            "config.f.between: expected an array of two numbers",
        ),
        (
            json!({"type": "integer", "between": [5, 1]}),
            "config.f.between: the lower bound (5) is greater than the upper bound (1)",
        ),
        (
            json!({"type": "boolean", "len_min": 1}),
            "config.f: field of type 'boolean' cannot have attribute 'len_min'",
        ),
        (
            json!({"type": "integer", "len_max": 1}),
            "config.f: field of type 'integer' cannot have attribute 'len_max'",
        ),
        (
            json!({"type": "string", "len_min": -1}),
            "config.f.len_min: expected a non-negative integer",
        ),
        (
            json!({"type": "string", "len_min": 5, "len_max": 2}),
            "config.f: len_min (5) is greater than len_max (2)",
        ),
        (
            json!({"type": "integer", "match": "%d"}),
            "config.f: field of type 'integer' cannot have attribute 'match'",
        ),
        (
            json!({"type": "array", "elements": {"type": "string"}, "not_match": "x"}),
            "config.f: field of type 'array' cannot have attribute 'not_match'",
        ),
        (
            json!({"type": "string", "match": "[a-z"}),
            "config.f.match: malformed pattern (missing ']')",
        ),
        (
            json!({"type": "string", "not_match": 7}),
            "config.f.not_match: expected a string",
        ),
        (
            json!({"type": "boolean", "one_of": [true]}),
            "config.f: field of type 'boolean' cannot have attribute 'one_of'",
        ),
        (
            json!({"type": "string", "one_of": ["a", 1]}),
            "config.f.one_of[1]: expected a string",
        ),
        (
            json!({"type": "integer", "one_of": [1, 1.5]}),
            "config.f.one_of[1]: expected an integer",
        ),
        (
            json!({"type": "string", "one_of": []}),
            "config.f.one_of: must list at least one value",
        ),
        (
            json!({"type": "string", "required": "yes"}),
            "config.f.required: expected a boolean",
        ),
        (
            json!({"type": "string", "referenceable": 1}),
            "config.f.referenceable: expected a boolean",
        ),
        (
            json!({"type": "integer", "referenceable": true}),
            "config.f: field of type 'integer' cannot have attribute 'referenceable'",
        ),
        (
            json!({"type": "string", "encrypted": "no"}),
            "config.f.encrypted: expected a boolean",
        ),
        (
            json!({"type": "string", "description": "short"}),
            "config.f.description: length must be at least 10",
        ),
        (
            json!({"type": "string", "description": "x".repeat(501)}),
            "config.f.description: length must be at most 500",
        ),
        (
            json!({"type": "string", "custom_validator": "f"}),
            "config.f.custom_validator: expected a function, which a JSON schema cannot carry",
        ),
        (
            json!({"type": "string", "fields": []}),
            "config.f: field of type 'string' cannot have attribute 'fields'",
        ),
        (
            json!({"type": "record", "fields": [{"a": {"type": "string"}}, {"a": {"type": "integer"}}]}),
            "config.f.a: duplicate field name: each name may appear once in 'fields'",
        ),
        (
            json!({"type": "record", "fields": [{"": {"type": "string"}}]}),
            "config.f.fields[0]: a field name must not be empty",
        ),
        (
            json!({"type": "record", "fields": [{"a": {"type": "wat"}}]}),
            "config.f.a.type: invalid type 'wat': expected one of: array, boolean, foreign, function, integer, json, map, number, record, set, string",
        ),
        (
            json!({"type": "string", "unique_across_ws": true}),
            "config.f: 'unique_across_ws' needs 'unique' = true",
        ),
    ];
    for (definition, expected) in cases {
        assert_rejected(with_field(definition), expected);
    }
}

#[test]
fn rejects_defaults_that_kong_would_reject() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"type": "string", "default": 5}),
            "config.f.default: expected a string",
        ),
        (
            json!({"type": "string", "default": ""}),
            "config.f.default: length must be at least 1",
        ),
        (
            json!({"type": "string", "default": "abcdef", "len_max": 3}),
            "config.f.default: length must be at most 3",
        ),
        (
            json!({"type": "string", "default": "c", "one_of": ["a", "b"]}),
            "config.f.default: expected one of: a, b",
        ),
        (
            json!({"type": "string", "default": "a b", "match": "^%S+$"}),
            "config.f.default: invalid value: a b",
        ),
        (
            json!({"type": "string", "default": "a b", "not_match": "%s"}),
            "config.f.default: invalid value: a b",
        ),
        (
            json!({"type": "integer", "default": 1.5}),
            "config.f.default: expected an integer",
        ),
        (
            json!({"type": "integer", "default": "1"}),
            "config.f.default: expected an integer",
        ),
        (
            json!({"type": "integer", "default": 300, "between": [0, 255]}),
            "config.f.default: value should be between 0 and 255",
        ),
        (
            json!({"type": "number", "default": 3, "one_of": [1, 2.5]}),
            "config.f.default: expected one of: 1, 2.5",
        ),
        (
            json!({"type": "boolean", "default": "true"}),
            "config.f.default: expected a boolean",
        ),
        (
            json!({"type": "string", "required": true, "default": null}),
            "config.f.default: required field missing",
        ),
        (
            json!({"type": "array", "elements": {"type": "string"}, "default": "a"}),
            "config.f.default: expected an array",
        ),
        (
            json!({"type": "array", "elements": {"type": "string", "one_of": ["a"]}, "default": ["b"]}),
            "config.f.default: expected one of: a",
        ),
        (
            json!({"type": "array", "elements": {"type": "integer"}, "default": [1, 2], "len_max": 1}),
            "config.f.default: length must be at most 1",
        ),
        (
            json!({"type": "set", "elements": {"type": "string"}, "default": [1]}),
            "config.f.default: expected a string",
        ),
        (
            json!({"type": "map", "keys": {"type": "string"}, "values": {"type": "integer"}, "default": {"a": "b"}}),
            "config.f.default: expected an integer",
        ),
        (
            json!({"type": "map", "keys": {"type": "string"}, "values": {"type": "integer"}, "default": [1]}),
            "config.f.default: expected a map",
        ),
        (
            json!({"type": "record", "fields": [{"a": {"type": "string"}}], "default": {"b": "x"}}),
            "config.f.default.b: unknown field",
        ),
        (
            json!({"type": "record", "fields": [{"a": {"type": "string", "required": true}}], "default": {}}),
            "config.f.default.a: required field missing",
        ),
        (
            json!({"type": "record", "fields": [{"a": {"type": "integer"}}], "default": {"a": "x"}}),
            "config.f.default.a: expected an integer",
        ),
    ];
    for (definition, expected) in cases {
        assert_rejected(with_field(definition), expected);
    }
}

#[test]
fn rejects_reserved_config_names() {
    for name in RESERVED_CONFIG_FIELDS {
        assert_rejected(
            with_config_fields(json!([{ *name: {"type": "string"} }])),
            &format!(
                "config.{name}: '{name}' is a reserved name: Kong adds it to every plugin config it sends"
            ),
        );
    }
    // Reserved only at the top of config.
    let nested =
        with_field(json!({"type": "record", "fields": [{"route_id": {"type": "string"}}]}));
    assert_eq!(check_plugin_schema(&nested), Ok(()));
}

#[test]
fn reports_every_error_in_a_stable_order() {
    let schema = with_config_fields(json!([
        {"a": {"type": "string", "between": [1, 2], "colour": 1}},
        {"b": {"type": "array"}},
        {"c": {"type": "integer", "default": "x"}},
    ]));
    assert_eq!(
        errors(&schema),
        vec![
            "config.a: field of type 'string' cannot have attribute 'between'",
            "config.a.colour: unknown field",
            "config.b: field of type 'array' must declare 'elements'",
            "config.c.default: expected an integer",
        ]
    );
}

#[test]
fn std_impls_produce_valid_schemas() {
    struct Everything;
    impl Schema for Everything {
        fn field() -> Field {
            Field::record()
                .field("s", String::field())
                .field("b", bool::field())
                .field("i8", i8::field())
                .field("u64", u64::field())
                .field("f", f32::field())
                .field("v", Vec::<u32>::field())
                .field("a", <[String; 2]>::field())
                .field("set", BTreeSet::<String>::field())
                .field("map", HashMap::<String, Vec<i64>>::field())
        }
    }
    assert_eq!(
        check_plugin_schema(&plugin_schema::<Everything>("everything")),
        Ok(())
    );
}
