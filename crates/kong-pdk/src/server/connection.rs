//! One connection from Kong: read an `RpcCall`, answer it, repeat.
//!
//! Kong sends one RPC at a time per connection and pools connections, so a
//! connection idles between RPCs; only there does shutdown interrupt it
//! (the watchdog ends its read, see `Watchdog::close_idle`).

use std::sync::Arc;

use kong_pdk_proto::{self as pb, rpc_call::Call, rpc_return::Return};
use prost::Message;
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::Shared;
use super::handler::{self, Outcome};
use super::stats::Counted;
use super::watchdog::Slot;
use crate::kong::{CallState, Conn, Kong};
use crate::plugin::{Phase, Plugin};
use crate::value;
use crate::wire::{self, ReadError};

/// The body Kong's own plugins answer with when a handler fails.
pub(crate) const ERROR_BODY: &str = r#"{"message":"An unexpected error occurred"}"#;

pub(crate) async fn serve<P: Plugin>(
    shared: Arc<Shared<P>>,
    stream: UnixStream,
    shutdown: watch::Receiver<bool>,
) {
    let _counted = shared.count_connection();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let mut conn = Conn::new(
        stream,
        shared.settings.max_frame_size,
        shared.settings.frame_timeout,
        shared.settings.call_layer,
    );
    // Events on this connection run one at a time: one watchdog slot, which
    // also watches the socket for Kong hanging up while a handler runs.
    // Declared after `conn`, so it lets go of the descriptor first.
    let slot = shared.watchdog.watch_connection(fd);
    loop {
        if slot.closing() {
            return;
        }
        match conn.read_frame().await {
            Ok(()) => {}
            // Kong closing a pooled idle connection is routine.
            Err(ReadError::Eof) => return,
            Err(ReadError::TooLarge(size)) => {
                tracing::error!(
                    "closing connection: frame of {size} bytes exceeds the maximum frame size of {} bytes",
                    shared.settings.max_frame_size
                );
                return;
            }
            Err(ReadError::Io(e)) => {
                tracing::warn!("closing connection: {e}");
                return;
            }
            Err(ReadError::Stalled(limit)) => {
                tracing::warn!(
                    "closing connection: a frame from Kong began but was not complete after {limit:?}"
                );
                return;
            }
        }
        let call = match pb::RpcCall::decode(&conn.read_buf[..]) {
            Ok(call) => call,
            Err(e) => {
                tracing::error!("closing connection: malformed RpcCall: {e}");
                return;
            }
        };
        let sequence = call.sequence;
        let next = match call.call {
            Some(Call::CmdHandleEvent(event)) => {
                handle_event(&shared, conn, &slot, sequence, event, &shutdown).await
            }
            Some(command) => match answer(&shared, command).await {
                Some(ret) => {
                    let reply = pb::RpcReturn {
                        sequence,
                        r#return: Some(ret),
                    };
                    wire::push_message(&mut conn.write_buf, &reply);
                    match conn.flush_frames().await {
                        Ok(()) => Some(conn),
                        Err(e) => {
                            tracing::warn!("closing connection: cannot write reply: {e}");
                            None
                        }
                    }
                }
                None => None,
            },
            None => {
                tracing::error!(
                    sequence,
                    "closing connection: RpcCall holds no known command"
                );
                None
            }
        };
        match next {
            Some(c) => conn = c,
            None => return,
        }
    }
}

/// Answers every command but `cmd_handle_event`; `None` closes the connection.
async fn answer<P: Plugin>(shared: &Shared<P>, command: Call) -> Option<Return> {
    match command {
        Call::CmdGetPluginNames(_) => Some(Return::PluginNames(pb::PluginNames {
            names: vec![shared.name.clone()],
        })),
        Call::CmdGetPluginInfo(req) => {
            if req.name != shared.name {
                tracing::error!(
                    "closing connection: cmd_get_plugin_info asks for plugin {:?}, this server runs {:?}",
                    req.name,
                    shared.name
                );
                return None;
            }
            Some(Return::PluginInfo(shared.plugin_info()))
        }
        Call::CmdStartInstance(req) => shared
            .start_instance(&req.name, &req.config)
            .await
            .ok()
            .map(Return::InstanceStatus),
        Call::CmdGetInstanceStatus(req) => match shared.instances.get(req.instance_id) {
            Some(instance) => Some(Return::InstanceStatus(shared.status(&instance))),
            None => {
                tracing::warn!(
                    "no plugin instance {}: closing the connection",
                    req.instance_id
                );
                None
            }
        },
        Call::CmdCloseInstance(req) => match shared.instances.remove(req.instance_id) {
            Some(instance) => {
                tracing::info!("closed instance {}", req.instance_id);
                Some(Return::InstanceStatus(shared.status(&instance)))
            }
            None => {
                tracing::warn!(
                    "cannot close unknown instance {}: closing the connection",
                    req.instance_id
                );
                None
            }
        },
        Call::CmdHandleEvent(_) => unreachable!("handled by the caller"),
    }
}

/// Runs one event; returns the connection when it can serve the next RPC.
async fn handle_event<P: Plugin>(
    shared: &Shared<P>,
    conn: Conn,
    slot: &Slot,
    sequence: i64,
    event: pb::CmdHandleEvent,
    shutdown: &watch::Receiver<bool>,
) -> Option<Conn> {
    let Some(phase) = Phase::from_name(&event.event_name) else {
        tracing::error!(
            instance = event.instance_id,
            "closing connection: unknown event name {:?}",
            event.event_name
        );
        return None;
    };
    let Some(in_use) = shared.instances.acquire(event.instance_id) else {
        // Closing is the only way to tell Kong "no plugin instance" over
        // ProtoBuf; Kong then restarts the instance and retries the phase.
        tracing::warn!(
            "no plugin instance {}: closing the connection so Kong starts it again",
            event.instance_id
        );
        return None;
    };
    let events = shared.count_event();
    let instance = &in_use.instance;
    let mut kong = Kong::new(conn, phase);
    let outcome = handler::run(
        &instance.plugin,
        phase,
        &mut kong,
        handler::Deadline {
            slot,
            limit: shared.settings.handler_timeout,
        },
        handler::event_span(&shared.name, phase, instance.id),
    )
    .await;
    let keep = conclude(
        shared,
        &mut kong,
        instance.id,
        outcome,
        sequence,
        shutdown,
        events,
    )
    .await;
    shared.stats.0.add_calls(kong.call_counts());
    keep.then(|| kong.into_conn())
}

/// Ends an event after its handler: sends the writes the call layer still
/// holds, reports a failure (log line, `kong.log.err`, the 500), and
/// finishes the protocol. Returns whether the connection can serve the
/// next RPC.
pub(super) async fn conclude<P>(
    shared: &Shared<P>,
    kong: &mut Kong,
    instance: i32,
    outcome: Outcome,
    sequence: i64,
    shutdown: &watch::Receiver<bool>,
    event: Counted<'_>,
) -> bool
where
    P: Plugin,
{
    let phase = kong.phase();
    // The writes the layer holds were made before the handler ended (or
    // failed): they reach Kong first, in order.
    let finished = match &outcome {
        Outcome::PeerClosed | Outcome::Exited => Ok(()),
        _ if kong.state != CallState::Idle => Ok(()),
        _ => kong.finish().await,
    };
    let failure = match outcome {
        Outcome::Returned(Ok(())) => finished
            .err()
            .map(|e| format!("{phase} handler's last writes failed: {e}")),
        Outcome::Returned(Err(e)) => Some(format!("{phase} handler failed: {e}")),
        Outcome::Panicked(msg) => Some(format!("{phase} handler panicked: {msg}")),
        Outcome::TimedOut(limit) => Some(format!(
            "{phase} handler did not finish within {limit:?} and was cancelled"
        )),
        Outcome::PeerClosed => {
            tracing::info!(
                instance,
                "Kong closed the connection during the {phase} event; the handler was cancelled"
            );
            return false;
        }
        Outcome::Exited => {
            wait_for_close(&mut kong.conn, shared, shutdown).await;
            return false;
        }
    };
    if let Some(message) = failure {
        tracing::error!(instance, "{message}");
        if kong.state == CallState::Idle {
            // Best effort: when Kong is gone the connection closes below.
            let _ = kong.log().err(&message).await;
        }
        if kong.state == CallState::Idle && phase.can_respond() && !P::FAIL_OPEN {
            let args = pb::ExitArgs {
                status: 500,
                body: ERROR_BODY.as_bytes().to_vec(),
                headers: Some(value::header_struct([("Content-Type", "application/json")])),
            };
            if kong
                .send_terminal("kong.response.exit", &args)
                .await
                .is_ok()
            {
                wait_for_close(&mut kong.conn, shared, shutdown).await;
            }
            return false;
        }
    }
    if kong.state != CallState::Idle {
        tracing::warn!(
            instance,
            "closing connection: the {phase} event cannot be finished ({:?})",
            kong.state
        );
        return false;
    }
    // Once Kong reads the end of the event, the event is over.
    drop(event);
    match kong.conn.end_event(sequence).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("closing connection: cannot finish the {phase} event: {e}");
            false
        }
    }
}

/// After `kong.response.exit` Kong neither answers nor reuses the connection;
/// it closes it when the request ends. Wait for that (bounded) and drop it.
async fn wait_for_close<P>(conn: &mut Conn, shared: &Shared<P>, shutdown: &watch::Receiver<bool>) {
    let mut shutdown = shutdown.clone();
    let drain = async {
        while conn.read_frame().await.is_ok() {
            tracing::warn!("unexpected frame from Kong after kong.response.exit; ignored");
        }
    };
    tokio::select! {
        _ = drain => {}
        _ = tokio::time::sleep(shared.settings.exit_close_timeout) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}
