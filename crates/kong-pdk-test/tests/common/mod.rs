//! A probe plugin whose config lists, per phase, the PDK calls to make.
//! Each call's result is logged (`kong.log.info("<action> => <result>")`),
//! so a test reads what the handler saw in `Outcome::logs`; a failed call
//! fails the handler with that error.
//!
//! Actions are `name|arg|arg`, e.g. `req.header|host` or `exit|403|denied`.
//!
//! With a `run` id in its config the probe keeps the results out of band
//! instead ([`take_answers`]), so nothing but the actions reaches Kong (the
//! call layer's tests count round trips).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use kong_pdk::{Headers, Kong, PhaseResult, Plugin, Query, Schema};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Debug, Deserialize, Schema)]
pub struct Probe {
    /// When set, each result is kept out of band under this id
    /// ([`take_answers`]) instead of logged through Kong, so that nothing
    /// but the actions reaches Kong (the call layer's tests count round
    /// trips).
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub on_certificate: Vec<String>,
    #[serde(default)]
    pub on_rewrite: Vec<String>,
    #[serde(default)]
    pub on_access: Vec<String>,
    #[serde(default)]
    pub on_response: Vec<String>,
    #[serde(default)]
    pub on_log: Vec<String>,
}

/// The same probe without a `response` handler (Kong does not buffer).
#[derive(Debug, Deserialize, Schema)]
pub struct Unbuffered {
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub on_certificate: Vec<String>,
    #[serde(default)]
    pub on_rewrite: Vec<String>,
    #[serde(default)]
    pub on_access: Vec<String>,
    #[serde(default)]
    pub on_response: Vec<String>,
    #[serde(default)]
    pub on_log: Vec<String>,
}

#[kong_pdk::plugin]
impl Plugin for Probe {
    async fn certificate(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_certificate).await
    }
    async fn rewrite(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_rewrite).await
    }
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_access).await
    }
    async fn response(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_response).await
    }
    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_log).await
    }
}

#[kong_pdk::plugin]
impl Plugin for Unbuffered {
    async fn certificate(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_certificate).await
    }
    async fn rewrite(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_rewrite).await
    }
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_access).await
    }
    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        run(kong, self.run.as_deref(), &self.on_log).await
    }
}

async fn run(kong: &mut Kong, record: Option<&str>, actions: &[String]) -> PhaseResult {
    for action in actions {
        let Some(run) = record else {
            let result = act(kong, action).await?;
            kong.log().info(format!("{action} => {result}")).await?;
            continue;
        };
        let result = act(kong, action).await;
        let seen = match &result {
            Ok(v) => format!("{action} => {v}"),
            Err(e) => format!("{action} => error: {e}"),
        };
        ANSWERS
            .lock()
            .unwrap()
            .entry(run.to_owned())
            .or_default()
            .push(seen);
        result?;
    }
    Ok(())
}

fn pairs(spec: &str) -> Vec<(String, String)> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Runs one action; its result as text.
pub async fn act(kong: &mut Kong, action: &str) -> Result<String, kong_pdk::BoxError> {
    let parts: Vec<&str> = action.split('|').collect();
    let a = |i: usize| parts.get(i).copied().unwrap_or_default();
    Ok(match parts[0] {
        "fail" => return Err(a(1).into()),
        "client.ip" => kong.client().get_ip().await?,
        "client.forwarded_ip" => kong.client().get_forwarded_ip().await?,
        "client.port" => kong.client().get_port().await?.to_string(),
        "client.consumer" => format!("{:?}", kong.client().get_consumer().await?),
        "client.credential" => format!("{:?}", kong.client().get_credential().await?),
        "client.protocol" => kong.client().get_protocol(a(1) == "true").await?,
        "client.authenticate" => {
            let consumer = kong_pdk::entities::Consumer::with_id(a(1));
            kong.client().authenticate(Some(&consumer), None).await?;
            "ok".into()
        }
        "ctx.set" => {
            let v: Json = serde_json::from_str(a(2))?;
            kong.ctx().set_shared(a(1), &v).await?;
            "ok".into()
        }
        "ctx.get" => format!("{:?}", kong.ctx().get_shared::<Option<Json>>(a(1)).await?),
        "ngx.set" => {
            let v: Json = serde_json::from_str(a(2))?;
            kong.nginx().set_ctx(a(1), &v).await?;
            "ok".into()
        }
        "ngx.get" => format!("{:?}", kong.nginx().get_ctx::<Option<Json>>(a(1)).await?),
        "ngx.var" => kong.nginx().get_var(a(1)).await?,
        "log.err" => {
            kong.log().err(a(1)).await?;
            "ok".into()
        }
        "log.serialize" => kong.log().serialize().await?,
        "log.set" => {
            let v: Json = serde_json::from_str(a(2))?;
            kong.log().set_serialize_value(a(1), &v).await?;
            "ok".into()
        }
        "req.scheme" => kong.request().get_scheme().await?,
        "req.host" => kong.request().get_host().await?,
        "req.method" => kong.request().get_method().await?,
        "req.path" => kong.request().get_path().await?,
        "req.path_with_query" => kong.request().get_path_with_query().await?,
        "req.raw_query" => kong.request().get_raw_query().await?,
        "req.query_arg" => kong.request().get_query_arg(a(1)).await?,
        "req.query" => format!("{:?}", kong.request().get_query().await?),
        "req.header" => kong.request().get_header(a(1)).await?,
        "req.headers" => format!("{:?}", kong.request().get_headers().await?),
        "req.body" => format!("{:?}", kong.request().get_raw_body().await?),
        "req.forwarded" => format!(
            "{} {} {}",
            kong.request().get_forwarded_scheme().await?,
            kong.request().get_forwarded_host().await?,
            kong.request().get_forwarded_port().await?
        ),
        "resp.status" => kong.response().get_status().await?.to_string(),
        "resp.header" => kong.response().get_header(a(1)).await?,
        "resp.source" => kong.response().get_source().await?,
        "resp.set_status" => {
            kong.response().set_status(a(1).parse()?).await?;
            "ok".into()
        }
        "resp.set_header" => {
            kong.response().set_header(a(1), a(2)).await?;
            "ok".into()
        }
        "resp.add_header" => {
            kong.response().add_header(a(1), a(2)).await?;
            "ok".into()
        }
        "resp.clear_header" => {
            kong.response().clear_header(a(1)).await?;
            "ok".into()
        }
        "exit" => {
            let headers = pairs(a(3));
            kong.response().exit(a(1).parse()?, a(2), headers).await?;
            "exit returned".into()
        }
        "router.route" => kong.router().get_route().await?.id,
        "svc.set_path" => {
            kong.service_request().set_path(a(1)).await?;
            "ok".into()
        }
        "svc.set_raw_query" => {
            kong.service_request().set_raw_query(a(1)).await?;
            "ok".into()
        }
        "svc.set_query" => {
            let q: Query = pairs(a(1)).into_iter().collect();
            kong.service_request().set_query(&q).await?;
            "ok".into()
        }
        "svc.set_method" => {
            kong.service_request().set_method(a(1)).await?;
            "ok".into()
        }
        "svc.set_scheme" => {
            kong.service_request().set_scheme(a(1)).await?;
            "ok".into()
        }
        "svc.set_header" => {
            kong.service_request().set_header(a(1), a(2)).await?;
            "ok".into()
        }
        "svc.add_header" => {
            kong.service_request().add_header(a(1), a(2)).await?;
            "ok".into()
        }
        "svc.clear_header" => {
            kong.service_request().clear_header(a(1)).await?;
            "ok".into()
        }
        "svc.set_headers" => {
            let h: Headers = pairs(a(1)).into_iter().collect();
            kong.service_request().set_headers(&h).await?;
            "ok".into()
        }
        "svc.set_body" => {
            kong.service_request().set_raw_body(a(1)).await?;
            "ok".into()
        }
        "svc.set_target" => {
            kong.service().set_target(a(1), a(2).parse()?).await?;
            "ok".into()
        }
        "svc.set_upstream" => kong.service().set_upstream(a(1)).await?.to_string(),
        "svc_resp.status" => kong.service_response().get_status().await?.to_string(),
        "svc_resp.header" => kong.service_response().get_header(a(1)).await?,
        "svc_resp.body" => {
            String::from_utf8_lossy(&kong.service_response().get_raw_body().await?).into_owned()
        }
        other => return Err(format!("unknown probe action {other}").into()),
    })
}

/// What each recording [`Probe`] run's handlers saw: run id → `"<action> => <result>"`.
static ANSWERS: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());

/// The answers a recording [`Probe`] run saw, in order (and forgets them).
pub fn take_answers(run: &str) -> Vec<String> {
    ANSWERS.lock().unwrap().remove(run).unwrap_or_default()
}

/// The probe's config: `(phase field, actions)` pairs.
pub fn probe(phases: &[(&str, &[&str])]) -> Json {
    let mut config = serde_json::Map::new();
    for (phase, actions) in phases {
        config.insert(format!("on_{phase}"), serde_json::json!(actions));
    }
    Json::Object(config)
}

/// The result the probe logged for `action` (the first time it ran).
pub fn seen<'a>(out: &'a kong_pdk_test::Outcome, action: &str) -> &'a str {
    let prefix = format!("{action} => ");
    out.logs
        .iter()
        .find_map(|l| l.message.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| {
            panic!(
                "{action} did not complete; logs: {:#?}; errors: {:#?}",
                out.logs, out.kong_errors
            )
        })
}
