//! [`TestEnv`]: one request through a simulated Kong, and its [`Outcome`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kong_pdk::{Phase, Plugin};
use kong_pdk_proto as pb;
use serde_json::{Map, Value as Json};

use crate::config::{self, KongKeys, Scope};
use crate::driver::EventEnd;
use crate::error::HarnessError;
use crate::harness::{self, KongSide, ServerSettings};
use crate::headers::HeaderList;
use crate::http::{ClientResponse, ResponseSource, UpstreamRequest, UpstreamResponse};
use crate::request::Request;
use crate::rules;
use crate::sim::{CallOutcome, LogEntry, LogLevel, PdkCall, Sim, World};
use crate::values;

/// The body of Kong's own 500 answer when a phase fails.
pub const ERROR_BODY: &str = r#"{"message":"An unexpected error occurred"}"#;

/// The node id `kong.node.get_id` returns unless [`TestEnv::node_id`] says otherwise.
pub const DEFAULT_NODE_ID: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e103";

type UpstreamFn = dyn Fn(&UpstreamRequest) -> UpstreamResponse + Send + Sync;

/// How the upstream service answers.
#[derive(Clone)]
enum Upstream {
    Echo,
    Fixed(UpstreamResponse),
    Func(Arc<UpstreamFn>),
}

impl Upstream {
    fn respond(&self, req: &UpstreamRequest) -> UpstreamResponse {
        match self {
            Upstream::Echo => req.echo(),
            Upstream::Fixed(res) => res.clone(),
            Upstream::Func(f) => f(req),
        }
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Echo => f.write_str("Echo"),
            Upstream::Fixed(res) => f.debug_tuple("Fixed").field(res).finish(),
            Upstream::Func(_) => f.write_str("Func(..)"),
        }
    }
}

/// How one phase's event ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseEnd {
    /// The handler returned and the event finished normally.
    Returned,
    /// The plugin called `kong.response.exit` with this status (the server
    /// does so with 500 when a handler returns an error or panics).
    Exit {
        /// The exit status.
        status: u16,
    },
    /// Kong raised an error: a PDK call Kong forbids here or whose
    /// arguments it rejects, an exit where Kong forbids it, or a server that
    /// closed the connection. In `rewrite`/`access`/`response` the client
    /// gets Kong's 500; in `certificate` the TLS handshake fails; in `log`
    /// it is only logged.
    Failed {
        /// What Kong complained about.
        reason: String,
    },
}

/// One phase that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRun {
    /// The phase.
    pub phase: Phase,
    /// How its event ended.
    pub end: PhaseEnd,
}

/// Everything that happened to one request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// What the client got.
    pub response: ClientResponse,
    /// The request the upstream received, or, when it was never proxied
    /// (an exit or a failure), the one Kong would have sent.
    pub upstream_request: UpstreamRequest,
    /// The upstream's response, when the request was proxied.
    pub upstream_response: Option<UpstreamResponse>,
    /// The plugin's phases that ran, in order, and how each ended.
    pub phases: Vec<PhaseRun>,
    /// Every PDK call, in order, with its decoded arguments.
    pub calls: Vec<PdkCall>,
    /// The calls the simulation does not model (answered with Kong's nil).
    /// A test should assert this is empty.
    pub unhandled_calls: Vec<PdkCall>,
    /// The plugin's `kong.log.*` lines.
    pub logs: Vec<LogEntry>,
    /// Errors Kong itself would log: rejected calls and exits.
    pub kong_errors: Vec<String>,
    /// `kong.ctx.shared` at the end of the request.
    pub ctx_shared: Map<String, Json>,
    /// `ngx.ctx` at the end of the request.
    pub nginx_ctx: Map<String, Json>,
    /// `kong.log.set_serialize_value` calls, in order.
    pub serialize_values: Vec<(String, Json)>,
    /// The record `kong.log.serialize()` gives at the end of the request.
    pub log_record: Json,
    /// The authenticated consumer at the end of the request.
    pub consumer: Option<pb::Consumer>,
    /// The authenticated credential at the end of the request.
    pub credential: Option<pb::AuthenticatedCredential>,
}

impl Outcome {
    /// The phases that ran, in order.
    pub fn ran(&self) -> Vec<Phase> {
        self.phases.iter().map(|p| p.phase).collect()
    }

    /// How `phase` ended, if it ran.
    pub fn phase_end(&self, phase: Phase) -> Option<&PhaseEnd> {
        self.phases
            .iter()
            .find(|p| p.phase == phase)
            .map(|p| &p.end)
    }

    /// Whether the request reached the upstream.
    pub fn proxied(&self) -> bool {
        self.upstream_response.is_some()
    }

    /// Round trips the plugin made to Kong: every PDK call Kong received
    /// (`kong.response.exit` included), in every phase. With the call layer
    /// on this is fewer than the calls the handlers wrote.
    pub fn round_trips(&self) -> usize {
        self.calls.len()
    }

    /// The round trips made in `phase`.
    pub fn round_trips_in(&self, phase: Phase) -> usize {
        self.calls.iter().filter(|c| c.phase == phase).count()
    }

    /// The methods called, in order.
    pub fn methods(&self) -> Vec<&str> {
        self.calls.iter().map(|c| c.method.as_str()).collect()
    }

    /// The calls to `method`.
    pub fn calls_to(&self, method: &str) -> Vec<&PdkCall> {
        self.calls.iter().filter(|c| c.method == method).collect()
    }

    /// The calls Kong rejected.
    pub fn rejected_calls(&self) -> Vec<&PdkCall> {
        self.calls
            .iter()
            .filter(|c| matches!(c.outcome, CallOutcome::Rejected(_)))
            .collect()
    }

    /// The messages logged at `level`.
    pub fn log_messages(&self, level: LogLevel) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|l| l.level == level)
            .map(|l| l.message.as_str())
            .collect()
    }
}

/// A simulated Kong for one kind of request: runs a plugin's real handlers,
/// over the real wire protocol, through the phases Kong would run.
///
/// See the [crate documentation](crate) for an example and for what is
/// modelled.
#[derive(Debug, Clone)]
pub struct TestEnv {
    request: Request,
    upstream: Upstream,
    name: String,
    scope: Scope,
    world: World,
    seq: i64,
    settings: ServerSettings,
}

impl TestEnv {
    /// A simulated Kong that will receive `request`. The upstream is the echo
    /// upstream (see [`UpstreamRequest::echo`]).
    pub fn new(request: Request) -> TestEnv {
        TestEnv {
            request,
            upstream: Upstream::Echo,
            name: "test-plugin".into(),
            scope: Scope::Global,
            world: World {
                consumers: Vec::new(),
                upstreams: Vec::new(),
                node_id: DEFAULT_NODE_ID.into(),
                workspace_id: config::WORKSPACE_ID.into(),
            },
            seq: 0,
            settings: ServerSettings::default(),
        }
    }

    /// The upstream answers with `response` instead of echoing.
    pub fn upstream_response(mut self, response: UpstreamResponse) -> TestEnv {
        self.upstream = Upstream::Fixed(response);
        self
    }

    /// The upstream answers with what `f` makes of the request it gets.
    pub fn upstream_with(
        mut self,
        f: impl Fn(&UpstreamRequest) -> UpstreamResponse + Send + Sync + 'static,
    ) -> TestEnv {
        self.upstream = Upstream::Func(Arc::new(f));
        self
    }

    /// The plugin's name (default `test-plugin`).
    pub fn plugin_name(mut self, name: &str) -> TestEnv {
        self.name = name.into();
        self
    }

    /// Where the plugin is configured (default [`Scope::Global`]).
    pub fn scope(mut self, scope: Scope) -> TestEnv {
        self.scope = scope;
        self
    }

    /// A consumer in Kong's database, for `kong.client.load_consumer`.
    pub fn known_consumer(mut self, consumer: pb::Consumer) -> TestEnv {
        self.world.consumers.push(consumer);
        self
    }

    /// An upstream entity `kong.service.set_upstream` can choose.
    pub fn known_upstream(mut self, name: &str) -> TestEnv {
        self.world.upstreams.push(name.into());
        self
    }

    /// The node id (`kong.node.get_id`).
    pub fn node_id(mut self, id: &str) -> TestEnv {
        self.world.node_id = id.into();
        self
    }

    /// How long the server lets one handler run (default 50 s).
    pub fn handler_timeout(mut self, limit: Duration) -> TestEnv {
        self.settings.handler_timeout = Some(limit);
        self
    }

    /// Turns kong-pdk's call layer off (`false`) for this plugin's server, so
    /// every PDK call reaches the simulated Kong as written (default: the
    /// plugin's own setting, on unless it sets `CALL_LAYER = false`).
    pub fn call_layer(mut self, on: bool) -> TestEnv {
        self.settings.call_layer = Some(on);
        self
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Runs the request through Kong with plugin `P` configured with
    /// `config`: every phase `P` declares, in Kong's order.
    ///
    /// # Panics
    ///
    /// When the run cannot take place ([`HarnessError`]), e.g. the config
    /// does not fit the plugin's schema; use [`try_run`](Self::try_run) to
    /// get the error instead.
    pub async fn run<P: Plugin>(&mut self, config: Json) -> Outcome {
        self.try_run::<P>(config)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`run`](Self::run), returning an error when the run cannot take place.
    pub async fn try_run<P: Plugin>(&mut self, config: Json) -> Result<Outcome, HarnessError> {
        self.execute::<P>(None, config).await
    }

    /// Runs the request through Kong, but calls only `P`'s `phase` handler:
    /// Kong's flow around it (the upstream, the response, exits of earlier
    /// phases) is the same as in [`run`](Self::run).
    ///
    /// # Panics
    ///
    /// When the run cannot take place, e.g. `P` does not declare `phase`.
    pub async fn phase<P: Plugin>(&mut self, phase: Phase, config: Json) -> Outcome {
        self.try_phase::<P>(phase, config)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`phase`](Self::phase), returning an error when the run cannot take place.
    pub async fn try_phase<P: Plugin>(
        &mut self,
        phase: Phase,
        config: Json,
    ) -> Result<Outcome, HarnessError> {
        self.execute::<P>(Some(phase), config).await
    }

    /// Only the `certificate` handler (needs an `https://` request).
    pub async fn certificate<P: Plugin>(&mut self, config: Json) -> Outcome {
        self.phase::<P>(Phase::Certificate, config).await
    }

    /// Only the `rewrite` handler.
    pub async fn rewrite<P: Plugin>(&mut self, config: Json) -> Outcome {
        self.phase::<P>(Phase::Rewrite, config).await
    }

    /// Only the `access` handler.
    pub async fn access<P: Plugin>(&mut self, config: Json) -> Outcome {
        self.phase::<P>(Phase::Access, config).await
    }

    /// Only the `response` handler.
    pub async fn response<P: Plugin>(&mut self, config: Json) -> Outcome {
        self.phase::<P>(Phase::Response, config).await
    }

    /// Only the `log` handler.
    pub async fn log<P: Plugin>(&mut self, config: Json) -> Outcome {
        self.phase::<P>(Phase::Log, config).await
    }

    fn keys(&self) -> KongKeys {
        let mut keys = KongKeys::global(self.seq);
        keys.workspace_id = self.world.workspace_id.clone();
        match self.scope {
            Scope::Global => {}
            Scope::Route => keys.route_id = Some(self.request.route.id.clone()),
            Scope::Service => keys.service_id = Some(self.request.service.id.clone()),
            Scope::Consumer => {
                keys.consumer_id = Some(
                    self.request
                        .consumer
                        .as_ref()
                        .map(|c| c.id.clone())
                        .unwrap_or_default(),
                );
            }
        }
        keys
    }

    fn check_phase<P: Plugin>(&self, phase: Phase) -> Result<(), HarnessError> {
        let declared = P::PHASES;
        if !declared.contains(&phase) {
            let names: Vec<&str> = declared.iter().map(|p| p.as_str()).collect();
            return Err(HarnessError::Phase(format!(
                "the plugin does not handle the {phase} phase (it declares: {}), so Kong never calls it",
                names.join(", ")
            )));
        }
        match phase {
            Phase::Preread => Err(HarnessError::Phase(
                "preread is the stream subsystem's phase; the simulation models HTTP requests"
                    .into(),
            )),
            Phase::Certificate if !self.request.is_tls() => Err(HarnessError::Phase(
                "Kong runs the certificate phase only for TLS connections: use an https:// URL"
                    .into(),
            )),
            Phase::Certificate | Phase::Rewrite if self.scope != Scope::Global => {
                Err(HarnessError::Phase(format!(
                    "Kong runs the {phase} phase only for global plugins, and this one is scoped ({:?})",
                    self.scope
                )))
            }
            _ => Ok(()),
        }
    }

    async fn execute<P: Plugin>(
        &mut self,
        only: Option<Phase>,
        config: Json,
    ) -> Result<Outcome, HarnessError> {
        if let Some(phase) = only {
            self.check_phase::<P>(phase)?;
        }
        self.seq += 1;
        let config = config::shape::<P>(&self.name, config, &self.keys())?;
        let declared = P::PHASES;
        let runs = move |p: Phase| declared.contains(&p) && only.is_none_or(|o| o == p);
        let global = self.scope == Scope::Global;
        let tls = self.request.is_tls();
        let body_dir = tempfile::tempdir()?;
        let mut sim = Sim::new(
            self.request.clone(),
            self.world.clone(),
            declared.contains(&Phase::Response),
            body_dir.path().to_owned(),
        );
        let upstream = self.upstream.clone();
        let name = self.name.clone();
        harness::with_server::<P, _, _, _>(&self.name, self.settings, |mut kong| async move {
            let Some(status) = kong.start(&name, &config.to_string()).await? else {
                return Err(HarnessError::StartRefused(
                    harness::explain_refusal::<P>(&config).await,
                ));
            };
            let id = status.instance_id;
            let mut phases = Vec::new();
            if tls && global && runs(Phase::Certificate) {
                let end = run_phase(&mut kong, id, Phase::Certificate, &mut sim).await?;
                let failed = end != PhaseEnd::Returned;
                phases.push(PhaseRun {
                    phase: Phase::Certificate,
                    end,
                });
                if failed {
                    sim.no_response();
                    return Ok(finish(sim, phases));
                }
            }
            let mut answered = false;
            for phase in [Phase::Rewrite, Phase::Access] {
                if answered || (phase == Phase::Rewrite && !global) || !runs(phase) {
                    continue;
                }
                let end = run_phase(&mut kong, id, phase, &mut sim).await?;
                answered = end != PhaseEnd::Returned;
                phases.push(PhaseRun { phase, end });
            }
            if !answered {
                let sent = sim.upstream_request();
                let res = upstream.respond(&sent);
                sim.proxy(sent, res);
                if runs(Phase::Response) {
                    let end = run_phase(&mut kong, id, Phase::Response, &mut sim).await?;
                    phases.push(PhaseRun {
                        phase: Phase::Response,
                        end,
                    });
                }
            }
            if runs(Phase::Log) {
                let end = run_phase(&mut kong, id, Phase::Log, &mut sim).await?;
                phases.push(PhaseRun {
                    phase: Phase::Log,
                    end,
                });
            }
            drop(body_dir);
            Ok(finish(sim, phases))
        })
        .await
    }
}

/// Runs one event and applies how it ended.
async fn run_phase(
    kong: &mut KongSide,
    id: i32,
    phase: Phase,
    sim: &mut Sim,
) -> Result<PhaseEnd, HarnessError> {
    sim.phase = phase;
    let result = kong
        .event(id, phase.as_str(), |call| sim.answer(call))
        .await?;
    Ok(match result.end {
        EventEnd::Returned => PhaseEnd::Returned,
        EventEnd::Exit(args) => {
            let call = result.calls.last().expect("the exit call is recorded");
            sim.calls.push(PdkCall::new(phase, call, CallOutcome::Exit));
            exit(sim, phase, args)
        }
        EventEnd::Rejected(method) => {
            let reason = match sim.calls.last() {
                Some(PdkCall {
                    outcome: CallOutcome::Rejected(reason),
                    ..
                }) => reason.clone(),
                _ => format!("{method} was rejected"),
            };
            fail(sim, phase, reason)
        }
        EventEnd::ServerClosed => {
            let reason = "the plugin server closed the connection during the event".to_owned();
            sim.kong_errors.push(format!("[{phase}] {reason}"));
            fail(sim, phase, reason)
        }
    })
}

/// `kong.response.exit(status, body, headers)` as Kong applies it.
pub(crate) fn exit(sim: &mut Sim, phase: Phase, args: pb::ExitArgs) -> PhaseEnd {
    let spec = rules::spec("kong.response.exit").expect("exit is a Kong method");
    let refusal = if !spec.allows(phase) {
        Some(spec.refusal(phase))
    } else if !(100..=599).contains(&args.status) {
        Some(format!(
            "kong.response.exit: code must be a number between 100 and 599, got {}",
            args.status
        ))
    } else {
        None
    };
    let headers = match exit_headers(args.headers.as_ref()) {
        Ok(h) => h,
        Err(e) => return reject_exit(sim, phase, e),
    };
    if let Some(reason) = refusal {
        return reject_exit(sim, phase, reason);
    }
    let status = u16::try_from(args.status).expect("checked above");
    sim.respond(status, args.body, &headers, ResponseSource::Exit);
    PhaseEnd::Exit { status }
}

fn reject_exit(sim: &mut Sim, phase: Phase, reason: String) -> PhaseEnd {
    if let Some(call) = sim.calls.last_mut() {
        call.outcome = CallOutcome::Rejected(reason.clone());
    }
    sim.kong_errors.push(format!("[{phase}] {reason}"));
    fail(sim, phase, reason)
}

fn exit_headers(headers: Option<&pb::Struct>) -> Result<HeaderList, String> {
    let mut out = HeaderList::new();
    for (name, v) in headers.map(|h| h.fields.iter()).into_iter().flatten() {
        let items: Vec<&pb::Value> = match &v.kind {
            Some(pb::ValueKind::ListValue(l)) => l.values.iter().collect(),
            _ => vec![v],
        };
        for item in items {
            let value = match &item.kind {
                Some(pb::ValueKind::StringValue(s)) => s.clone(),
                Some(pb::ValueKind::NumberValue(n)) => values::lua_number(*n),
                Some(pb::ValueKind::BoolValue(b)) => b.to_string(),
                _ => {
                    return Err(format!(
                        "kong.response.exit: invalid value for header {name:?}"
                    ));
                }
            };
            out.add(name.clone(), value);
        }
    }
    Ok(out)
}

/// Kong's answer to a failed phase.
pub(crate) fn fail(sim: &mut Sim, phase: Phase, reason: String) -> PhaseEnd {
    match phase {
        Phase::Rewrite | Phase::Access | Phase::Response | Phase::Preread => {
            let headers: HeaderList = [("Content-Type", "application/json; charset=utf-8")]
                .into_iter()
                .collect();
            sim.respond(
                500,
                ERROR_BODY.as_bytes().to_vec(),
                &headers,
                ResponseSource::Error,
            );
        }
        Phase::Certificate => sim.no_response(),
        Phase::Log => {}
    }
    PhaseEnd::Failed { reason }
}

fn finish(sim: Sim, phases: Vec<PhaseRun>) -> Outcome {
    let log_record = sim.log_record();
    let upstream_request = sim.sent.clone().unwrap_or_else(|| sim.upstream_request());
    let unhandled_calls = sim
        .calls
        .iter()
        .filter(|c| c.outcome == CallOutcome::Unhandled)
        .cloned()
        .collect();
    Outcome {
        response: sim.client,
        upstream_request,
        upstream_response: sim.service_res,
        phases,
        calls: sim.calls,
        unhandled_calls,
        logs: sim.logs,
        kong_errors: sim.kong_errors,
        ctx_shared: sim.ctx_shared,
        nginx_ctx: sim.nginx_ctx,
        serialize_values: sim.serialize_values,
        log_record,
        consumer: sim.consumer,
        credential: sim.credential,
    }
}
