//! The command line as a user meets it: the usage names every command, and
//! each command's `--help` prints its own text and exits 0.

mod common;

use std::process::{Command, Output};

const COMMANDS: [&str; 5] = ["gateway", "check", "bench", "schema-lua", "new"];

fn run(args: &[&str]) -> Output {
    Command::new(common::GATEWAY)
        .args(args)
        .output()
        .expect("kong-pdk-dev runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn without_arguments_the_usage_names_every_command_and_exits_2() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let usage = text(&out.stderr);
    for command in COMMANDS {
        assert!(
            usage.contains(&format!("\n  {command} ")),
            "{command}:\n{usage}"
        );
    }
    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("schema-lua"));
}

#[test]
fn each_command_has_its_own_help() {
    for command in COMMANDS {
        for flag in ["--help", "-h", "-help"] {
            let out = run(&[command, flag]);
            assert!(
                out.status.success(),
                "{command} {flag}: {}",
                text(&out.stderr)
            );
            let help = text(&out.stdout);
            assert!(
                help.starts_with(&format!("Usage: kong-pdk-dev {command} ")),
                "{command} {flag}:\n{help}"
            );
        }
        // `help <command>` is the same text.
        let out = run(&["help", command]);
        assert!(out.status.success());
        assert_eq!(text(&out.stdout), text(&run(&[command, "--help"]).stdout));
    }
}

#[test]
fn a_bad_command_line_shows_that_commands_usage() {
    let out = run(&["schema-lua"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("give exactly one plugin executable"), "{err}");
    assert!(err.contains("Usage: kong-pdk-dev schema-lua"), "{err}");
    let out = run(&["launch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown command \"launch\""));
}
