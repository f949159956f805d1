//! `rust-request-transformer`: rewrites the request Kong sends upstream —
//! path, query, headers, body — and can send it to another target.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

/// Where to send the request instead of the service's host.
#[derive(Debug, Deserialize, Schema)]
struct Target {
    /// Host name or IP address.
    host: String,
    /// Port.
    #[kong(between = [1, 65535])]
    port: u16,
}

/// The plugin's configuration.
#[derive(Debug, Deserialize, Schema)]
struct Config {
    /// Replace the upstream path (must start with `/`).
    #[kong(match = "^/")]
    path: Option<String>,
    /// Replace the method.
    #[kong(one_of = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])]
    method: Option<String>,
    /// Headers to set, as `name:value`.
    #[serde(default)]
    set_headers: Vec<String>,
    /// Headers to remove.
    #[serde(default)]
    remove_headers: Vec<String>,
    /// Query arguments to add (existing values are kept).
    #[serde(default)]
    add_query: std::collections::BTreeMap<String, String>,
    /// Query arguments to remove.
    #[serde(default)]
    remove_query: Vec<String>,
    /// Replace the body with this text.
    body: Option<String>,
    /// Send the request to this host and port.
    target: Option<Target>,
}

impl Config {
    fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.set_headers.iter().filter_map(|h| {
            let (name, value) = h.split_once(':')?;
            Some((name.trim(), value.trim()))
        })
    }
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn init(&mut self) -> Result<(), kong_pdk::BoxError> {
        if let Some(bad) = self.set_headers.iter().find(|h| !h.contains(':')) {
            return Err(format!("set_headers entry {bad:?} is not name:value").into());
        }
        Ok(())
    }

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        if let Some(path) = &self.path {
            kong.service_request().set_path(path).await?;
        }
        if let Some(method) = &self.method {
            kong.service_request().set_method(method).await?;
        }
        if !self.add_query.is_empty() || !self.remove_query.is_empty() {
            let mut query = kong.request().get_query().await?;
            for name in &self.remove_query {
                query.remove(name);
            }
            for (name, value) in &self.add_query {
                query.append(name.clone(), value.clone());
            }
            kong.service_request().set_query(&query).await?;
        }
        for name in &self.remove_headers {
            kong.service_request().clear_header(name).await?;
        }
        for (name, value) in self.header_pairs() {
            kong.service_request().set_header(name, value).await?;
        }
        if let Some(body) = &self.body {
            kong.service_request().set_raw_body(body).await?;
        }
        if let Some(target) = &self.target {
            kong.service().set_target(&target.host, target.port).await?;
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    kong_pdk::run::<Config>(env!("CARGO_PKG_VERSION"), 801)
}
