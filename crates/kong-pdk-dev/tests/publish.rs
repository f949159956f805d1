//! The crates plugin authors get from crates.io are ready to publish: the
//! metadata crates.io shows, dependencies it can resolve, and the files
//! `cargo package` would upload.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The crates published together, in dependency order.
const PUBLISHED: [&str; 5] = [
    "kong-pdk-proto",
    "kong-pdk-macros",
    "kong-pdk",
    "kong-pdk-test",
    "kong-pdk-dev",
];

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn metadata() -> Vec<Value> {
    let json: Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
        "--offline",
    ]))
    .unwrap();
    json["packages"].as_array().unwrap().clone()
}

#[test]
fn exactly_the_five_crates_are_publishable_and_the_examples_are_not() {
    let mut publishable: Vec<String> = metadata()
        .iter()
        // `publish = false` is `[]`; absent is `null` (crates.io).
        .filter(|p| p["publish"] != serde_json::json!([]))
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    publishable.sort();
    let mut expected: Vec<String> = PUBLISHED.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(publishable, expected);
}

#[test]
fn every_published_crate_has_the_metadata_crates_io_shows() {
    let packages = metadata();
    let mut problems = Vec::new();
    for name in PUBLISHED {
        let p = packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in the workspace"));
        for field in ["description", "license", "repository", "readme"] {
            if p[field].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no {field}"));
            }
        }
        for (field, max) in [("keywords", 5), ("categories", 5)] {
            let n = p[field].as_array().map_or(0, Vec::len);
            if n == 0 || n > max {
                problems.push(format!("{name}: {n} {field} (crates.io takes 1..={max})"));
            }
        }
        if let Some(readme) = p["readme"].as_str() {
            let dir = Path::new(p["manifest_path"].as_str().unwrap())
                .parent()
                .unwrap();
            if !dir.join(readme).is_file() {
                problems.push(format!("{name}: readme {readme} is missing"));
            }
        }
        // crates.io resolves dependencies by version: a path alone is only
        // allowed for dev-dependencies (cargo drops those when publishing).
        for dep in p["dependencies"].as_array().unwrap() {
            let path_only = dep["path"].is_string() && dep["req"] == "*";
            if path_only && dep["kind"] != "dev" {
                problems.push(format!("{name}: dependency {} has no version", dep["name"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_package_holds_its_sources_readme_and_license_and_no_tests_or_build_output() {
    for name in PUBLISHED {
        let list = cargo(&[
            "package",
            "--list",
            "--offline",
            "--allow-dirty",
            "-p",
            name,
        ]);
        let files: Vec<&str> = list.lines().collect();
        for needed in ["Cargo.toml", "README.md", "LICENSE", "src/lib.rs"] {
            assert!(
                files.contains(&needed),
                "{name}: {needed} is not packaged: {files:?}"
            );
        }
        for file in &files {
            assert!(
                !file.starts_with("target/") && !file.starts_with("tests/"),
                "{name}: {file} should not be packaged"
            );
        }
        if name == "kong-pdk-dev" {
            // `new` includes its templates at build time: they must ship.
            let templates = files
                .iter()
                .filter(|f| f.starts_with("templates/new/") && f.ends_with(".tmpl"))
                .count();
            assert_eq!(templates, 9, "{files:?}");
        }
    }
}
