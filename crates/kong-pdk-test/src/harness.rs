//! The plugin's real server, in the test's runtime on a temporary socket,
//! and Kong's side of its connections.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use kong_pdk::server::Server;
use kong_pdk::{Plugin, Protocol};
use kong_pdk_proto as pb;
use serde_json::Value as Json;

use crate::driver::{Call, EventEnd, EventResult, Reply};
use crate::error::HarnessError;
use crate::msgpack_driver::AnyConnection;
use crate::test_server::TestServer;

/// Kong's connections to one plugin server, in the plugin's protocol: a
/// connection is reused until it is closed (after `kong.response.exit` or
/// a rejected call under ProtoBuf:1), like Kong's pool; sequence numbers
/// keep counting across connections.
#[derive(Debug)]
pub(crate) struct KongSide {
    socket: PathBuf,
    protocol: Protocol,
    conn: Option<AnyConnection>,
    next_sequence: i64,
}

impl KongSide {
    fn new(socket: PathBuf, protocol: Protocol) -> KongSide {
        KongSide {
            socket,
            protocol,
            conn: None,
            next_sequence: 1,
        }
    }

    async fn conn(&mut self) -> io::Result<&mut AnyConnection> {
        if !self.conn.as_ref().is_some_and(AnyConnection::is_open) {
            let mut conn = AnyConnection::connect(&self.socket, self.protocol).await?;
            conn.set_sequence(self.next_sequence);
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Keeps the connection for the next RPC only when it is fit for it.
    fn after_rpc(&mut self, keep: bool) {
        if let Some(conn) = &self.conn {
            self.next_sequence = conn.sequence() + 1;
            if !keep || !conn.is_open() {
                self.conn = None;
            }
        }
    }

    /// `cmd_start_instance`; `None` when the server refused.
    pub(crate) async fn start(
        &mut self,
        name: &str,
        config: &str,
    ) -> io::Result<Option<pb::InstanceStatus>> {
        let status = self.conn().await?.start_instance(name, config).await;
        self.after_rpc(matches!(status, Ok(Some(_))));
        status
    }

    /// `cmd_handle_event`, answering each PDK call with `answer`.
    pub(crate) async fn event(
        &mut self,
        instance_id: i32,
        event: &str,
        answer: impl FnMut(&Call) -> Reply,
    ) -> io::Result<EventResult> {
        let result = self
            .conn()
            .await?
            .handle_event(instance_id, event, answer)
            .await;
        let keep = matches!(&result, Ok(r) if r.end != EventEnd::ServerClosed);
        self.after_rpc(keep);
        result
    }
}

/// Settings of the in-process server.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerSettings {
    pub(crate) handler_timeout: Option<Duration>,
    pub(crate) call_layer: Option<bool>,
}

/// Runs `P`'s server on a temporary socket while `body` drives it, then
/// shuts the server down.
pub(crate) async fn with_server<P, T, F, Fut>(
    name: &str,
    settings: ServerSettings,
    body: F,
) -> Result<T, HarnessError>
where
    P: Plugin,
    F: FnOnce(KongSide) -> Fut,
    Fut: Future<Output = Result<T, HarnessError>>,
{
    let mut server = Server::<P>::new("0.0.0", 0)
        .name(name)
        .shutdown_grace(Duration::from_secs(2));
    if let Some(limit) = settings.handler_timeout {
        server = server.handler_timeout(limit);
    }
    if let Some(on) = settings.call_layer {
        server = server.call_layer(on);
    }
    let protocol = server.protocol_in_use();
    let server = TestServer::try_start(server).await?;
    let result = body(KongSide::new(server.socket().to_owned(), protocol)).await;
    server.stop().await?;
    result
}

/// Why the server refused `config`: the server's own decoding (through
/// kong-pdk's hidden hook, so the message is the server's), then `init`.
pub(crate) async fn explain_refusal<P: Plugin>(config: &Json) -> String {
    let server = Server::<P>::new("0.0.0", 0);
    match kong_pdk::__private::decode_config(server, config.to_string().as_bytes()) {
        Err(e) => e,
        Ok((_, mut plugin)) => match plugin.init().await {
            Err(e) => format!("Plugin::init failed: {e}"),
            Ok(()) => "the server closed the connection".into(),
        },
    }
}
