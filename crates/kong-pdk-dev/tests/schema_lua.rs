//! `kong-pdk-dev schema-lua` on a built example: Lua that loads (with Lua
//! 5.1, Kong's language level, built from source by mlua) and holds the
//! same schema as `-dump`.

mod common;

use std::process::Command;

#[test]
fn the_lua_module_loads_and_matches_the_dump() {
    let exe = common::example("rust-key-auth");
    let out = Command::new(common::GATEWAY)
        .args(["schema-lua", exe.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lua = String::from_utf8(out.stdout).unwrap();
    assert!(lua.contains("name = \"rust-key-auth\""), "{lua}");
    // Load it in Lua 5.1 (built from source by mlua) and compare a few
    // values with the dump.
    let lua51 = mlua::Lua::new();
    let schema: mlua::Table = lua51
        .load(lua.as_str())
        .set_name("schema.lua")
        .eval()
        .unwrap_or_else(|e| panic!("the module does not load: {e}\n{lua}"));
    let probe = r#"
local s = ...
local config = s.fields[1].config
assert(s.name == "rust-key-auth")
assert(config.type == "record")
local names = config.fields[1].key_names
assert(names.type == "array" and names.default[1] == "apikey" and names.default[2] == "x-api-key")
local key = config.fields[2].keys.elements.fields[1].key
assert(key.encrypted == true and key.referenceable == true and key.len_min == 8)
return _VERSION
"#;
    let version: String = lua51
        .load(probe)
        .call(schema)
        .unwrap_or_else(|e| panic!("{e}\n{lua}"));
    assert_eq!(version, "Lua 5.1");
}

#[test]
fn a_broken_executable_is_a_clear_error() {
    let out = Command::new(common::GATEWAY)
        .args(["schema-lua", "/bin/false"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-dump failed"));
}
