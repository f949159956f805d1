//! The `kong-pdk-dev` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    kong_pdk_dev::cli::main(std::env::args_os().skip(1))
}
