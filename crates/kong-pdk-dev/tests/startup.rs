//! Start-up errors name the file and setting, and stop the gateway; the
//! example kong.conf and kong.yml are valid for the example plugins.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Config, Gateway};

/// Starts a gateway that must refuse to start; its log.
fn refused(config: Config<'_>, env: &[(&str, &str)]) -> String {
    let (dir, conf) = common::write_conf(&config);
    let mut gw = Gateway::spawn(dir, &conf, env);
    let code = gw.wait_exit(Duration::from_secs(60));
    let log = gw.log();
    assert_eq!(code, Some(1), "the gateway should refuse to start:\n{log}");
    assert!(log.contains("gateway not started"), "{log}");
    log
}

const YML: &str = "_format_version: \"3.0\"\n";

#[test]
fn kong_conf_errors_name_the_setting() {
    let log = refused(
        Config {
            plugins: &[],
            yml: YML,
            extra_conf: "pluginserver_names = ghost\nproxy_listen = not-an-address\n",
        },
        &[],
    );
    assert!(
        log.contains("kong.conf: pluginserver_ghost_query_cmd: query_command undefined for pluginserver ghost"),
        "{log}"
    );
    assert!(
        log.contains("kong.conf: proxy_listen: invalid address \"not-an-address\""),
        "{log}"
    );

    // A query command whose output is not a plugin info document.
    let log = refused(
        Config {
            plugins: &[],
            yml: YML,
            extra_conf: "pluginserver_names = noisy\npluginserver_noisy_query_cmd = echo starting up\n",
        },
        &[],
    );
    assert!(
        log.contains("kong.conf: pluginserver_noisy_query_cmd: failed decoding plugin info"),
        "{log}"
    );

    // A command that does not exist; the environment overrides kong.conf.
    let log = refused(
        Config {
            plugins: &["rust-hello"],
            yml: YML,
            extra_conf: "",
        },
        &[(
            "KONG_PLUGINSERVER_RUST_HELLO_QUERY_CMD",
            "/nonexistent/rust-hello -dump",
        )],
    );
    assert!(
        log.contains("KONG_PLUGINSERVER_RUST_HELLO_QUERY_CMD (environment): `/nonexistent/rust-hello -dump` exited with \"command not found\""),
        "{log}"
    );
}

#[test]
fn kong_yml_errors_name_the_field() {
    let log = refused(
        Config {
            plugins: &["rust-hello"],
            yml: "_format_version: \"3.0\"\nservices:\n  - name: s\n    url: http://{echo}\n    routes:\n      - paths: [hello]\n        colour: red\n",
            extra_conf: "",
        },
        &[],
    );
    assert!(
        log.contains("kong.yml: services[0].routes[0].paths[0]: should start with: /"),
        "{log}"
    );
    assert!(
        log.contains("kong.yml: services[0].routes[0].colour: unknown field"),
        "{log}"
    );

    let log = refused(
        Config {
            plugins: &["rust-hello"],
            yml: "_format_version: \"3.0\"\nplugins:\n  - name: rust-nope\n",
            extra_conf: "",
        },
        &[],
    );
    assert!(
        log.contains("kong.yml: plugins[0] (rust-nope): plugin 'rust-nope' is not installed"),
        "{log}"
    );
}

#[test]
fn plugin_configs_are_validated_against_the_plugins_schemas() {
    let log = refused(
        Config {
            plugins: &[
                "rust-hello",
                "rust-key-auth",
                "rust-request-transformer",
                "rust-log",
            ],
            yml: r#"
_format_version: "3.0"
services:
  - name: s
    url: http://{echo}
    routes:
      - name: r
        paths: [/r]
        plugins:
          - name: rust-hello
            config: { message: 5 }
          - name: rust-key-auth
            config:
              keys: [{ key: short, consumer: ann }]
          - name: rust-request-transformer
            config: { method: FETCH, colour: red }
plugins:
  - name: rust-log
"#,
            extra_conf: "",
        },
        &[],
    );
    for want in [
        "kong.yml: services[0].routes[0].plugins[0] (rust-hello): config.message: expected a string",
        "kong.yml: services[0].routes[0].plugins[1] (rust-key-auth): config.keys",
        "length must be at least 8",
        "kong.yml: services[0].routes[0].plugins[2] (rust-request-transformer): config.method: expected one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
        "kong.yml: services[0].routes[0].plugins[2] (rust-request-transformer): config.colour: unknown field",
        "kong.yml: plugins[0] (rust-log): config.path: required field missing",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
}

#[test]
fn a_plugin_must_be_listed_in_plugins() {
    let log = refused(
        Config {
            plugins: &["rust-hello"],
            yml: "_format_version: \"3.0\"\nplugins:\n  - name: rust-hello\n",
            extra_conf: "plugins = bundled\n",
        },
        &[],
    );
    assert!(
        log.contains(
            "plugin 'rust-hello' not enabled; add it to the 'plugins' configuration property"
        ),
        "{log}"
    );
}

#[tokio::test]
async fn the_example_kong_conf_and_kong_yml_are_valid() {
    use kong_pdk_dev::conf::KongConf;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let conf_path = examples.join("kong.conf");
    // The file's commands use ../target/debug; point them at the binaries
    // of this build when they live elsewhere (CARGO_TARGET_DIR, profiles).
    let default_bins = kong_pdk_dev::conf::clean(&examples.join("../target/debug"));
    let mut env = Vec::new();
    for name in common::EXAMPLES {
        let exe = common::example(name);
        if exe.parent() != Some(default_bins.as_path()) {
            env.push((
                format!(
                    "KONG_PLUGINSERVER_{}_QUERY_CMD",
                    name.replace('-', "_").to_uppercase()
                ),
                format!("{} -dump", exe.display()),
            ));
        }
    }
    let conf = KongConf::load(Some(&conf_path), env).expect("examples/kong.conf loads");
    assert_eq!(conf.pluginservers.len(), common::EXAMPLES.len());
    assert_eq!(conf.plugins.len(), common::EXAMPLES.len());
    assert_eq!(
        conf.echo_upstream_listen,
        Some("127.0.0.1:18000".parse().unwrap())
    );
    assert!(conf.warnings.is_empty(), "{:?}", conf.warnings);
    let servers = kong_pdk_dev::setup::query_servers(&conf)
        .await
        .expect("the examples' dumps validate");
    let decl = kong_pdk_dev::declarative::load(conf.declarative_config.as_deref().unwrap())
        .expect("examples/kong.yml loads");
    let setup =
        kong_pdk_dev::setup::Setup::new(&conf, decl, servers, 0).expect("every config validates");
    let mut used: Vec<&str> = setup.plugins.iter().map(|p| p.name()).collect();
    used.sort_unstable();
    used.dedup();
    assert_eq!(used, common::EXAMPLES, "kong.yml uses all eight plugins");
}

/// Like nginx's workers, which start them in Kong, plugin servers get only
/// `TZ` and what `nginx_main_env` names of the gateway's environment.
#[test]
fn plugin_servers_get_only_the_environment_nginx_main_env_names() {
    let started = |extra_conf: &str| {
        let config = common::Config {
            plugins: &["rust-hello"],
            yml: "_format_version: \"3.0\"\n",
            extra_conf,
        };
        let (dir, conf) = common::write_conf(&config);
        let gw = Gateway::spawn(dir, &conf, &[("KONG_PDK_LOG", "verbose")]);
        gw.wait_ready();
        // The server's start-up line comes after its level is set.
        assert!(
            gw.wait_for("Listening on socket", Duration::from_secs(20)),
            "{}",
            gw.log()
        );
        gw.log()
    };
    let warning = r#"KONG_PDK_LOG="verbose" is not a level"#;
    let log = started("");
    assert!(
        !log.contains(warning),
        "KONG_PDK_LOG reached the server:\n{log}"
    );
    let log = started("nginx_main_env = KONG_PDK_LOG\n");
    assert!(
        log.contains(warning),
        "nginx_main_env did not pass it:\n{log}"
    );
}
