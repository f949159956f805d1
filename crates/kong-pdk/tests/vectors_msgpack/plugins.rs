//! The Python plugins of the MsgPack:1 recordings, ported to Rust with
//! kong-pdk's typed calls where they exist and `kong.call` for the rest.

use kong_pdk::{Kong, PhaseResult, Plugin, Protocol, Schema};
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// Kong's `py-hello` fixture.
#[derive(Deserialize, Schema)]
pub(crate) struct RsHello {
    message: Option<String>,
}

#[kong_pdk::plugin]
impl Plugin for RsHello {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        let message = self.message.as_deref().unwrap_or("hello");
        kong.response()
            .set_header(
                "x-hello-from-python",
                &format!("Python says {message} to {host}"),
            )
            .await?;
        kong.response()
            .set_header("x-python-pid", &std::process::id().to_string())
            .await?;
        Ok(())
    }
}

/// `py-kbprobe`: typed getters, then the calls ProtoBuf:1 cannot make.
#[derive(Deserialize, Schema)]
pub(crate) struct RsProbe {
    #[allow(dead_code)]
    tag: Option<String>,
}

#[kong_pdk::plugin]
impl Plugin for RsProbe {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        kong.request().get_headers().await?;
        kong.request().get_query().await?;
        let body = kong
            .request()
            .get_raw_body()
            .await?
            .into_bytes(1 << 20)
            .await?;
        let route = kong.router().get_route().await?;
        let _: Json = kong.call("kong.node.get_memory_stats", ("k", 1)).await?;
        kong.call::<()>(
            "kong.log.set_serialize_value",
            ("a.b", 1, json!({"mode": "add"})),
        )
        .await?;
        kong.response()
            .set_header("x-kbprobe-body-len", &body.len().to_string())
            .await?;
        let name = if route.name.is_empty() {
            "None"
        } else {
            &route.name
        };
        kong.response().set_header("x-kbprobe-route", name).await?;
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let record = kong.log().serialize().await?;
        kong.log()
            .notice(("py-kbprobe serialized bytes: ", record.len()))
            .await?;
        Ok(())
    }
}

/// `py-kbexit`: exit in access, the status in log.
#[derive(Deserialize, Schema)]
pub(crate) struct RsExit {
    status: Option<u16>,
}

#[kong_pdk::plugin]
impl Plugin for RsExit {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        kong.response()
            .exit(
                self.status.unwrap_or(403),
                r#"{"message":"denied by py-kbexit"}"#,
                [
                    ("Content-Type", "application/json"),
                    ("X-Kbexit", "yes"),
                    ("X-Kbexit", "twice"),
                ],
            )
            .await?;
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let status = kong.response().get_status().await?;
        kong.log()
            .notice(("py-kbexit log phase: status=", status, " err=", "None"))
            .await?;
        Ok(())
    }
}

/// `py-kbresp`: the buffered response phase.
#[derive(Deserialize, Schema)]
pub(crate) struct RsResp {
    #[allow(dead_code)]
    tag: Option<String>,
}

#[kong_pdk::plugin]
impl Plugin for RsResp {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn response(&self, kong: &mut Kong) -> PhaseResult {
        let status = kong.service_response().get_status().await?;
        let headers = kong.service_response().get_headers().await?;
        let body = kong.service_response().get_raw_body().await?;
        kong.response()
            .set_header("x-kbresp-upstream-status", &status.to_string())
            .await?;
        kong.response()
            .set_header("x-kbresp-body-len", &body.len().to_string())
            .await?;
        let server = headers.get("server").unwrap_or("None").to_owned();
        kong.response()
            .set_header("x-kbresp-server", &server)
            .await?;
        Ok(())
    }
}

/// `py-kbwrong`: nil results, a Lua error, an unknown name, and a call Kong
/// refuses (never answered).
#[derive(Deserialize, Schema)]
pub(crate) struct RsWrong {
    #[allow(dead_code)]
    mode: Option<String>,
}

#[kong_pdk::plugin]
impl Plugin for RsWrong {
    const PROTOCOL: Protocol = Protocol::MsgPack;

    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let missing: Option<String> = kong.ctx().get_shared("no-such-key").await?;
        assert_eq!(missing, None);
        // Kong 3.10 answers `nil, err` with a plain nil: reported as such.
        let err = kong.service().set_upstream("nope").await.unwrap_err();
        assert!(err.to_string().contains("Kong gave no result"), "{err}");
        kong.response().set_header("x-kbwrong-err", "None").await?;
        let unknown: Option<Json> = kong.call("kong.request.no_such_function", ("x",)).await?;
        assert_eq!(unknown, None);
        kong.response()
            .set_header("x-kbwrong-unknown", "None/None")
            .await?;
        // Kong refuses it in access and never answers.
        let status = kong.response().get_status().await;
        kong.response()
            .set_header("x-kbwrong-after", &format!("{status:?}"))
            .await?;
        Ok(())
    }
}
