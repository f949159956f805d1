//! Rust ports of the go-pdk plugins the recordings were made with: the same
//! PDK calls with the same arguments, in the same order.

use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// go-pdk's example `go-hello`.
#[derive(Deserialize, Schema)]
pub(crate) struct GoHello {
    message: String,
}

#[kong_pdk::plugin]
impl Plugin for GoHello {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        let greeting = format!("Go says {} to {host}", self.message);
        kong.response()
            .set_header("x-hello-from-go", &greeting)
            .await?;
        Ok(())
    }
}

/// Kong's spec fixture `go-hello` (access, response, log).
#[derive(Deserialize, Schema)]
pub(crate) struct GoHelloFixture {
    message: String,
}

#[kong_pdk::plugin]
impl Plugin for GoHelloFixture {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        let greeting = format!("Go says {} to {host}", self.message);
        kong.response()
            .set_header("x-hello-from-go", &greeting)
            .await?;
        kong.ctx().set_shared("shared_msg", &self.message).await?;
        Ok(())
    }

    async fn response(&self, kong: &mut Kong) -> PhaseResult {
        let server = kong.service_response().get_header("Server").await?;
        kong.response()
            .set_header(
                "x-hello-from-go-at-response",
                &format!("got from server '{server}'"),
            )
            .await?;
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let start: Json = kong.nginx().get_ctx("KONG_ACCESS_START").await?;
        kong.log().debug(("access_start: ", start)).await?;
        let header = kong.request().get_header("X-Loose-Data").await?;
        kong.log().debug(("request_header: ", header)).await?;
        let header = kong.response().get_header("X-Powered-By").await?;
        kong.log().debug(("response_header: ", header)).await?;
        let shared: Json = kong.ctx().get_shared("shared_msg").await?;
        kong.log().debug(("shared_msg: ", shared)).await?;
        let serialized = kong.log().serialize().await?;
        kong.log().debug(("serialized:", serialized)).await?;
        Ok(())
    }
}

/// The `go-kbtest` test plugin.
#[derive(Deserialize, Schema)]
pub(crate) struct GoKbtest {
    mode: String,
    status: Option<u16>,
}

/// Go's `json.Marshal` of a nil slice is `null`.
fn list(items: &[String]) -> Json {
    if items.is_empty() {
        Json::Null
    } else {
        json!(items)
    }
}

#[kong_pdk::plugin]
impl Plugin for GoKbtest {
    async fn rewrite(&self, kong: &mut Kong) -> PhaseResult {
        kong.ctx()
            .set_shared("kbtest_rewrite", "seen-in-rewrite")
            .await?;
        if self.mode == "rewrite-exit" {
            kong.response()
                .exit(
                    self.status.unwrap_or(401),
                    "rewrite says no\n",
                    [("X-Kbtest-Phase", "rewrite")],
                )
                .await?;
        }
        Ok(())
    }

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        match self.mode.as_str() {
            "exit" => {
                kong.response()
                    .exit(
                        self.status.unwrap_or(403),
                        r#"{"message":"denied by go-kbtest"}"#,
                        [
                            ("Content-Type", "application/json"),
                            ("X-Kbtest-Exit", "yes"),
                            ("X-Kbtest-Exit", "twice"),
                        ],
                    )
                    .await?;
            }
            "upstream" => {
                kong.service_request()
                    .set_header("X-Added", "by-kbtest")
                    .await?;
                kong.service_request()
                    .add_header("X-Multi-Added", "one")
                    .await?;
                kong.service_request()
                    .add_header("X-Multi-Added", "two")
                    .await?;
                kong.service_request().clear_header("X-Remove-Me").await?;
                kong.service_request().set_path("/changed/path").await?;
                kong.service_request().set_raw_query("q=2&z=%20y").await?;
                kong.service_request().set_method("POST").await?;
                kong.service_request()
                    .set_raw_body(b"body-from-kbtest")
                    .await?;
                kong.response().set_header("X-Kbtest", "upstream").await?;
            }
            "probe" => probe(kong).await?,
            _ => {}
        }
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let status = kong.response().get_status().await?;
        let tag = kong.request().get_header("x-kbtest-tag").await?;
        kong.log()
            .notice(format!(
                "go-kbtest log phase: status={status} err=<nil> tag={tag}"
            ))
            .await?;
        Ok(())
    }
}

/// Every getter, in the recorded order; answers with Go's JSON of them.
async fn probe(kong: &mut Kong) -> PhaseResult {
    let mut r = serde_json::Map::new();
    let mut put = |k: &str, v: Json| {
        r.insert(k.to_owned(), v);
    };
    put(
        "request.get_scheme",
        json!(kong.request().get_scheme().await?),
    );
    put("request.get_host", json!(kong.request().get_host().await?));
    put("request.get_port", json!(kong.request().get_port().await?));
    put(
        "request.get_forwarded_scheme",
        json!(kong.request().get_forwarded_scheme().await?),
    );
    put(
        "request.get_forwarded_host",
        json!(kong.request().get_forwarded_host().await?),
    );
    put(
        "request.get_forwarded_port",
        json!(kong.request().get_forwarded_port().await?),
    );
    put(
        "request.get_http_version",
        json!(kong.request().get_http_version().await?),
    );
    put(
        "request.get_method",
        json!(kong.request().get_method().await?),
    );
    put("request.get_path", json!(kong.request().get_path().await?));
    put(
        "request.get_path_with_query",
        json!(kong.request().get_path_with_query().await?),
    );
    put(
        "request.get_raw_query",
        json!(kong.request().get_raw_query().await?),
    );
    put(
        "request.get_query_arg(a)",
        json!(kong.request().get_query_arg("a").await?),
    );
    // go-pdk's multimap drops the `flag` argument (a Lua `true`).
    let query = kong.request().get_query().await?;
    let query: serde_json::Map<String, Json> = query
        .iter()
        .filter(|(k, _)| k.as_str() != "flag")
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    put("request.get_query", Json::Object(query));
    put(
        "request.get_header(x-multi)",
        json!(kong.request().get_header("x-multi").await?),
    );
    let headers = kong.request().get_headers().await?;
    let headers: serde_json::Map<String, Json> =
        headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    put("request.get_headers", Json::Object(headers));
    let body = match kong.request().get_raw_body().await? {
        kong_pdk::pdk::RawBody::InMemory(b) => String::from_utf8(b)?,
        kong_pdk::pdk::RawBody::File(p) => format!("file {}", p.display()),
    };
    put("request.get_raw_body", json!(body));
    put("client.get_ip", json!(kong.client().get_ip().await?));
    put(
        "client.get_forwarded_ip",
        json!(kong.client().get_forwarded_ip().await?),
    );
    put("client.get_port", json!(kong.client().get_port().await?));
    put(
        "client.get_forwarded_port",
        json!(kong.client().get_forwarded_port().await?),
    );
    put(
        "client.get_protocol",
        json!(kong.client().get_protocol(false).await?),
    );
    let c = kong.client().get_consumer().await?;
    put(
        "client.get_consumer",
        json!({"id": c.id, "created_at": c.created_at, "username": c.username,
               "custom_id": c.custom_id, "tags": list(&c.tags)}),
    );
    let cred = kong.client().get_credential().await?;
    put(
        "client.get_credential",
        json!({"id": cred.id, "consumer_id": cred.consumer_id}),
    );
    put(
        "ip.is_trusted(127.0.0.1)",
        json!(kong.ip().is_trusted("127.0.0.1").await?),
    );
    put(
        "nginx.get_var(request_uri)",
        json!(kong.nginx().get_var("request_uri").await?),
    );
    put(
        "nginx.get_subsystem",
        json!(kong.nginx().get_subsystem().await?),
    );
    put(
        "nginx.req_start_time",
        json!(kong.nginx().req_start_time().await?),
    );
    kong.nginx().set_ctx("kbtest", "v1").await?;
    put("nginx.set_ctx", Json::Null);
    let v: Json = kong.nginx().get_ctx("kbtest").await?;
    put("nginx.get_ctx(kbtest)", v);
    let v: Json = kong.ctx().get_shared("kbtest_rewrite").await?;
    put("ctx.shared.get(kbtest_rewrite)", v);
    put("node.get_id", json!(kong.node().get_id().await?));
    let m = kong.node().get_memory_stats().await?;
    let dicts: serde_json::Map<String, Json> = m
        .lua_shared_dicts
        .iter()
        .map(|(k, d)| {
            (
                k.clone(),
                json!({"allocated_slabs": d.allocated_slabs, "capacity": d.capacity}),
            )
        })
        .collect();
    let vms: Vec<Json> = m
        .workers_lua_vms
        .iter()
        .map(|w| json!({"http_allocated_gc": w.http_allocated_gc, "pid": w.pid}))
        .collect();
    put(
        "node.get_memory_stats",
        json!({"lua_shared_dicts": dicts, "workers_lua_vms": vms}),
    );
    let route = kong.router().get_route().await?;
    put(
        "router.get_route",
        json!({
            "id": route.id, "created_at": route.created_at, "updated_at": route.updated_at,
            "name": route.name, "protocols": list(&route.protocols),
            "methods": list(&route.methods), "hosts": list(&route.hosts),
            "paths": list(&route.paths), "headers": list(&route.headers),
            "https_redirect_status_code": route.https_redirect_status_code,
            "regex_priority": route.regex_priority, "strip_path": route.strip_path,
            "preserve_host": route.preserve_host, "snis": list(&route.snis),
            "sources": list(&route.sources), "destinations": list(&route.destinations),
            "tags": list(&route.tags),
            "service": {"id": route.service_id.unwrap_or_default()},
        }),
    );
    let svc = kong.router().get_service().await?;
    put(
        "router.get_service",
        json!({
            "id": svc.id, "created_at": svc.created_at, "updated_at": svc.updated_at,
            "name": svc.name, "retries": svc.retries, "protocol": svc.protocol,
            "host": svc.host, "port": svc.port, "path": svc.path,
            "connect_timeout": svc.connect_timeout, "write_timeout": svc.write_timeout,
            "read_timeout": svc.read_timeout, "tags": list(&svc.tags),
            "client_certificate": {"id": svc.client_certificate_id.unwrap_or_default()},
        }),
    );
    kong.log().notice(("go-kbtest probe", 42, true)).await?;
    put("log.notice", Json::Null);
    kong.service().set_upstream("nope").await?;
    put("service.set_upstream(nope)", Json::Null);
    let body = serde_json::to_vec_pretty(&Json::Object(r))?;
    kong.response()
        .exit(200, body, [("Content-Type", "application/json")])
        .await?;
    Ok(())
}

/// The `go-kbresp` test plugin (response phase).
#[derive(Deserialize, Schema)]
pub(crate) struct GoKbresp {
    tag: String,
}

#[kong_pdk::plugin]
impl Plugin for GoKbresp {
    async fn response(&self, kong: &mut Kong) -> PhaseResult {
        let status = kong.service_response().get_status().await?;
        let upstream = kong.service_response().get_header("x-upstream").await?;
        let body = kong.service_response().get_raw_body().await?;
        let has_server = body
            .windows(b"\"server\":\"nginx\"".len())
            .any(|w| w == b"\"server\":\"nginx\"");
        kong.response()
            .set_header("X-Kbresp-Upstream-Status", &status.to_string())
            .await?;
        kong.response()
            .set_header("X-Kbresp-Upstream-Header", &upstream)
            .await?;
        kong.response()
            .set_header("X-Kbresp-Body-Len", &body.len().to_string())
            .await?;
        kong.response()
            .set_header("X-Kbresp-Has-Server", &has_server.to_string())
            .await?;
        kong.response()
            .set_header("X-Kbresp-Tag", &self.tag)
            .await?;
        if self.tag == "exit" {
            kong.response()
                .exit(418, "replaced by response phase\n", [])
                .await?;
        }
        Ok(())
    }
}

/// Set when `GoWrongPhase::access` saw every answer it expected (its
/// connection is gone by then, so a failure could not show on the wire).
pub(crate) static WRONG_PHASE_CHECKED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The `go-wrong-phase` test plugin: calls a getter Kong forbids in access.
#[derive(Deserialize, Schema)]
pub(crate) struct GoWrongPhase {
    #[allow(dead_code)]
    mode: String,
}

#[kong_pdk::plugin]
impl Plugin for GoWrongPhase {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let missing: Option<String> = kong.ctx().get_shared("no-such-key").await?;
        assert_eq!(missing, None, "a nil Value reads as None");
        let absent = kong.request().get_header("x-absent").await?;
        assert_eq!(absent, "", "a nil String reads as empty");
        let rejected = kong.response().get_status().await;
        assert!(
            matches!(rejected, Err(kong_pdk::Error::ConnectionClosed { .. })),
            "{rejected:?}"
        );
        let after = kong.response().set_header("x-after-error", "reached").await;
        assert!(
            matches!(after, Err(kong_pdk::Error::ConnectionBroken { .. })),
            "{after:?}"
        );
        WRONG_PHASE_CHECKED.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}
