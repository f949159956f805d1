//! Kong's side of one plugin-server connection.

use std::io;
use std::path::Path;

use kong_pdk_proto::{self as pb, rpc_call, rpc_return};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// A PDK call the plugin made during an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The method name, e.g. `kong.request.get_header`.
    pub method: String,
    /// The encoded argument message (empty for `google.protobuf.Empty`).
    pub args: Vec<u8>,
}

impl Call {
    /// Decodes the arguments as `M`.
    pub fn decode<M: Message + Default>(&self) -> M {
        M::decode(&self.args[..])
            .unwrap_or_else(|e| panic!("{} args do not decode: {e}", self.method))
    }
}

/// How Kong answers one PDK call.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An encoded answer (empty for nil or `Empty`).
    Frame(Vec<u8>),
    /// Kong raises a Lua error (e.g. the phase does not allow the call): no
    /// answer, and the connection is closed.
    Reject,
}

impl Reply {
    /// An encoded message.
    pub fn message<M: Message>(msg: &M) -> Reply {
        Reply::Frame(msg.encode_to_vec())
    }

    /// Kong's nil / `Empty` answer: a zero-length frame.
    pub fn empty() -> Reply {
        Reply::Frame(Vec::new())
    }
}

/// How an event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum EventEnd {
    /// The server ended the PDK calls and sent `RpcReturn{sequence}`.
    Returned,
    /// The plugin called `kong.response.exit`; like Kong, the driver sent no
    /// answer and closed the connection.
    Exit(pb::ExitArgs),
    /// The driver rejected a call and closed the connection.
    Rejected(String),
    /// The server closed the connection (e.g. unknown instance id).
    ServerClosed,
}

/// The PDK calls of one event and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct EventResult {
    /// Every call in order, including a final `kong.response.exit`.
    pub calls: Vec<Call>,
    /// How the event ended.
    pub end: EventEnd,
}

impl EventResult {
    /// The method names called, in order.
    pub fn methods(&self) -> Vec<&str> {
        self.calls.iter().map(|c| c.method.as_str()).collect()
    }
}

/// One Kong → plugin-server connection.
#[derive(Debug)]
pub struct Connection {
    stream: Option<UnixStream>,
    sequence: i64,
}

impl Connection {
    /// Connects to a plugin server's socket.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<Connection> {
        Ok(Connection {
            stream: Some(UnixStream::connect(path).await?),
            sequence: 1,
        })
    }

    /// Sets the next `RpcCall.sequence` (Kong's counter is per worker, not
    /// per connection).
    pub fn set_sequence(&mut self, next: i64) {
        self.sequence = next - 1;
    }

    /// The sequence number of the last RPC sent.
    pub fn sequence(&self) -> i64 {
        self.sequence
    }

    /// Whether the connection is still open on this side.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    fn stream(&mut self) -> io::Result<&mut UnixStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection closed"))
    }

    /// Writes one frame, length and payload in two writes (as Kong does).
    pub async fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).expect("frame too large");
        let stream = self.stream()?;
        stream.write_all(&len.to_le_bytes()).await?;
        stream.write_all(payload).await
    }

    /// Writes raw bytes (for malformed-input tests).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream()?.write_all(bytes).await
    }

    /// Reads one frame; `Ok(None)` when the server closed the connection.
    pub async fn read_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        let stream = self.stream()?;
        let mut len = [0u8; 4];
        match stream.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut buf = vec![0; u32::from_le_bytes(len) as usize];
        stream.read_exact(&mut buf).await?;
        Ok(Some(buf))
    }

    /// Closes this side of the connection (as Kong does after an exit).
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Sends an `RpcCall` with the next sequence number.
    pub async fn send_call(&mut self, call: rpc_call::Call) -> io::Result<i64> {
        self.sequence += 1;
        let msg = pb::RpcCall {
            sequence: self.sequence,
            call: Some(call),
        };
        self.write_frame(&msg.encode_to_vec()).await?;
        Ok(self.sequence)
    }

    /// Sends `cmd_handle_event` without running the event, for tests that
    /// play the PDK calls by hand; returns the sequence number.
    pub async fn send_event(&mut self, instance_id: i32, event: &str) -> io::Result<i64> {
        self.send_call(rpc_call::Call::CmdHandleEvent(pb::CmdHandleEvent {
            instance_id,
            event_name: event.into(),
        }))
        .await
    }

    /// Reads an `RpcReturn` and checks its sequence, as Kong asserts it.
    pub async fn read_return(&mut self, sequence: i64) -> io::Result<Option<pb::RpcReturn>> {
        let Some(frame) = self.read_frame().await? else {
            return Ok(None);
        };
        let ret = pb::RpcReturn::decode(&frame[..]).map_err(invalid)?;
        if ret.sequence != sequence {
            return Err(invalid(format!(
                "RpcReturn.sequence is {}, expected {sequence}",
                ret.sequence
            )));
        }
        Ok(Some(ret))
    }

    /// One non-event RPC; `Ok(None)` when the server closed the connection.
    pub async fn rpc(&mut self, call: rpc_call::Call) -> io::Result<Option<pb::RpcReturn>> {
        let seq = self.send_call(call).await?;
        self.read_return(seq).await
    }

    /// `cmd_start_instance` with Kong's config JSON; `Ok(None)` when the
    /// server refused (closed the connection).
    pub async fn start_instance(
        &mut self,
        name: &str,
        config_json: &str,
    ) -> io::Result<Option<pb::InstanceStatus>> {
        let call = rpc_call::Call::CmdStartInstance(pb::CmdStartInstance {
            name: name.into(),
            config: config_json.as_bytes().to_vec(),
        });
        self.instance_status(call).await
    }

    /// `cmd_close_instance`.
    pub async fn close_instance(&mut self, id: i32) -> io::Result<Option<pb::InstanceStatus>> {
        let call = rpc_call::Call::CmdCloseInstance(pb::CmdCloseInstance { instance_id: id });
        self.instance_status(call).await
    }

    /// `cmd_get_instance_status`.
    pub async fn instance_status_of(&mut self, id: i32) -> io::Result<Option<pb::InstanceStatus>> {
        let call =
            rpc_call::Call::CmdGetInstanceStatus(pb::CmdGetInstanceStatus { instance_id: id });
        self.instance_status(call).await
    }

    async fn instance_status(
        &mut self,
        call: rpc_call::Call,
    ) -> io::Result<Option<pb::InstanceStatus>> {
        match self.rpc(call).await? {
            None => Ok(None),
            Some(pb::RpcReturn {
                r#return: Some(rpc_return::Return::InstanceStatus(status)),
                ..
            }) => Ok(Some(status)),
            Some(other) => Err(invalid(format!(
                "expected an InstanceStatus, got {other:?}"
            ))),
        }
    }

    /// Runs one `cmd_handle_event`, answering each PDK call with `answer`.
    ///
    /// Like Kong, the driver sends nothing back for `kong.response.exit` and
    /// closes the connection; a [`Reply::Reject`] closes it too.
    pub async fn handle_event(
        &mut self,
        instance_id: i32,
        event: &str,
        mut answer: impl FnMut(&Call) -> Reply,
    ) -> io::Result<EventResult> {
        let seq = self.send_event(instance_id, event).await?;
        let mut calls = Vec::new();
        loop {
            let Some(method) = self.read_frame().await? else {
                self.close();
                return Ok(EventResult {
                    calls,
                    end: EventEnd::ServerClosed,
                });
            };
            if method.is_empty() {
                break;
            }
            let method = String::from_utf8(method).map_err(invalid)?;
            let Some(args) = self.read_frame().await? else {
                return Err(invalid(format!(
                    "server closed after method frame {method}"
                )));
            };
            let call = Call { method, args };
            if call.method == "kong.response.exit" {
                let exit = call.decode::<pb::ExitArgs>();
                calls.push(call);
                self.close();
                return Ok(EventResult {
                    calls,
                    end: EventEnd::Exit(exit),
                });
            }
            let reply = answer(&call);
            let method = call.method.clone();
            calls.push(call);
            match reply {
                Reply::Frame(bytes) => self.write_frame(&bytes).await?,
                Reply::Reject => {
                    self.close();
                    return Ok(EventResult {
                        calls,
                        end: EventEnd::Rejected(method),
                    });
                }
            }
        }
        match self.read_return(seq).await? {
            Some(ret) if ret.r#return.is_none() => Ok(EventResult {
                calls,
                end: EventEnd::Returned,
            }),
            Some(ret) => Err(invalid(format!("event ended with {ret:?}"))),
            None => Err(invalid("server closed before RpcReturn")),
        }
    }
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
