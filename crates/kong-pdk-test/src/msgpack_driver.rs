//! Kong's side of MsgPack:1 (`mp_rpc.lua`), for driving a plugin server
//! that speaks it: `plugin.StartInstance`, `plugin.HandleEvent`, and each
//! PDK call answered with the `plugin.Step*` Kong would pick for it.

use std::io;
use std::path::Path;

use kong_pdk_proto as pb;
use rmpv::Value as Mp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::driver::{Call, EventEnd, EventResult, Reply};

/// A PDK call a MsgPack:1 server made: the Lua function and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct MpCall {
    /// The dotted name, e.g. `kong.request.get_header`.
    pub method: String,
    /// The argument list.
    pub args: Vec<Mp>,
}

/// How the driver answers a call.
#[derive(Debug, Clone, PartialEq)]
pub enum MpReply {
    /// The function's (first) return value; `None` is nil (no `Data`).
    Value(Option<Mp>),
    /// `plugin.StepError` with this text (Kong versions that report errors).
    Error(String),
    /// No answer at all: what Kong 3.10 does when its PDK refuses the call.
    Refuse,
}

/// How an event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum MpEnd {
    /// The server replied `"ret"`.
    Returned,
    /// The server called `kong.response.exit` (the last call): Kong sends
    /// nothing more for the event.
    Exit,
    /// The driver refused a call ([`MpReply::Refuse`]) and stopped.
    Refused,
    /// The server answered with a msgpack-rpc error.
    RpcError(String),
}

/// The calls of one event and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct MpEventResult {
    /// Every call, in order (an exit included).
    pub calls: Vec<MpCall>,
    /// How it ended.
    pub end: MpEnd,
    /// The server's `EventId`.
    pub event_id: u64,
}

impl MpEventResult {
    /// The method names called, in order.
    pub fn methods(&self) -> Vec<&str> {
        self.calls.iter().map(|c| c.method.as_str()).collect()
    }
}

/// One connection to a MsgPack:1 server, with Kong's message counter.
#[derive(Debug)]
pub struct MsgPackConnection {
    stream: UnixStream,
    buf: Vec<u8>,
    msgid: u64,
}

/// The `plugin.Step*` Kong sends a function's result with
/// (`get_step_method` in `mp_rpc.lua`).
pub fn step_method(function: &str) -> &'static str {
    match function {
        "kong.client.get_credential" | "kong.client.authenticate" => "plugin.StepCredential",
        "kong.client.load_consumer" | "kong.client.get_consumer" => "plugin.StepConsumer",
        "kong.node.get_memory_stats" => "plugin.StepMemoryStats",
        "kong.router.get_route" => "plugin.StepRoute",
        "kong.router.get_service" => "plugin.StepService",
        "kong.request.get_query"
        | "kong.request.get_headers"
        | "kong.response.get_headers"
        | "kong.service.response.get_headers" => "plugin.StepMultiMap",
        _ => "plugin.Step",
    }
}

fn map<const N: usize>(pairs: [(&str, Mp); N]) -> Mp {
    Mp::Map(pairs.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
}

fn get<'a>(map: &'a Mp, key: &str) -> Option<&'a Mp> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl MsgPackConnection {
    /// Connects to a plugin server's socket.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<MsgPackConnection> {
        Ok(MsgPackConnection {
            stream: UnixStream::connect(path).await?,
            buf: Vec::new(),
            msgid: 0,
        })
    }

    /// Sends `[0, msgid, method, [params]]` and reads the reply's
    /// `(error, result)`.
    pub async fn request(&mut self, method: &str, params: Mp) -> io::Result<(Mp, Mp)> {
        self.msgid += 1;
        let message = Mp::Array(vec![
            Mp::from(0),
            Mp::from(self.msgid),
            Mp::from(method),
            Mp::Array(vec![params]),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &message).map_err(io::Error::other)?;
        self.stream.write_all(&bytes).await?;
        let reply = self.read().await?;
        match reply.as_array().map(Vec::as_slice) {
            Some([kind, id, error, result]) if kind.as_u64() == Some(1) => {
                if id.as_u64() != Some(self.msgid) {
                    return Err(invalid(format!(
                        "reply to msgid {id}, expected {}",
                        self.msgid
                    )));
                }
                Ok((error.clone(), result.clone()))
            }
            _ => Err(invalid(format!("not a msgpack-rpc response: {reply}"))),
        }
    }

    /// Reads one whole message.
    async fn read(&mut self) -> io::Result<Mp> {
        loop {
            if !self.buf.is_empty() {
                let mut slice = &self.buf[..];
                if let Ok(v) = rmpv::decode::read_value(&mut slice) {
                    let used = self.buf.len() - slice.len();
                    self.buf.drain(..used);
                    return Ok(v);
                }
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
        }
    }

    /// `plugin.StartInstance` with Kong's config JSON; the instance id, or
    /// the server's error.
    pub async fn start_instance(
        &mut self,
        name: &str,
        config_json: &str,
    ) -> io::Result<Result<i64, String>> {
        let (error, result) = self
            .request(
                "plugin.StartInstance",
                map([("Name", Mp::from(name)), ("Config", Mp::from(config_json))]),
            )
            .await?;
        if !error.is_nil() {
            return Ok(Err(error.as_str().unwrap_or_default().to_owned()));
        }
        get(&result, "Id")
            .and_then(Mp::as_i64)
            .map(Ok)
            .ok_or_else(|| invalid(format!("no Id in {result}")))
    }

    /// Runs one event: `plugin.HandleEvent`, then each call answered by
    /// `answer` until `"ret"`, an exit, or a refusal.
    pub async fn handle_event(
        &mut self,
        instance_id: i64,
        phase: &str,
        mut answer: impl FnMut(&MpCall) -> MpReply,
    ) -> io::Result<MpEventResult> {
        let (mut error, mut result) = self
            .request(
                "plugin.HandleEvent",
                map([
                    ("InstanceId", Mp::from(instance_id)),
                    ("EventName", Mp::from(phase)),
                ]),
            )
            .await?;
        let mut calls = Vec::new();
        let mut event_id = 0;
        loop {
            if !error.is_nil() {
                let text = error.as_str().unwrap_or_default().to_owned();
                return Ok(MpEventResult {
                    calls,
                    end: MpEnd::RpcError(text),
                    event_id,
                });
            }
            event_id = get(&result, "EventId")
                .and_then(Mp::as_u64)
                .ok_or_else(|| invalid(format!("no EventId in {result}")))?;
            let data = get(&result, "Data").cloned().unwrap_or(Mp::Nil);
            if data.as_str() == Some("ret") {
                return Ok(MpEventResult {
                    calls,
                    end: MpEnd::Returned,
                    event_id,
                });
            }
            let call = MpCall {
                method: get(&data, "Method")
                    .and_then(Mp::as_str)
                    .ok_or_else(|| invalid(format!("neither \"ret\" nor a call: {data}")))?
                    .to_owned(),
                args: get(&data, "Args")
                    .and_then(Mp::as_array)
                    .cloned()
                    .unwrap_or_default(),
            };
            let exit = call.method == "kong.response.exit";
            let reply = if exit { MpReply::Refuse } else { answer(&call) };
            calls.push(call);
            let (method, data) = match reply {
                MpReply::Refuse => {
                    return Ok(MpEventResult {
                        calls,
                        end: if exit { MpEnd::Exit } else { MpEnd::Refused },
                        event_id,
                    });
                }
                MpReply::Error(text) => ("plugin.StepError", Some(Mp::from(text))),
                MpReply::Value(v) => (step_method(&calls.last().expect("pushed").method), v),
            };
            let mut params = vec![(Mp::from("EventId"), Mp::from(event_id))];
            if let Some(data) = data.filter(|d| !d.is_nil()) {
                params.push((Mp::from("Data"), data));
            }
            (error, result) = self.request(method, Mp::Map(params)).await?;
        }
    }
}

/// The same exchanges seen at the ProtoBuf level, for code that models Kong
/// as ProtoBuf answers (the test kit's simulation, kong-pdk-dev): each Lua
/// call becomes the ProtoBuf call the same typed function makes, and each
/// answer the Lua value Kong returns. A function outside Kong's 74 is
/// passed on with its msgpack-encoded argument list, which no ProtoBuf
/// model decodes (it is answered nil unless the model knows it).
impl MsgPackConnection {
    /// `plugin.StartInstance`, as `cmd_start_instance`: `None` when the
    /// server refused.
    pub async fn start_instance_pb(
        &mut self,
        name: &str,
        config_json: &str,
    ) -> io::Result<Option<pb::InstanceStatus>> {
        let started = self.start_instance(name, config_json).await?;
        Ok(started.ok().map(|id| pb::InstanceStatus {
            name: name.to_owned(),
            instance_id: i32::try_from(id).unwrap_or(i32::MAX),
            config: None,
            started_at: 0,
        }))
    }

    /// `plugin.CloseInstance`; whether the server knew the instance.
    pub async fn close_instance(&mut self, id: i32) -> io::Result<bool> {
        let (error, _) = self.request("plugin.CloseInstance", Mp::from(id)).await?;
        Ok(error.is_nil())
    }

    /// [`handle_event`](Self::handle_event) with ProtoBuf-level calls and
    /// answers. A msgpack-rpc error (e.g. `no plugin instance`) ends as
    /// [`EventEnd::ServerClosed`], which Kong answers the same way: reset
    /// the instances, run the phase again.
    pub async fn handle_event_pb(
        &mut self,
        instance_id: i32,
        phase: &str,
        mut answer: impl FnMut(&Call) -> Reply,
    ) -> io::Result<EventResult> {
        let result = self
            .handle_event(i64::from(instance_id), phase, |call| {
                match answer(&pb_call(&call.method, &call.args)) {
                    // A function outside the 74: the model answers with the
                    // msgpack Lua value itself.
                    Reply::Frame(bytes) if !is_protobuf_method(&call.method) => {
                        MpReply::Value(rmpv::decode::read_value(&mut &bytes[..]).ok())
                    }
                    Reply::Frame(bytes) => MpReply::Value(
                        kong_pdk::__private::pb_answer_to_msgpack(&call.method, &bytes),
                    ),
                    Reply::Reject => MpReply::Refuse,
                }
            })
            .await?;
        let calls: Vec<Call> = result
            .calls
            .iter()
            .map(|c| pb_call(&c.method, &c.args))
            .collect();
        let end = match result.end {
            MpEnd::Returned => EventEnd::Returned,
            MpEnd::Exit => EventEnd::Exit(
                calls
                    .last()
                    .map(|c| c.decode::<pb::ExitArgs>())
                    .unwrap_or_default(),
            ),
            MpEnd::Refused => {
                EventEnd::Rejected(calls.last().map(|c| c.method.clone()).unwrap_or_default())
            }
            MpEnd::RpcError(_) => EventEnd::ServerClosed,
        };
        Ok(EventResult { calls, end })
    }
}

/// Whether Kong's ProtoBuf service has the method.
fn is_protobuf_method(method: &str) -> bool {
    kong_pdk::__private::msgpack_args_to_pb(method, &[]).is_some()
}

/// A Lua call as the ProtoBuf call the typed PDK makes for it.
fn pb_call(method: &str, args: &[Mp]) -> Call {
    Call {
        method: method.to_owned(),
        args: kong_pdk::__private::msgpack_args_to_pb(method, args).unwrap_or_else(|| {
            let mut raw = Vec::new();
            let _ = rmpv::encode::write_value(&mut raw, &Mp::Array(args.to_vec()));
            raw
        }),
    }
}

/// Kong's side of either protocol, at the ProtoBuf level: what code that
/// drives any plugin server (kong-pdk-dev's gateway and bench) holds.
#[derive(Debug)]
pub enum AnyConnection {
    /// ProtoBuf:1.
    Frames(crate::driver::Connection),
    /// MsgPack:1.
    Steps(MsgPackConnection),
}

impl AnyConnection {
    /// Connects in `protocol`.
    pub async fn connect(
        path: impl AsRef<Path>,
        protocol: kong_pdk::Protocol,
    ) -> io::Result<AnyConnection> {
        Ok(match protocol {
            kong_pdk::Protocol::ProtoBuf => {
                AnyConnection::Frames(crate::driver::Connection::connect(path).await?)
            }
            kong_pdk::Protocol::MsgPack => {
                AnyConnection::Steps(MsgPackConnection::connect(path).await?)
            }
        })
    }

    /// Whether this side still holds the connection open.
    pub fn is_open(&self) -> bool {
        match self {
            AnyConnection::Frames(c) => c.is_open(),
            AnyConnection::Steps(_) => true,
        }
    }

    /// The sequence number of the last RPC sent (ProtoBuf:1; 0 under
    /// MsgPack:1, whose ids count per connection).
    pub fn sequence(&self) -> i64 {
        match self {
            AnyConnection::Frames(c) => c.sequence(),
            AnyConnection::Steps(_) => 0,
        }
    }

    /// Kong's RPC counter (ProtoBuf:1; MsgPack:1 ids count per connection).
    pub fn set_sequence(&mut self, next: i64) {
        if let AnyConnection::Frames(c) = self {
            c.set_sequence(next);
        }
    }

    /// Starts an instance; `None` when the server refused.
    pub async fn start_instance(
        &mut self,
        name: &str,
        config_json: &str,
    ) -> io::Result<Option<pb::InstanceStatus>> {
        match self {
            AnyConnection::Frames(c) => c.start_instance(name, config_json).await,
            AnyConnection::Steps(c) => c.start_instance_pb(name, config_json).await,
        }
    }

    /// Closes an instance; whether the server knew it.
    pub async fn close_instance(&mut self, id: i32) -> io::Result<bool> {
        match self {
            AnyConnection::Frames(c) => Ok(c.close_instance(id).await?.is_some()),
            AnyConnection::Steps(c) => c.close_instance(id).await,
        }
    }

    /// Runs one event, answering each call at the ProtoBuf level.
    pub async fn handle_event(
        &mut self,
        instance_id: i32,
        phase: &str,
        answer: impl FnMut(&Call) -> Reply,
    ) -> io::Result<EventResult> {
        match self {
            AnyConnection::Frames(c) => c.handle_event(instance_id, phase, answer).await,
            AnyConnection::Steps(c) => c.handle_event_pb(instance_id, phase, answer).await,
        }
    }
}
