//! [`Exchange`]: the simulated Kong's state of one **live** request, for a
//! gateway that proxies real HTTP (`kong-pdk-dev gateway`) or drives a
//! plugin process (`kong-pdk-dev check`).
//!
//! [`TestEnv`](crate::TestEnv) owns the whole flow for one plugin in-process;
//! an `Exchange` leaves the flow to its caller (several plugins, real
//! sockets, a real upstream) and keeps only what Kong keeps per request:
//! the client request, the service request the plugins change, the
//! upstream response, the client response, `kong.ctx.shared`, `ngx.ctx`,
//! the consumer, log lines and the `kong.log.serialize()` record. Every PDK
//! call is answered with the same rules as in [`TestEnv`](crate::TestEnv).
//!
//! ```
//! use kong_pdk_test::live::Exchange;
//! use kong_pdk_test::{Phase, Request, pb};
//!
//! let mut ex = Exchange::new(
//!     Request::get("http://example.com/hello"),
//!     Vec::new(),
//!     kong_pdk_test::DEFAULT_NODE_ID,
//!     kong_pdk_test::WORKSPACE_ID,
//!     std::env::temp_dir(),
//! );
//! ex.set_phase(Phase::Access);
//! // A plugin asks for a header (normally through a `Connection` event):
//! let call = kong_pdk_test::Call {
//!     method: "kong.service.request.set_path".into(),
//!     args: prost::Message::encode_to_vec(&pb::Str { v: "/new".into() }),
//! };
//! ex.answer(&call);
//! assert_eq!(ex.upstream_request().path, "/new");
//! ```

use std::path::PathBuf;

use kong_pdk::Phase;
use kong_pdk_proto as pb;
use serde_json::Value as Json;

use crate::driver::{Call, EventEnd, EventResult, Reply};
use crate::env::{self, PhaseEnd};
use crate::headers::HeaderList;
use crate::http::{ClientResponse, ResponseSource, UpstreamRequest, UpstreamResponse};
use crate::request::Request;
use crate::sim::{CallOutcome, LogEntry, PdkCall, Sim, World};

/// One request inside a live gateway.
#[derive(Debug)]
pub struct Exchange {
    sim: Sim,
}

impl Exchange {
    /// The state of `request` on arrival. `consumers` are the consumers
    /// `kong.client.load_consumer` finds; request bodies larger than the
    /// request's `body_buffer_size` are written under `body_dir` when a
    /// plugin reads them (the directory must exist by then).
    pub fn new(
        request: Request,
        consumers: Vec<pb::Consumer>,
        node_id: &str,
        workspace_id: &str,
        body_dir: PathBuf,
    ) -> Exchange {
        let world = World {
            consumers,
            upstreams: Vec::new(),
            node_id: node_id.to_owned(),
            workspace_id: workspace_id.to_owned(),
        };
        Exchange {
            sim: Sim::new(request, world, false, body_dir),
        }
    }

    /// Whether Kong buffers the upstream response (some plugin of the
    /// request has a `response` phase).
    pub fn set_buffered(&mut self, buffered: bool) {
        self.sim.buffered = buffered;
    }

    /// Whether the upstream response is buffered.
    pub fn buffered(&self) -> bool {
        self.sim.buffered
    }

    /// The phase the next calls are made in.
    pub fn set_phase(&mut self, phase: Phase) {
        self.sim.phase = phase;
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.sim.phase
    }

    /// Kong's answer to one PDK call in the current phase
    /// ([`Reply::Reject`] when Kong raises an error).
    pub fn answer(&mut self, call: &Call) -> Reply {
        self.sim.answer(call)
    }

    /// Applies how an event ended, as Kong does: an exit becomes the client
    /// response; a rejected call or a closed connection fails the phase
    /// (Kong's 500 in `rewrite`/`access`/`response`).
    pub fn finish_event(&mut self, phase: Phase, result: EventResult) -> PhaseEnd {
        match result.end {
            EventEnd::Returned => PhaseEnd::Returned,
            EventEnd::Exit(args) => {
                if let Some(call) = result.calls.last() {
                    self.sim
                        .calls
                        .push(PdkCall::new(phase, call, CallOutcome::Exit));
                }
                env::exit(&mut self.sim, phase, args)
            }
            EventEnd::Rejected(method) => {
                let reason = match self.sim.calls.last() {
                    Some(PdkCall {
                        outcome: CallOutcome::Rejected(reason),
                        ..
                    }) => reason.clone(),
                    _ => format!("{method} was rejected"),
                };
                env::fail(&mut self.sim, phase, reason)
            }
            EventEnd::ServerClosed => {
                let reason = "the plugin server closed the connection during the event".to_owned();
                self.sim.kong_errors.push(format!("[{phase}] {reason}"));
                env::fail(&mut self.sim, phase, reason)
            }
        }
    }

    /// Fails `phase` for a reason outside the event (the plugin server
    /// could not be reached, a timeout, …), as Kong does.
    pub fn fail(&mut self, phase: Phase, reason: String) -> PhaseEnd {
        self.sim.kong_errors.push(format!("[{phase}] {reason}"));
        env::fail(&mut self.sim, phase, reason)
    }

    /// The request Kong sends upstream now.
    pub fn upstream_request(&self) -> UpstreamRequest {
        self.sim.upstream_request()
    }

    /// Kong proxied `sent` and the upstream answered `response` (its
    /// headers; the body too when buffered).
    pub fn proxy(&mut self, sent: UpstreamRequest, response: UpstreamResponse) {
        self.sim.proxy(sent, response);
    }

    /// Kong answers the client itself (an error, or no route).
    pub fn respond(
        &mut self,
        status: u16,
        body: Vec<u8>,
        headers: &HeaderList,
        source: ResponseSource,
    ) {
        self.sim.respond(status, body, headers, source);
    }

    /// Adds a header Kong itself puts on the client response (`Via`,
    /// latency headers), so the `log` phase sees it, without changing who
    /// produced the response.
    pub fn add_response_header(&mut self, name: &str, value: &str) {
        self.sim.client.headers.add(name, value);
    }

    /// The client response as it stands.
    pub fn client_response(&self) -> &ClientResponse {
        &self.sim.client
    }

    /// The authenticated consumer, if any.
    pub fn consumer(&self) -> Option<&pb::Consumer> {
        self.sim.consumer.as_ref()
    }

    /// The `kong.log.*` lines written since the last call.
    pub fn take_logs(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.sim.logs)
    }

    /// The errors Kong would log (rejected calls, failed phases) since the
    /// last call.
    pub fn take_kong_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sim.kong_errors)
    }

    /// The `kong.log.serialize()` record now.
    pub fn log_record(&self) -> Json {
        self.sim.log_record()
    }
}
