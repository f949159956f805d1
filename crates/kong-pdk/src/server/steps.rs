//! One connection from Kong under MsgPack:1: read a request, answer it,
//! repeat. Events do not live here: `plugin.HandleEvent` starts one as its
//! own task and the reply is its first PDK call; each `plugin.Step*` is
//! handed to the event it names and the reply is the event's next call.

use std::sync::Arc;
use std::time::Duration;

use rmpv::Value as Mp;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

use super::Shared;
use super::connection::conclude;
use super::handler;
use crate::kong::{Conn, Kong, Link};
use crate::msgpack::{self, ReadError, StepIn, StepLink, get, map};
use crate::plugin::{Phase, Plugin};

/// A reply: `Err` is msgpack-rpc's error string, which Kong logs (and, when
/// it says "no plugin instance", answers by starting the instance again).
type Reply = Result<Mp, String>;

pub(crate) async fn serve<P: Plugin>(
    shared: Arc<Shared<P>>,
    stream: UnixStream,
    shutdown: watch::Receiver<bool>,
) {
    let _counted = shared.count_connection();
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = Vec::with_capacity(512);
    let max = shared.settings.max_frame_size as usize;
    loop {
        let read = tokio::select! {
            biased;
            read = msgpack::read_message(&mut rd, &mut buf, max) => read,
            () = idle_shutdown(&shared, shutdown.clone()) => return,
        };
        let message = match read {
            Ok(m) => m,
            Err(ReadError::Eof) => return,
            Err(ReadError::Bad(e)) => {
                tracing::error!("closing connection: {e}");
                return;
            }
            Err(ReadError::Io(e)) => {
                tracing::warn!("closing connection: {e}");
                return;
            }
        };
        // `[0, msgid, method, params]`, taken apart without copying the
        // params (a step's `Data` may be a body of megabytes).
        let (msgid, method, params) = match message {
            Mp::Array(parts) if parts.len() == 4 && parts[0].as_u64() == Some(0) => {
                let mut parts = parts.into_iter().skip(1);
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(msgid), Some(Mp::String(method)), Some(Mp::Array(params))) => {
                        let method = method.into_str().unwrap_or_default();
                        (msgid, method, params)
                    }
                    _ => {
                        tracing::error!("closing connection: not a msgpack-rpc request");
                        return;
                    }
                }
            }
            other => {
                tracing::error!("closing connection: not a msgpack-rpc request: {other}");
                return;
            }
        };
        let reply = answer(&shared, &method, params.into_iter().next()).await;
        let (error, result) = match reply {
            Ok(result) => (Mp::Nil, result),
            Err(e) => {
                tracing::warn!("{method}: {e}");
                (Mp::from(e), Mp::Nil)
            }
        };
        let response = Mp::Array(vec![Mp::from(1), msgid, error, result]);
        if let Err(e) = wr.write_all(&msgpack::encode(&response)).await {
            tracing::warn!("closing connection: cannot write the reply to {method}: {e}");
            return;
        }
    }
}

/// Moves `map[key]` out of a msgpack map.
fn take(map: Mp, key: &str) -> Option<Mp> {
    match map {
        Mp::Map(pairs) => pairs
            .into_iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Resolves once the server stops and no event needs Kong's steps any
/// more: until then a pooled connection may carry the step an event waits
/// for.
async fn idle_shutdown<P>(shared: &Shared<P>, mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
    while shared.events.len() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn answer<P: Plugin>(shared: &Arc<Shared<P>>, method: &str, params: Option<Mp>) -> Reply {
    let params = params.unwrap_or(Mp::Nil);
    match method {
        "plugin.StartInstance" => {
            let name = get(&params, "Name").and_then(Mp::as_str).unwrap_or("");
            let config = get(&params, "Config").and_then(Mp::as_str).unwrap_or("");
            let status = shared.start_instance(name, config.as_bytes()).await?;
            let config: serde_json::Value = serde_json::from_str(config).unwrap_or_default();
            Ok(map([
                ("Name", Mp::from(status.name)),
                ("Id", Mp::from(status.instance_id)),
                ("Config", rmpv::ext::to_value(&config).unwrap_or(Mp::Nil)),
                ("StartTime", Mp::from(status.started_at)),
            ]))
        }
        "plugin.InstanceStatus" | "plugin.CloseInstance" => {
            let id = params
                .as_i64()
                .or_else(|| get(&params, "InstanceId").and_then(Mp::as_i64))
                .and_then(|id| i32::try_from(id).ok())
                .ok_or("no instance id")?;
            let instance = if method == "plugin.CloseInstance" {
                shared.instances.remove(id)
            } else {
                shared.instances.get(id)
            }
            .ok_or_else(|| format!("no plugin instance {id}"))?;
            let status = shared.status(&instance);
            Ok(map([
                ("Name", Mp::from(status.name)),
                ("Id", Mp::from(status.instance_id)),
                ("StartTime", Mp::from(status.started_at)),
            ]))
        }
        "plugin.HandleEvent" => {
            let id = get(&params, "InstanceId")
                .and_then(Mp::as_i64)
                .and_then(|id| i32::try_from(id).ok())
                .ok_or("HandleEvent without an InstanceId")?;
            let name = get(&params, "EventName").and_then(Mp::as_str).unwrap_or("");
            let phase =
                Phase::from_name(name).ok_or_else(|| format!("unknown event name {name:?}"))?;
            // Kong answers "no plugin instance" by starting it again and
            // retrying the event.
            let in_use = shared
                .instances
                .acquire(id)
                .ok_or_else(|| format!("no plugin instance {id}"))?;
            let (event_id, steps) = shared.events.register();
            let (reply_tx, reply_rx) = oneshot::channel();
            let link = StepLink::new(reply_tx, steps);
            let shared_for_event = Arc::clone(shared);
            tokio::spawn(async move {
                run_event(&shared_for_event, in_use, phase, link).await;
                shared_for_event.events.remove(event_id);
            });
            event_reply(event_id, reply_rx).await
        }
        step if step.starts_with("plugin.Step") => {
            let event_id = get(&params, "EventId")
                .and_then(Mp::as_u64)
                .ok_or("a step without an EventId")?;
            let (reply_tx, reply_rx) = oneshot::channel();
            let step = StepIn {
                method: method.to_owned(),
                data: take(params, "Data"),
                reply: Some(reply_tx),
            };
            if !shared.events.deliver(event_id, step).await {
                return Err(format!("no event {event_id} (it ended or timed out)"));
            }
            event_reply(event_id, reply_rx).await
        }
        other => Err(format!("unknown method {other:?}")),
    }
}

/// What the event sends next (a call or `"ret"`), as Kong's reply.
async fn event_reply(event_id: u64, reply: oneshot::Receiver<Mp>) -> Reply {
    let data = reply
        .await
        .map_err(|_| format!("event {event_id} ended without a reply"))?;
    Ok(map([("EventId", Mp::from(event_id)), ("Data", data)]))
}

/// Runs one event to its end: the handler, then what the protocol needs
/// (`"ret"`, or the 500 after a failure).
async fn run_event<P: Plugin>(
    shared: &Shared<P>,
    in_use: super::instances::InUse<P>,
    phase: Phase,
    link: StepLink,
) {
    let events = shared.count_event();
    let conn = Conn::with_link(
        Link::Steps(link),
        shared.settings.max_frame_size,
        shared.settings.frame_timeout,
        shared.settings.call_layer,
    );
    let mut kong = Kong::new(conn, phase);
    let instance = &in_use.instance;
    // No connection belongs to the event, so none can close under it.
    let slot = shared.watchdog.slot(None);
    let outcome = handler::run(
        &instance.plugin,
        phase,
        &mut kong,
        handler::Deadline {
            slot: &slot,
            limit: shared.settings.handler_timeout,
        },
        handler::event_span(&shared.name, phase, instance.id),
    )
    .await;
    let (_stop_tx, stop_rx) = watch::channel(false);
    conclude(shared, &mut kong, instance.id, outcome, 0, &stop_rx, events).await;
    shared.stats.0.add_calls(kong.call_counts());
}
