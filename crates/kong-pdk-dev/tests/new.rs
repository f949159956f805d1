//! `kong-pdk-dev new`: the crate it generates builds and passes its own
//! tests against this checkout (through `[patch.crates-io]`), and its
//! kong.conf/kong.yml run it under the gateway.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{GATEWAY, Gateway, free_port};

fn new(dir: &Path, args: &[&str]) -> Output {
    Command::new(GATEWAY)
        .arg("new")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("kong-pdk-dev runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bad_names_and_existing_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = new(dir.path(), &["My Plugin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not a plugin name"),
        "{}",
        text(&out.stderr)
    );

    std::fs::create_dir(dir.path().join("taken")).unwrap();
    let out = new(dir.path(), &["taken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("taken")).unwrap().count(),
        0
    );

    let out = new(dir.path(), &["--pdk-path", "/nonexistent", "ok"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("ok").exists());

    let out = new(dir.path(), &["--no-patch", "published"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cargo = std::fs::read_to_string(dir.path().join("published/Cargo.toml")).unwrap();
    assert!(cargo.contains("kong-pdk = \"0."), "{cargo}");
    assert!(!cargo.contains("[patch"), "{cargo}");
}

#[tokio::test]
async fn the_generated_crate_passes_its_tests_and_runs_under_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = new(
        dir.path(),
        &["--pdk-path", checkout.to_str().unwrap(), "demo"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let krate = dir.path().join("demo");
    for file in [
        "Cargo.toml",
        "src/main.rs",
        "tests/executable.rs",
        "kong.conf",
        "kong.yml",
        "Dockerfile",
        ".dockerignore",
        ".gitignore",
        "README.md",
    ] {
        assert!(krate.join(file).is_file(), "{file} is missing");
    }

    // Build with the versions this checkout is tested with (from the local
    // registry cache, offline), into a target directory kept between runs
    // under this workspace's target/ (the crate's own target/ links there).
    let target = common::bin_dir()
        .parent()
        .expect("target dir")
        .join("scaffold");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(checkout.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::os::unix::fs::symlink(&target, krate.join("target")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--offline"])
        .current_dir(&krate)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let log = text(&out.stderr) + &text(&out.stdout);
    assert!(
        out.status.success(),
        "cargo test failed in the new crate:\n{log}"
    );
    assert!(log.contains("test result: ok. 2 passed"), "{log}");
    assert!(log.contains("test result: ok. 1 passed"), "{log}");
    assert!(krate.join("target/debug/demo").is_file());

    // Its kong.conf and kong.yml, as generated but for the ports.
    let proxy = format!("127.0.0.1:{}", free_port());
    let echo = format!("127.0.0.1:{}", free_port());
    let yml = std::fs::read_to_string(krate.join("kong.yml")).unwrap();
    std::fs::write(
        krate.join("kong.yml"),
        yml.replace("127.0.0.1:18000", &echo),
    )
    .unwrap();
    let prefix = tempfile::tempdir().unwrap();
    let gw = Gateway::spawn(
        (prefix, proxy.parse().unwrap(), echo.parse().unwrap()),
        &krate.join("kong.conf"),
        &[
            ("KONG_PROXY_LISTEN", proxy.as_str()),
            ("KONG_DEV_ECHO_UPSTREAM_LISTEN", echo.as_str()),
        ],
    );
    gw.wait_ready();

    let denied = gw.get("/demo", &[]).await;
    assert_eq!(denied.status, 400, "{}", gw.log());
    assert_eq!(
        denied.json(),
        serde_json::json!({"message": "missing header x-tenant"})
    );

    let ok = gw.get("/demo", &[("x-tenant", "blue")]).await;
    assert_eq!(ok.status, 200, "{}", gw.log());
    assert_eq!(ok.header("x-greeting"), Some("hello from demo"));
    let echoed = ok.json();
    assert_eq!(echoed["headers"]["x-checked-value"], "blue", "{echoed}");
}

#[test]
fn the_dockerfile_in_docs_deploy_is_the_one_new_writes() {
    let deploy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/DEPLOY.md"))
            .unwrap();
    let files = kong_pdk_dev::scaffold::render("my-plugin", None);
    let dockerfile = &files.iter().find(|(p, _)| *p == "Dockerfile").unwrap().1;
    assert!(
        deploy.contains(&format!("```dockerfile\n{dockerfile}```")),
        "docs/DEPLOY.md's Dockerfile differs from the template's:\n{dockerfile}"
    );
}
