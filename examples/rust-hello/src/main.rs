//! `rust-hello`: greets the caller in a response header (go-pdk's `go-hello`
//! in Rust).

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// The plugin's configuration, as set in Kong.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Who sends the greeting.
    #[kong(default = "Kong!")]
    message: String,
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        let greeting = format!("Rust says {} to {host}", self.message);
        kong.response()
            .set_header("x-hello-from-rust", &greeting)
            .await?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 1)
}
