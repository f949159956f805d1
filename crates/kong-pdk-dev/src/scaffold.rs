//! `kong-pdk-dev new <name>`: a plugin crate that builds, tests and runs
//! under the gateway as generated.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The usage text of `new`.
pub const NEW_USAGE: &str = "\
Usage: kong-pdk-dev new [--pdk-path DIR | --no-patch] <name>
  Creates ./<name>: a plugin crate with src/main.rs (a config and an access
  handler), a test-kit test and a test of the built binary, kong.conf and
  kong.yml for `kong-pdk-dev gateway`, a Dockerfile (Kong image with the
  plugin as a static binary) and a README. <name> is the plugin's name in
  Kong: lower-case letters, digits, '-' and '_', starting with a letter.
  --pdk-path DIR  a kong-pdk checkout to build against: writes a
                  [patch.crates-io] section for kong-pdk and kong-pdk-test
                  (default: the checkout this kong-pdk-dev was built from,
                  while it exists)
  --no-patch      depend on the crates.io releases only
";

/// `new`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The plugin (and crate) name.
    pub name: String,
    /// Where kong-pdk comes from.
    pub pdk: PdkSource,
}

/// Where the generated crate gets kong-pdk and kong-pdk-test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdkSource {
    /// The checkout this binary was built from, if it still exists, else
    /// crates.io.
    Default,
    /// A checkout (the directory holding `crates/kong-pdk`).
    Checkout(PathBuf),
    /// crates.io only.
    CratesIo,
}

/// One generated file: its path in the crate and its template.
const FILES: [(&str, &str); 9] = [
    (
        "Cargo.toml",
        include_str!("../templates/new/Cargo.toml.tmpl"),
    ),
    ("src/main.rs", include_str!("../templates/new/main.rs.tmpl")),
    (
        "tests/executable.rs",
        include_str!("../templates/new/executable.rs.tmpl"),
    ),
    ("kong.conf", include_str!("../templates/new/kong.conf.tmpl")),
    ("kong.yml", include_str!("../templates/new/kong.yml.tmpl")),
    (
        "Dockerfile",
        include_str!("../templates/new/Dockerfile.tmpl"),
    ),
    (
        ".dockerignore",
        include_str!("../templates/new/dockerignore.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../templates/new/gitignore.tmpl"),
    ),
    ("README.md", include_str!("../templates/new/README.md.tmpl")),
];

/// Checks a plugin name: Kong's name for it, the executable's file name and
/// the crate's name at once.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !starts_with_letter || !rest_ok {
        return Err(format!(
            "{name:?} is not a plugin name: use lower-case letters, digits, '-' and '_', starting with a letter"
        ));
    }
    if name.len() > 64 {
        return Err(format!("{name:?} is longer than 64 characters"));
    }
    Ok(())
}

/// The checkout this binary was built from, when it is still there.
fn own_checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.parent()?;
    root.join("crates/kong-pdk/Cargo.toml")
        .is_file()
        .then(|| root.to_path_buf())
}

/// The `[patch.crates-io]` section for a checkout at `root`.
fn patch_section(root: &Path) -> String {
    let path = |krate: &str| {
        // TOML basic strings: escape what could end or break them.
        root.join("crates")
            .join(krate)
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    format!(
        "\n# kong-pdk is not on crates.io yet: build against a checkout. Remove this\n\
         # section once the versions above are published.\n\
         [patch.crates-io]\n\
         kong-pdk = {{ path = \"{}\" }}\n\
         kong-pdk-test = {{ path = \"{}\" }}\n",
        path("kong-pdk"),
        path("kong-pdk-test"),
    )
}

/// The files of a new plugin crate, as (path, contents).
pub fn render(name: &str, checkout: Option<&Path>) -> Vec<(&'static str, String)> {
    // `0.1.0` → `0.1`: any compatible release.
    let version = env!("CARGO_PKG_VERSION");
    let pdk_version = version
        .rsplit_once('.')
        .map_or(version, |(major_minor, _)| major_minor);
    let patch = checkout.map(patch_section).unwrap_or_default();
    FILES
        .iter()
        .map(|(path, template)| {
            let text = template
                .replace("{{name_underscored}}", &name.replace('-', "_"))
                .replace("{{name}}", name)
                .replace("{{pdk_version}}", pdk_version)
                .replace("{{patch}}", &patch);
            (*path, text)
        })
        .collect()
}

/// Writes the crate into `parent/<name>`; the directory it made.
pub fn create(parent: &Path, options: &Options) -> Result<(PathBuf, Option<PathBuf>), String> {
    check_name(&options.name)?;
    let checkout = match &options.pdk {
        PdkSource::Default => own_checkout(),
        PdkSource::CratesIo => None,
        PdkSource::Checkout(dir) => {
            let dir = dir
                .canonicalize()
                .map_err(|e| format!("--pdk-path {}: {e}", dir.display()))?;
            if !dir.join("crates/kong-pdk/Cargo.toml").is_file() {
                return Err(format!(
                    "--pdk-path {}: not a kong-pdk checkout (no crates/kong-pdk/Cargo.toml)",
                    dir.display()
                ));
            }
            Some(dir)
        }
    };
    let root = parent.join(&options.name);
    if root.exists() {
        return Err(format!("{} already exists", root.display()));
    }
    for (path, text) in render(&options.name, checkout.as_deref()) {
        let file = root.join(path);
        if let Some(dir) = file.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok((root, checkout))
}

/// Runs `new` in the current directory.
pub fn main(options: &Options) -> ExitCode {
    match create(Path::new("."), options) {
        Ok((root, checkout)) => {
            println!("Created {}", root.display());
            match checkout {
                Some(dir) => println!(
                    "kong-pdk and kong-pdk-test come from the checkout {} ([patch.crates-io] in Cargo.toml)",
                    dir.display()
                ),
                None => println!("kong-pdk and kong-pdk-test come from crates.io"),
            }
            println!(
                "Next:\n  cd {name}\n  cargo test\n  cargo build && kong-pdk-dev gateway -c kong.conf\n  curl -i localhost:8000/{name} -H 'x-tenant: blue'",
                name = options.name
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kong-pdk-dev new: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_kong_and_cargo_both_accept() {
        for ok in ["demo", "my-plugin", "a_b2"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Demo", "2fa", "-x", "a b", "a/b", "ünï"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let files = render("my-plugin", Some(Path::new("/src/kong \"pdk\"")));
        for (path, text) in &files {
            assert!(!text.contains("{{"), "{path} keeps a placeholder");
        }
        let conf = &files.iter().find(|(p, _)| *p == "kong.conf").unwrap().1;
        assert!(conf.contains("pluginserver_my_plugin_start_cmd = target/debug/my-plugin"));
        let cargo = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(
            cargo.contains(r#"kong-pdk = { path = "/src/kong \"pdk\"/crates/kong-pdk" }"#),
            "{cargo}"
        );
        let without = render("my-plugin", None);
        assert!(!without[0].1.contains("[patch"));
    }
}
