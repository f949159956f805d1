//! [`Script`]: the exact PDK calls a handler must make, with Kong's answers.

use std::fmt;

use kong_pdk::{Phase, Plugin};
use kong_pdk_proto as pb;
use prost::Message;
use serde_json::Value as Json;

use crate::config::{self, KongKeys};
use crate::driver::{Call, EventEnd, Reply};
use crate::error::HarnessError;
use crate::harness::{self, ServerSettings};
use crate::rules;
use crate::sim::{CallOutcome, PdkCall};

type Check = Box<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

struct Step {
    method: String,
    expected: String,
    check: Check,
    reply: Reply,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("method", &self.method)
            .field("expected", &self.expected)
            .field("reply", &self.reply)
            .finish_non_exhaustive()
    }
}

/// A scripted Kong for one event: the plugin must make exactly these PDK
/// calls, in order, with these arguments; each gets the scripted answer.
///
/// No Kong rules apply: this checks encodings and call sequences exactly.
/// A call that differs from the script is not answered (the connection is
/// closed, as Kong does on an error) and [`run`](Script::run) reports it.
///
/// ```
/// use kong_pdk::{Kong, Phase, PhaseResult, Plugin, Schema};
/// use kong_pdk_test::{Script, pb};
///
/// #[derive(serde::Deserialize, Schema)]
/// struct Config {}
///
/// #[kong_pdk::plugin]
/// impl Plugin for Config {
///     async fn access(&self, kong: &mut Kong) -> PhaseResult {
///         let host = kong.request().get_header("host").await?;
///         kong.response().set_header("x-host", &host).await?;
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let kv = pb::Kv {
///     k: "x-host".into(),
///     v: Some(pb::Value { kind: Some(pb::ValueKind::StringValue("example.com".into())) }),
/// };
/// Script::new()
///     .expect("kong.request.get_header", pb::Str { v: "host".into() })
///     .returns(pb::Str { v: "example.com".into() })
///     .expect("kong.response.set_header", kv)
///     .run::<Config>(Phase::Access, serde_json::json!({}))
///     .await
///     .unwrap();
/// # });
/// ```
#[derive(Debug, Default)]
pub struct Script {
    steps: Vec<Step>,
    name: Option<String>,
    call_layer: Option<bool>,
}

/// What a scripted event did.
#[derive(Debug, Clone)]
pub struct ScriptReport {
    /// Every call, in order.
    pub calls: Vec<PdkCall>,
    /// How the event ended.
    pub end: EventEnd,
}

/// How a plugin departed from its [`Script`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ScriptError {
    /// The plugin called another method than the step expects.
    WrongMethod {
        /// The step (0-based).
        step: usize,
        /// The method the script expects.
        expected: String,
        /// The method the plugin called.
        got: String,
        /// Its arguments.
        args: Json,
    },
    /// The right method with other arguments.
    WrongArgs {
        /// The step (0-based).
        step: usize,
        /// The method.
        method: String,
        /// The expected arguments (`Debug` of the message).
        expected: String,
        /// The arguments the plugin sent, decoded as the same message.
        got: String,
    },
    /// A call after the last step.
    Unexpected {
        /// The number of steps (all consumed).
        steps: usize,
        /// The method.
        method: String,
        /// Its arguments.
        args: Json,
    },
    /// The event ended before every step was made.
    Unconsumed {
        /// The steps made.
        made: usize,
        /// The methods of the remaining steps.
        remaining: Vec<String>,
    },
    /// The script could not run.
    Harness(HarnessError),
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::WrongMethod {
                step,
                expected,
                got,
                args,
            } => write!(
                f,
                "script step {step}: expected a call to {expected}, but the plugin called {got} with {args}"
            ),
            ScriptError::WrongArgs {
                step,
                method,
                expected,
                got,
            } => write!(
                f,
                "script step {step}: {method} called with other arguments\n  expected: {expected}\n       got: {got}"
            ),
            ScriptError::Unexpected {
                steps,
                method,
                args,
            } => write!(
                f,
                "the plugin called {method} with {args} after the script's last step ({steps} steps)"
            ),
            ScriptError::Unconsumed { made, remaining } => write!(
                f,
                "the event ended after {made} step(s); expected calls not made: {}",
                remaining.join(", ")
            ),
            ScriptError::Harness(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ScriptError {}

impl From<HarnessError> for ScriptError {
    fn from(e: HarnessError) -> Self {
        ScriptError::Harness(e)
    }
}

impl From<std::io::Error> for ScriptError {
    fn from(e: std::io::Error) -> Self {
        ScriptError::Harness(HarnessError::Io(e))
    }
}

impl Script {
    /// An empty script.
    pub fn new() -> Script {
        Script::default()
    }

    /// The plugin's name (default `test-plugin`).
    pub fn plugin_name(mut self, name: &str) -> Script {
        self.name = Some(name.into());
        self
    }

    /// Turns kong-pdk's call layer off (`false`): the script then sees the
    /// calls exactly as the handler wrote them. With it on (the default),
    /// the script sees what Kong would: cached reads do not reach it and
    /// consecutive `set_header` calls arrive as one `set_headers`.
    pub fn call_layer(mut self, on: bool) -> Script {
        self.call_layer = Some(on);
        self
    }

    /// The next call must be `method` with `args` (`()` for none). It is
    /// answered with nil (an empty frame) unless [`returns`](Self::returns)
    /// follows.
    pub fn expect<M>(mut self, method: &str, args: M) -> Script
    where
        M: Message + Default + PartialEq + fmt::Debug + Send + Sync + 'static,
    {
        let expected = format!("{args:?}");
        let check: Check = Box::new(move |raw: &[u8]| match M::decode(raw) {
            Ok(got) if got == args => Ok(()),
            Ok(got) => Err(format!("{got:?}")),
            Err(e) => Err(format!("undecodable ({e}): {raw:?}")),
        });
        self.steps.push(Step {
            method: method.into(),
            expected,
            check,
            reply: Reply::empty(),
        });
        self
    }

    /// The next call must be `kong.response.exit` with `args` (Kong does not
    /// answer it).
    pub fn expect_exit(self, args: pb::ExitArgs) -> Script {
        self.expect("kong.response.exit", args)
    }

    /// The last expected call is answered with `value`.
    ///
    /// # Panics
    ///
    /// When no call is expected yet.
    pub fn returns<M: Message>(mut self, value: M) -> Script {
        self.last_step().reply = Reply::message(&value);
        self
    }

    /// The last expected call is rejected as Kong rejects a forbidden call:
    /// no answer and the connection closed.
    ///
    /// # Panics
    ///
    /// When no call is expected yet.
    pub fn rejects(mut self) -> Script {
        self.last_step().reply = Reply::Reject;
        self
    }

    fn last_step(&mut self) -> &mut Step {
        self.steps
            .last_mut()
            .expect("call Script::expect before returns/rejects")
    }

    /// Starts `P` with `config` (Kong-shaped, as in
    /// [`TestEnv`](crate::TestEnv)), runs its `phase` handler, and checks
    /// that it made exactly the scripted calls.
    pub async fn run<P: Plugin>(
        self,
        phase: Phase,
        config: Json,
    ) -> Result<ScriptReport, ScriptError> {
        let name = self.name.clone().unwrap_or_else(|| "test-plugin".into());
        let config = config::shape::<P>(&name, config, &KongKeys::global(1))?;
        let steps = self.steps;
        let server_name = name.clone();
        harness::with_server::<P, _, _, _>(
            &server_name,
            ServerSettings {
                call_layer: self.call_layer,
                ..ServerSettings::default()
            },
            |mut kong| async move {
                let Some(status) = kong.start(&name, &config.to_string()).await? else {
                    return Err(HarnessError::StartRefused(
                        harness::explain_refusal::<P>(&config).await,
                    ));
                };
                let mut next = 0;
                let mut failure = None;
                let mut calls = Vec::new();
                let result = kong
                    .event(status.instance_id, phase.as_str(), |call| {
                        let (reply, outcome) = match check(&steps, next, call) {
                            Ok(step) => {
                                next += 1;
                                let outcome = match &step.reply {
                                    Reply::Reject => CallOutcome::Rejected("scripted".into()),
                                    Reply::Frame(_) => CallOutcome::Answered,
                                };
                                (step.reply.clone(), outcome)
                            }
                            Err(e) => {
                                let reason = e.to_string();
                                failure.get_or_insert(e);
                                (Reply::Reject, CallOutcome::Rejected(reason))
                            }
                        };
                        calls.push(PdkCall::new(phase, call, outcome));
                        reply
                    })
                    .await?;
                if let EventEnd::Exit(_) = &result.end {
                    let call = result.calls.last().expect("the exit call is recorded");
                    calls.push(PdkCall::new(phase, call, CallOutcome::Exit));
                    match check(&steps, next, call) {
                        Ok(_) => next += 1,
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
                if failure.is_none() && next < steps.len() {
                    failure = Some(ScriptError::Unconsumed {
                        made: next,
                        remaining: steps[next..].iter().map(|s| s.method.clone()).collect(),
                    });
                }
                Ok(match failure {
                    Some(e) => Err(e),
                    None => Ok(ScriptReport {
                        calls,
                        end: result.end,
                    }),
                })
            },
        )
        .await?
    }
}

fn check<'a>(steps: &'a [Step], next: usize, call: &Call) -> Result<&'a Step, ScriptError> {
    let Some(step) = steps.get(next) else {
        return Err(ScriptError::Unexpected {
            steps: steps.len(),
            method: call.method.clone(),
            args: rules::args_json(&call.method, &call.args),
        });
    };
    if step.method != call.method {
        return Err(ScriptError::WrongMethod {
            step: next,
            expected: step.method.clone(),
            got: call.method.clone(),
            args: rules::args_json(&call.method, &call.args),
        });
    }
    (step.check)(&call.args).map_err(|got| ScriptError::WrongArgs {
        step: next,
        method: step.method.clone(),
        expected: step.expected.clone(),
        got,
    })?;
    Ok(step)
}
