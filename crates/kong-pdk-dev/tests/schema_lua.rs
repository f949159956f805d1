//! `kong-pdk-dev schema-lua` on a built example: Lua that loads (with Lua
//! 5.1, Kong's language level) and holds the same schema as `-dump`.

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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schema.lua");
    std::fs::write(&file, &lua).unwrap();
    // Read it back with Lua and compare a few values with the dump.
    let probe = format!(
        r#"local s = dofile("{}")
local config = s.fields[1].config
assert(s.name == "rust-key-auth")
assert(config.type == "record")
local names = config.fields[1].key_names
assert(names.type == "array" and names.default[1] == "apikey" and names.default[2] == "x-api-key")
local key = config.fields[2].keys.elements.fields[1].key
assert(key.encrypted == true and key.referenceable == true and key.len_min == 8)
print("ok")"#,
        file.display()
    );
    let run = Command::new("lua5.1")
        .args(["-e", &probe])
        .output()
        .expect("lua5.1 runs (.ci/run installs it: apt-get install lua5.1)");
    assert!(
        run.status.success(),
        "{}\n{lua}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "ok");
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
