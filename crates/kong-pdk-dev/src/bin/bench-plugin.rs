//! `bench-plugin`: the plugin measured by `kong-pdk-dev bench` for the
//! many-call goal. Per access event it makes `calls - 1`
//! `kong.request.get_header` calls and one `kong.response.set_header`
//! (`calls` from its config, default 2 — then it does exactly what the
//! `rust-hello` example does). `bench-raw` makes the same calls without the
//! PDK.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// Headers read by the extra calls (same list as `bench-raw`).
const HEADERS: [&str; 4] = ["user-agent", "accept", "x-request-id", "x-forwarded-for"];

/// The benchmark plugin's config.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Who sends the greeting.
    #[kong(default = "Kong!")]
    message: String,
    /// PDK calls per event (at least 1).
    #[kong(default = 2, between = [1, 1000])]
    #[serde(default = "two")]
    calls: u16,
}

fn two() -> u16 {
    2
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let mut host = String::new();
        for n in 1..self.calls {
            let name = if n == 1 {
                "host"
            } else {
                HEADERS[usize::from(n) % HEADERS.len()]
            };
            let value = kong.request().get_header(name).await?;
            if n == 1 {
                host = value;
            }
        }
        let greeting = format!("Rust says {} to {host}", self.message);
        kong.response()
            .set_header("x-hello-from-rust", &greeting)
            .await?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>("0.1.0", 1)
}
