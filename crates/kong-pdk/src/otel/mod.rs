//! OpenTelemetry export of the plugin's `tracing` spans over OTLP/HTTP
//! (cargo feature `otel`, off by default). Configured by the standard
//! variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_SDK_DISABLED`);
//! without an endpoint nothing is installed. See docs/TRACING.md.

mod export;
mod layer;
mod proto;

use std::sync::OnceLock;
use std::time::Duration;

use self::export::{Endpoint, Exporter};
pub(crate) use self::layer::adopt;

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// The export layer for plugin `name` when the environment asks for one.
/// `Err` is a setting that cannot be used, for the log.
pub(crate) fn layer_from_env(
    name: &str,
    version: &str,
) -> Result<Option<layer::OtlpLayer>, String> {
    let var = |k: &str| std::env::var(k).ok();
    let Some(endpoint) = Endpoint::from_env(var)? else {
        return Ok(None);
    };
    let service = var("OTEL_SERVICE_NAME")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| name.to_owned());
    let resource = proto::Resource {
        attributes: vec![
            proto::KeyValue::new("service.name", proto::Value::String(service)),
            proto::KeyValue::new("service.version", proto::Value::String(version.into())),
            proto::KeyValue::new("kong.plugin.name", proto::Value::String(name.into())),
            proto::KeyValue::new("process.pid", proto::Value::Int(std::process::id().into())),
            proto::KeyValue::new(
                "telemetry.sdk.name",
                proto::Value::String("kong-pdk".into()),
            ),
            proto::KeyValue::new(
                "telemetry.sdk.version",
                proto::Value::String(env!("CARGO_PKG_VERSION").into()),
            ),
        ],
    };
    let exporter = EXPORTER.get_or_init(|| Exporter::start(endpoint, resource));
    Ok(Some(layer::OtlpLayer::new(exporter)))
}

/// Sends the spans still queued; called once the server stopped serving.
pub(crate) fn shutdown() {
    if let Some(exporter) = EXPORTER.get() {
        exporter.shutdown(Duration::from_secs(3));
    }
}
