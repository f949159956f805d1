//! The phase flow with a probe plugin served from this test process (an
//! externally managed plugin server): `rewrite` only for the global config,
//! `access` with the most specific config, `response` on the buffered
//! response, `log` last; `kong.ctx.shared` across phases; handler errors
//! and calls Kong forbids give Kong's 500.

mod common;

use std::time::Duration;

use kong_pdk::server::Server;
use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;

use common::Gateway;

/// The probe's config.
#[derive(Debug, Deserialize, Schema)]
struct Probe {
    /// Which config this is.
    #[kong(default = "global")]
    tag: String,
}

async fn push(kong: &mut Kong, phase: &str) -> kong_pdk::Result<Vec<String>> {
    let mut seen: Option<Vec<String>> = kong.ctx().get_shared("phases").await?;
    let seen = seen.get_or_insert_with(Vec::new);
    seen.push(phase.to_owned());
    kong.ctx().set_shared("phases", seen).await?;
    Ok(seen.clone())
}

#[kong_pdk::plugin]
impl Plugin for Probe {
    async fn rewrite(&self, kong: &mut Kong) -> PhaseResult {
        kong.service_request()
            .set_header("x-rewrite-tag", &self.tag)
            .await?;
        push(kong, "rewrite").await?;
        Ok(())
    }

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        if !kong.request().get_header("x-fail").await?.is_empty() {
            return Err("the probe was asked to fail".into());
        }
        if !kong.request().get_header("x-forbidden").await?.is_empty() {
            // Kong does not allow this in access: it raises an error.
            kong.response().get_status().await?;
        }
        kong.service_request()
            .set_header("x-access-tag", &self.tag)
            .await?;
        push(kong, "access").await?;
        Ok(())
    }

    async fn response(&self, kong: &mut Kong) -> PhaseResult {
        let seen = push(kong, "response").await?;
        kong.response()
            .set_header("x-phases", &seen.join(","))
            .await?;
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let seen = push(kong, "log").await?;
        let status = kong.response().get_status().await?;
        kong.log()
            .notice(format!(
                "phases={} tag={} status={status}",
                seen.join(","),
                self.tag
            ))
            .await?;
        Ok(())
    }
}

/// Serves the probe on a socket in `dir`; the kong.conf lines for it.
fn serve_probe(dir: &std::path::Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let server = Server::<Probe>::new("1.2.3", 1000).name("probe");
    let socket = dir.join("probe.socket");
    let dump = dir.join("probe.dump.json");
    std::fs::write(&dump, server.dump(dir)).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = socket.clone();
    tokio::spawn(async move {
        let _ = server
            .serve_at(&path, async {
                let _ = stopped.await;
            })
            .await;
    });
    let conf = format!(
        "plugins = bundled,probe\npluginserver_names = probe\npluginserver_probe_socket = {}\npluginserver_probe_query_cmd = cat {}\n",
        socket.display(),
        dump.display()
    );
    (conf, stop)
}

const YML: &str = r#"
_format_version: "3.0"
services:
  - name: echo
    url: http://{echo}
    routes:
      - name: scoped
        paths: [/scoped]
        plugins:
          - name: probe
            config: { tag: route }
      - name: plain
        paths: [/plain]
plugins:
  - name: probe
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_run_in_kongs_order_with_the_right_configs() {
    let probe_dir = tempfile::tempdir().unwrap();
    let (conf, _stop) = serve_probe(probe_dir.path());
    let gw = Gateway::start_with(common::Config {
        plugins: &[],
        yml: YML,
        extra_conf: &conf,
    });

    let res = gw.get("/scoped", &[]).await;
    assert_eq!(res.status, 200, "{}", gw.log());
    let echo = res.json();
    // rewrite runs before routing, so only with the global config; access
    // uses the most specific config (the route's).
    assert_eq!(echo["headers"]["x-rewrite-tag"], "global");
    assert_eq!(echo["headers"]["x-access-tag"], "route");
    // response ran on the buffered response, after rewrite and access.
    assert_eq!(res.header("x-phases"), Some("rewrite,access,response"));
    assert!(
        gw.wait_for(
            "[notice] [probe] phases=rewrite,access,response,log tag=route status=200",
            Duration::from_secs(10)
        ),
        "{}",
        gw.log()
    );

    let res = gw.get("/plain", &[]).await;
    assert_eq!(res.json()["headers"]["x-access-tag"], "global");

    // No route: rewrite ran, then Kong's 404; log runs with the global config.
    let res = gw.get("/nowhere", &[]).await;
    assert_eq!(res.status, 404);
    assert!(
        gw.wait_for(
            "phases=rewrite,log tag=global status=404",
            Duration::from_secs(10)
        ),
        "{}",
        gw.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_and_forbidden_calls_give_kongs_500() {
    let probe_dir = tempfile::tempdir().unwrap();
    let (conf, _stop) = serve_probe(probe_dir.path());
    let gw = Gateway::start_with(common::Config {
        plugins: &[],
        yml: YML,
        extra_conf: &conf,
    });
    let error = serde_json::json!({"message": "An unexpected error occurred"});

    let res = gw.get("/scoped", &[("x-fail", "1")]).await;
    assert_eq!(res.status, 500, "{}", gw.log());
    assert_eq!(res.json(), error);

    let res = gw.get("/scoped", &[("x-forbidden", "1")]).await;
    assert_eq!(res.status, 500, "{}", gw.log());
    assert_eq!(res.json(), error);
    assert!(
        gw.wait_for(
            "kong.response.get_status cannot be called in the access phase",
            Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );
    // The failed requests still ran the log phase.
    assert!(
        gw.wait_for("status=500", Duration::from_secs(10)),
        "{}",
        gw.log()
    );

    // And the next request is fine.
    assert_eq!(gw.get("/scoped", &[]).await.status, 200);
}
