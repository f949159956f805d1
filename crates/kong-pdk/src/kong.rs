//! [`Kong`]: the handle a phase handler uses to call Kong's PDK.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prost::Message;
use tokio::io::BufReader;
use tokio::net::UnixStream;

use crate::calls::{self, CallLayer};
use crate::error::{Error, Result};
use crate::pdk;
use crate::plugin::Phase;
use crate::wire::{self, ReadError};

/// How an event's PDK calls reach Kong.
#[derive(Debug)]
pub(crate) enum Link {
    /// ProtoBuf:1: the event owns Kong's connection; calls and answers are
    /// frames on it.
    Frames(BufReader<UnixStream>),
    /// MsgPack:1: Kong opens a connection per message, so the event lives
    /// apart from any; each call is the reply to Kong's pending request and
    /// each answer arrives as Kong's next `plugin.Step*`.
    Steps(crate::msgpack::StepLink),
}

/// One event's way to Kong, with its reusable buffers.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) link: Link,
    pub(crate) read_buf: Vec<u8>,
    pub(crate) write_buf: Vec<u8>,
    pub(crate) max_frame: u32,
    /// How long a frame may take once its first byte arrived.
    pub(crate) frame_timeout: Duration,
    /// The call layer's per-event state (caches, waiting writes, counts).
    /// Boxed: the connection moves into each event's `Kong` and back, and
    /// at ~500 bytes the layer made those moves the largest copies of an
    /// event.
    pub(crate) layer: Box<CallLayer>,
    /// Set when a handler calls `kong.response.exit`. Shared with the code
    /// polling the handler, which cannot look into `Kong` while the handler
    /// borrows it; one per connection, reset for each event.
    exited: Arc<AtomicBool>,
}

impl Conn {
    pub(crate) fn new(
        stream: UnixStream,
        max_frame: u32,
        frame_timeout: Duration,
        call_layer: bool,
    ) -> Conn {
        Conn::with_link(
            Link::Frames(BufReader::new(stream)),
            max_frame,
            frame_timeout,
            call_layer,
        )
    }

    /// A conn on any link.
    pub(crate) fn with_link(
        link: Link,
        max_frame: u32,
        frame_timeout: Duration,
        call_layer: bool,
    ) -> Conn {
        Conn {
            link,
            read_buf: Vec::with_capacity(512),
            write_buf: Vec::with_capacity(512),
            max_frame,
            frame_timeout,
            layer: Box::new(CallLayer::new(call_layer)),
            exited: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Tells Kong the event is over: an empty frame and `RpcReturn{sequence}`
    /// (ProtoBuf:1), or `"ret"` (MsgPack:1).
    pub(crate) async fn end_event(&mut self, sequence: i64) -> std::io::Result<()> {
        match &mut self.link {
            Link::Frames(_) => {
                wire::push_frame(&mut self.write_buf, b"");
                let done = kong_pdk_proto::RpcReturn {
                    sequence,
                    r#return: None,
                };
                wire::push_message(&mut self.write_buf, &done);
                self.flush_frames().await
            }
            Link::Steps(link) => link.send(rmpv::Value::from("ret")),
        }
    }

    /// Reads the next frame into `read_buf` (ProtoBuf:1).
    pub(crate) async fn read_frame(&mut self) -> Result<(), ReadError> {
        match &mut self.link {
            Link::Frames(io) => {
                wire::read_frame(io, &mut self.read_buf, self.max_frame, self.frame_timeout).await
            }
            Link::Steps(_) => Err(ReadError::Eof),
        }
    }

    /// Writes whatever was framed into `write_buf`, in one write; under
    /// MsgPack:1 the one framed PDK call becomes the reply Kong waits for.
    pub(crate) async fn flush_frames(&mut self) -> std::io::Result<()> {
        let res = match &mut self.link {
            Link::Frames(io) => wire::write_all(io.get_mut(), &self.write_buf).await,
            Link::Steps(link) => link.send_framed_call(&self.write_buf),
        };
        self.write_buf.clear();
        res
    }
}

/// Where the event's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    /// Between PDK calls: a new call may be sent.
    Idle,
    /// A call was sent and its answer not read yet. If the handler is dropped
    /// in this state the connection is out of sync and must be closed.
    InCall,
    /// I/O failed or Kong closed the connection.
    Broken,
    /// `kong.response.exit` was sent; Kong answers nothing more.
    Exited,
}

/// The PDK handle of one event (one phase of one request).
///
/// Kong allows one PDK call in flight per event, so every call takes
/// `&mut self`: two concurrent calls are a compile error, and the handle
/// cannot escape into a spawned task. Calls are grouped like Kong's Lua PDK:
/// `kong.request().get_header("host")` is `kong.request.get_header("host")`.
pub struct Kong {
    pub(crate) conn: Conn,
    phase: Phase,
    pub(crate) state: CallState,
}

impl fmt::Debug for Kong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kong")
            .field("phase", &self.phase)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Kong {
    pub(crate) fn new(mut conn: Conn, phase: Phase) -> Kong {
        conn.exited.store(false, Ordering::Relaxed);
        conn.layer.start();
        Kong {
            conn,
            phase,
            state: CallState::Idle,
        }
    }

    /// The phase being handled.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// `kong.client`: who is calling.
    pub fn client(&mut self) -> pdk::Client<'_> {
        pdk::Client::new(self)
    }

    /// `kong.vault`: secrets by reference. **Needs MsgPack:1**.
    pub fn vault(&mut self) -> pdk::Vault<'_> {
        pdk::Vault::new(self)
    }

    /// `kong.ctx.shared`: values shared by all plugins for one request.
    pub fn ctx(&mut self) -> pdk::Ctx<'_> {
        pdk::Ctx::new(self)
    }

    /// `kong.ip`: trusted-IP checks.
    pub fn ip(&mut self) -> pdk::Ip<'_> {
        pdk::Ip::new(self)
    }

    /// `kong.log`: Kong's error log, namespaced with the plugin name.
    pub fn log(&mut self) -> pdk::Log<'_> {
        pdk::Log::new(self)
    }

    /// `kong.nginx`: nginx variables and `ngx.ctx`.
    pub fn nginx(&mut self) -> pdk::Nginx<'_> {
        pdk::Nginx::new(self)
    }

    /// `kong.node`: the Kong node.
    pub fn node(&mut self) -> pdk::Node<'_> {
        pdk::Node::new(self)
    }

    /// `kong.request`: the client's request.
    pub fn request(&mut self) -> pdk::Request<'_> {
        pdk::Request::new(self)
    }

    /// `kong.response`: the response to the client.
    pub fn response(&mut self) -> pdk::Response<'_> {
        pdk::Response::new(self)
    }

    /// `kong.router`: the matched route and service.
    pub fn router(&mut self) -> pdk::Router<'_> {
        pdk::Router::new(self)
    }

    /// `kong.service`: the upstream target.
    pub fn service(&mut self) -> pdk::Service<'_> {
        pdk::Service::new(self)
    }

    /// `kong.service.request`: the request sent upstream.
    pub fn service_request(&mut self) -> pdk::ServiceRequest<'_> {
        pdk::ServiceRequest::new(self)
    }

    /// `kong.service.response`: the upstream's response.
    pub fn service_response(&mut self) -> pdk::ServiceResponse<'_> {
        pdk::ServiceResponse::new(self)
    }

    /// A flag that turns true when the handler calls `kong.response.exit`.
    pub(crate) fn exit_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.conn.exited)
    }

    pub(crate) fn into_conn(self) -> Conn {
        self.conn
    }

    /// PDK calls the handler made this event, and round trips to Kong.
    pub(crate) fn call_counts(&self) -> (u32, u32) {
        (self.conn.layer.asked, self.conn.layer.round_trips)
    }

    pub(crate) fn check_usable(&self, method: &'static str) -> Result<()> {
        match self.state {
            CallState::Idle => Ok(()),
            CallState::Exited => Err(Error::AfterExit { method }),
            CallState::InCall | CallState::Broken => Err(Error::ConnectionBroken { method }),
        }
    }

    /// A PDK call the handler asked for: answered by the call layer when it
    /// can, else one round trip.
    pub(crate) async fn pdk_call<I: Message, O: Message + Default>(
        &mut self,
        method: &'static str,
        args: &I,
    ) -> Result<O> {
        self.check_usable(method)?;
        self.refuse_in_log(method)?;
        self.conn.layer.asked += 1;
        self.fetch(method, args).await
    }

    /// Calls any function of Kong's Lua PDK by its dotted name, with `args`
    /// as its argument list, and reads its (first) return value as `T`.
    /// **Needs MsgPack:1** (`const PROTOCOL: Protocol = Protocol::MsgPack`
    /// in the plugin's impl): under ProtoBuf:1 Kong serves only its 74
    /// methods, so this fails at once with [`Error::NeedsMsgPack`].
    ///
    /// `args` is a tuple: `()` for none, `(a,)` for one, `(a, b)` for two
    /// (any serde values; a `Vec` alone would be spread as several
    /// arguments, so write `(vec,)`). Kong sends nil when the function
    /// returns nil (read it as `Option<_>` or `()`), and also when it
    /// returns `nil, err` or does not exist (Kong 3.10 logs `could not find
    /// pdk method` and answers nil). Kong versions that report errors send
    /// `plugin.StepError`, which is [`Error::Kong`]. A function Kong refuses
    /// in the current phase is never answered: the handler deadline ends the
    /// event.
    ///
    /// ```no_run
    /// # async fn handler(kong: &mut kong_pdk::Kong) -> kong_pdk::PhaseResult {
    /// let secret: Option<String> = kong.call("kong.vault.get", ("{vault://env/api-key}",)).await?;
    /// kong.call::<()>("kong.service.set_retries", (3,)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        function: &str,
        args: impl serde::Serialize,
    ) -> Result<T> {
        const METHOD: &str = "kong.call";
        self.check_usable(METHOD)?;
        if matches!(self.conn.link, Link::Frames(_)) {
            return Err(Error::NeedsMsgPack {
                function: function.to_owned(),
            });
        }
        let args = match rmpv::ext::to_value(&args) {
            Ok(rmpv::Value::Nil) => Vec::new(),
            Ok(rmpv::Value::Array(list)) => list,
            Ok(one) => vec![one],
            Err(e) => {
                return Err(Error::Value {
                    method: METHOD,
                    message: format!("{function}: cannot encode the arguments: {e}"),
                });
            }
        };
        self.conn.layer.asked += 1;
        self.flush_pending().await?;
        // A function the call layer does not know may change anything.
        self.conn.layer.forget_everything();
        self.conn.layer.round_trips += 1;
        let Link::Steps(link) = &mut self.conn.link else {
            unreachable!("checked above");
        };
        self.state = CallState::InCall;
        if let Err(source) = link.send(crate::msgpack::call(function, args)) {
            self.state = CallState::Broken;
            return Err(Error::Io {
                method: METHOD,
                source,
            });
        }
        let step = match link.next_step(METHOD).await {
            Ok(step) => step,
            Err(e) => {
                self.state = CallState::Broken;
                return Err(e);
            }
        };
        self.state = CallState::Idle;
        if step.is_error() {
            return Err(Error::Kong {
                method: METHOD,
                message: format!("{function}: {}", step.error_text()),
            });
        }
        rmpv::ext::from_value(step.data.unwrap_or(rmpv::Value::Nil)).map_err(|e| Error::Value {
            method: METHOD,
            message: format!("{function}: Kong's result does not fit the requested type: {e}"),
        })
    }

    /// [`pdk_call`](Self::pdk_call) without counting it as asked for: the call
    /// layer's own calls (a prefetch, the log record) use it.
    pub(crate) async fn fetch<I: Message, O: Message + Default>(
        &mut self,
        method: &'static str,
        args: &I,
    ) -> Result<O> {
        self.frame(method, args);
        if !self.conn.layer.enabled {
            self.exchange(method).await?;
            return self.decode_answer(method);
        }
        // The arguments follow the method frame and their length prefix.
        let args_at = 4 + method.len() + 4;
        let rule = calls::rule(method);
        if let Some(answer) =
            self.conn
                .layer
                .cached(rule, self.phase, method, &self.conn.write_buf[args_at..])
        {
            let out = decode(method, answer);
            self.conn.write_buf.clear();
            return out;
        }
        if self.conn.layer.has_pending() {
            self.flush_pending_before_framed().await?;
        }
        let sent =
            self.conn
                .layer
                .before_send(rule, self.phase, method, &self.conn.write_buf[args_at..]);
        self.exchange(method).await?;
        self.conn
            .layer
            .after_answer(sent, self.phase, &self.conn.read_buf);
        self.decode_answer(method)
    }

    /// Frames a call (method frame, then arguments frame) into the write buffer.
    fn frame<I: Message>(&mut self, method: &'static str, args: &I) {
        let buf = &mut self.conn.write_buf;
        buf.clear();
        wire::push_frame(buf, method.as_bytes());
        wire::push_message(buf, args);
    }

    /// Sends the framed call.
    async fn send(&mut self, method: &'static str) -> Result<()> {
        self.state = CallState::InCall;
        self.conn.layer.round_trips += 1;
        if let Err(source) = self.conn.flush_frames().await {
            self.state = CallState::Broken;
            return Err(Error::Io { method, source });
        }
        Ok(())
    }

    /// Sends the framed call and reads Kong's answer into the read buffer.
    pub(crate) async fn exchange(&mut self, method: &'static str) -> Result<()> {
        self.send(method).await?;
        if let Link::Steps(link) = &mut self.conn.link {
            let answered = link.next_answer(method, &mut self.conn.read_buf).await;
            self.state = match &answered {
                Ok(()) => CallState::Idle,
                // Kong reported the call failed (StepError) and waits for
                // the next call: the event goes on.
                Err(Error::Kong { .. }) => CallState::Idle,
                Err(_) => CallState::Broken,
            };
            return answered;
        }
        match self.conn.read_frame().await {
            Ok(()) => {}
            Err(err) => {
                self.state = CallState::Broken;
                return Err(match err {
                    ReadError::Eof => Error::ConnectionClosed {
                        method,
                        phase: self.phase,
                    },
                    ReadError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        Error::ConnectionClosed {
                            method,
                            phase: self.phase,
                        }
                    }
                    ReadError::Io(source) => Error::Io { method, source },
                    ReadError::Stalled(limit) => Error::Io {
                        method,
                        source: std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("Kong's answer began but was not complete after {limit:?}"),
                        ),
                    },
                    ReadError::TooLarge(size) => Error::FrameTooLarge {
                        size: size.into(),
                        max: self.conn.max_frame.into(),
                    },
                });
            }
        }
        // The frame was read whole, so the connection stays in sync even if
        // its content is malformed.
        self.state = CallState::Idle;
        Ok(())
    }

    /// Decodes the answer in the read buffer. An empty answer decodes to the
    /// message's defaults (Kong's nil).
    fn decode_answer<O: Message + Default>(&self, method: &'static str) -> Result<O> {
        decode(method, &self.conn.read_buf)
    }

    /// Sends a call Kong never answers (`kong.response.exit`) and stops the
    /// handler: the returned future never completes, and the server drops it.
    pub(crate) async fn call_terminal<I: Message>(
        &mut self,
        method: &'static str,
        args: &I,
    ) -> Result<()> {
        self.send_terminal(method, args).await?;
        std::future::pending::<()>().await;
        Ok(())
    }

    /// Sends a call Kong never answers and marks the event as exited. Writes
    /// still waiting in the call layer go first.
    pub(crate) async fn send_terminal<I: Message>(
        &mut self,
        method: &'static str,
        args: &I,
    ) -> Result<()> {
        self.check_usable(method)?;
        self.conn.layer.asked += 1;
        self.flush_pending().await?;
        self.frame(method, args);
        self.send(method).await?;
        self.state = CallState::Exited;
        self.conn.exited.store(true, Ordering::Release);
        Ok(())
    }
}

fn decode<O: Message + Default>(method: &'static str, bytes: &[u8]) -> Result<O> {
    O::decode(bytes).map_err(|e| Error::Decode {
        method,
        message: e.to_string(),
    })
}
