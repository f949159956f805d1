//! Kong's MsgPack:1 protocol (`kong/runloop/plugin_servers/rpc/mp_rpc.lua`,
//! spoken by Kong's Python and JavaScript PDKs): msgpack-rpc messages with
//! no framing, one Kong request per pooled connection checkout, and events
//! that outlive connections.
//!
//! - Kong sends `[0, msgid, method, [params]]` and waits for
//!   `[1, msgid, error, result]` on the same connection.
//! - `plugin.HandleEvent` starts an event; its reply carries the event's
//!   first PDK call (`{"Method", "Args"}`) or `"ret"`. Kong runs the call
//!   and sends the result as `plugin.Step*` with the `EventId` — possibly on
//!   another connection — and the reply is the next call, until `"ret"`.
//!
//! [`framing`] finds message ends, [`translate`] maps the typed PDK's
//! ProtoBuf calls to Lua argument lists and back, [`events`] routes steps to
//! their events.

pub(crate) mod events;
pub(crate) mod framing;
pub(crate) mod translate;

use rmpv::Value as Mp;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

pub(crate) use self::events::{Events, StepIn};

/// Why reading a message failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Kong closed the connection between messages.
    Eof,
    /// The stream is not msgpack, or too large.
    Bad(String),
    /// The socket failed.
    Io(std::io::Error),
}

/// Reads the next whole message. `buf` keeps bytes read past it (the start
/// of the next message) for the next call.
pub(crate) async fn read_message(
    io: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Mp, ReadError> {
    loop {
        if !buf.is_empty() {
            match framing::value_len(buf, max) {
                Ok(Some(len)) => {
                    let value = rmpv::decode::read_value(&mut &buf[..len])
                        .map_err(|e| ReadError::Bad(format!("malformed msgpack: {e}")));
                    buf.drain(..len);
                    return value;
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Bad(e.to_string())),
            }
        }
        // Read into spare capacity: no zero-filling of a fresh buffer per read.
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        let had = buf.len();
        match io.read_buf(buf).await {
            Ok(0) if had == 0 => return Err(ReadError::Eof),
            Ok(0) => {
                return Err(ReadError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "Kong closed the connection in the middle of a message",
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// The bytes of one value.
pub(crate) fn encode(value: &Mp) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    rmpv::encode::write_value(&mut out, value).expect("writing to a Vec cannot fail");
    out
}

/// `map[key]` of a msgpack map.
pub(crate) fn get<'a>(map: &'a Mp, key: &str) -> Option<&'a Mp> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A msgpack map from string keys.
pub(crate) fn map<const N: usize>(pairs: [(&str, Mp); N]) -> Mp {
    Mp::Map(pairs.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
}

/// An event's link to Kong under MsgPack:1: where its next PDK call goes
/// (the reply Kong waits for) and where Kong's steps arrive.
#[derive(Debug)]
pub(crate) struct StepLink {
    /// The reply Kong is waiting for, when it is waiting.
    reply: Option<oneshot::Sender<Mp>>,
    steps: mpsc::Receiver<StepIn>,
}

impl StepLink {
    pub(crate) fn new(reply: oneshot::Sender<Mp>, steps: mpsc::Receiver<StepIn>) -> StepLink {
        StepLink {
            reply: Some(reply),
            steps,
        }
    }

    /// Replies to Kong's pending request with `data` (a call or `"ret"`).
    pub(crate) fn send(&mut self, data: Mp) -> std::io::Result<()> {
        let reply = self.reply.take().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "Kong is not waiting for a call from this event",
            )
        })?;
        reply.send(data).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the connection Kong asked on is gone",
            )
        })
    }

    /// Sends the PDK call framed ProtoBuf-style in `framed` (method frame,
    /// arguments frame) as `{"Method", "Args"}`.
    pub(crate) fn send_framed_call(&mut self, framed: &[u8]) -> std::io::Result<()> {
        let (method, args) = split_call(framed).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not one framed PDK call")
        })?;
        let method = std::str::from_utf8(method)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let args = translate::args(method, args)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.0))?;
        self.send(call(method, args))
    }

    /// Waits for Kong's step answering `method` and leaves the ProtoBuf
    /// answer the typed PDK reads in `read_buf`.
    pub(crate) async fn next_answer(
        &mut self,
        method: &'static str,
        read_buf: &mut Vec<u8>,
    ) -> Result<()> {
        let step = self.next_step(method).await?;
        if step.data.is_none() && translate::nil_is_failure(method) {
            return Err(Error::Kong {
                method,
                message: "Kong gave no result (nil): the call failed, and Kong 3.10 does not pass the Lua error on over MsgPack:1".into(),
            });
        }
        if step.is_error() {
            return Err(Error::Kong {
                method,
                message: step.error_text(),
            });
        }
        let answer = translate::answer(method, step.data).map_err(|e| Error::Decode {
            method,
            message: e.0,
        })?;
        read_buf.clear();
        read_buf.extend_from_slice(&answer);
        Ok(())
    }

    /// The next step; the reply slot it carries is where the next call goes.
    pub(crate) async fn next_step(&mut self, method: &'static str) -> Result<StepIn> {
        // The sender goes only when the server stops.
        let mut step = self
            .steps
            .recv()
            .await
            .ok_or(Error::ConnectionBroken { method })?;
        self.reply = step.reply.take();
        Ok(step)
    }
}

/// `{"Method": method, "Args": args}`.
pub(crate) fn call(method: &str, args: Vec<Mp>) -> Mp {
    map([("Method", Mp::from(method)), ("Args", Mp::Array(args))])
}

/// Splits `[len][method][len][args]` (little-endian u32 lengths).
fn split_call(framed: &[u8]) -> Option<(&[u8], &[u8])> {
    let frame = |buf: &[u8]| -> Option<(usize, usize)> {
        let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
        (buf.len() >= 4 + len).then_some((4, 4 + len))
    };
    let (m0, m1) = frame(framed)?;
    let rest = &framed[m1..];
    let (a0, a1) = frame(rest)?;
    (a1 == rest.len()).then(|| (&framed[m0..m1], &rest[a0..a1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_are_read_whole_across_reads_and_back_to_back() {
        let a = encode(&Mp::Array(vec![
            Mp::from(0),
            Mp::from(1),
            Mp::from("plugin.Step"),
            Mp::Array(vec![map([("Data", Mp::Binary(vec![7; 100_000]))])]),
        ]));
        let b = encode(&Mp::Array(vec![Mp::from(0), Mp::from(2)]));
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        // A reader that hands out 3 bytes at a time.
        let (mut tx, mut rx) = tokio::io::duplex(3);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(&stream).await.unwrap();
        });
        let mut buf = Vec::new();
        let first = read_message(&mut rx, &mut buf, 1 << 20).await.unwrap();
        assert_eq!(encode(&first), a);
        let second = read_message(&mut rx, &mut buf, 1 << 20).await.unwrap();
        assert_eq!(encode(&second), b);
        writer.await.unwrap();
        assert!(matches!(
            read_message(&mut rx, &mut buf, 1 << 20).await,
            Err(ReadError::Eof)
        ));
    }

    #[test]
    fn a_framed_call_splits_into_method_and_args() {
        let mut framed = Vec::new();
        crate::wire::push_frame(&mut framed, b"kong.request.get_header");
        crate::wire::push_frame(&mut framed, b"\x0a\x04host");
        let (m, a) = split_call(&framed).unwrap();
        assert_eq!(m, b"kong.request.get_header");
        assert_eq!(a, b"\x0a\x04host");
        assert!(split_call(&framed[..framed.len() - 1]).is_none());
    }
}
