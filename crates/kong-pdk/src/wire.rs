//! Kong's ProtoBuf:1 framing: every frame is a `u32` little-endian length
//! followed by that many bytes. Zero-length frames are normal (empty
//! arguments, nil answers, the end of an event's PDK calls).

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Default upper bound for one frame (Kong's largest frames are buffered
/// bodies; 64 MiB leaves room for them and keeps a bogus length harmless).
pub const DEFAULT_MAX_FRAME: u32 = 64 * 1024 * 1024;

/// Default time a frame may take to arrive once its first byte did: Kong's
/// own socket timeout (`lua_socket_read_timeout`, 60 s).
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// Why reading a frame failed.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection cleanly before a new frame began.
    Eof,
    /// The announced length exceeds the maximum; the connection is out of sync.
    TooLarge(u32),
    /// An I/O error, including EOF in the middle of a frame.
    Io(io::Error),
    /// The frame began but did not complete within the deadline.
    Stalled(Duration),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Eof => f.write_str("connection closed"),
            ReadError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds the maximum frame size")
            }
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Stalled(limit) => {
                write!(f, "a frame began but was not complete after {limit:?}")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads one frame into `buf` (cleared first). Handles arbitrary chunking.
/// Waiting for a frame to begin has no limit (an idle pooled connection);
/// once its first byte arrived, the rest must follow within `deadline`.
///
/// Kong's frames are small and usually arrive whole: then the frame is
/// taken straight from the read buffer, one copy and no further read.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: u32,
    deadline: Duration,
) -> Result<(), ReadError> {
    let available = reader.fill_buf().await.map_err(ReadError::Io)?;
    if available.is_empty() {
        return Err(ReadError::Eof);
    }
    if let Some(header) = available.first_chunk::<4>() {
        let len = u32::from_le_bytes(*header);
        if len > max {
            return Err(ReadError::TooLarge(len));
        }
        let end = 4 + len as usize;
        if let Some(payload) = available.get(4..end) {
            buf.clear();
            buf.extend_from_slice(payload);
            reader.consume(end);
            return Ok(());
        }
    }
    // Split across reads: the header or the payload is still coming.
    let rest = async {
        let mut len = [0u8; 4];
        reader.read_exact(&mut len).await.map_err(ReadError::Io)?;
        let len = u32::from_le_bytes(len);
        if len > max {
            return Err(ReadError::TooLarge(len));
        }
        buf.clear();
        buf.resize(len as usize, 0);
        reader.read_exact(buf).await.map_err(ReadError::Io)?;
        Ok(())
    };
    within(deadline, rest).await
}

/// Runs `read` with a deadline, starting the timer only if it cannot finish
/// at once: a frame usually arrives whole, and then costs no timer.
async fn within(
    deadline: Duration,
    read: impl Future<Output = Result<(), ReadError>>,
) -> Result<(), ReadError> {
    let mut read = pin!(read);
    let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    if let Poll::Ready(done) = first {
        return done;
    }
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(ReadError::Stalled(deadline)))
}

/// Appends one frame (length prefix and payload) to `out`.
pub fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&frame_len(payload.len()).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends one frame holding an encoded protobuf message to `out`.
pub fn push_message<M: prost::Message>(out: &mut Vec<u8>, msg: &M) {
    out.extend_from_slice(&frame_len(msg.encoded_len()).to_le_bytes());
    msg.encode_raw(out);
}

fn frame_len(len: usize) -> u32 {
    u32::try_from(len).expect("a frame longer than u32::MAX cannot be sent")
}

/// Writes pre-framed bytes in one write call and flushes.
pub async fn write_all<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_frames_split_into_single_bytes() {
        let mut wire = Vec::new();
        push_frame(&mut wire, b"kong.request.get_header");
        push_frame(&mut wire, b"");
        push_frame(&mut wire, &[1, 2, 3]);
        let (mut a, b) = tokio::io::duplex(1);
        let mut b = tokio::io::BufReader::new(b);
        let writer = tokio::spawn(async move {
            for byte in wire {
                a.write_all(&[byte]).await.unwrap();
            }
        });
        let mut buf = Vec::new();
        read_frame(&mut b, &mut buf, 1024, DEFAULT_FRAME_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(buf, b"kong.request.get_header");
        read_frame(&mut b, &mut buf, 1024, DEFAULT_FRAME_TIMEOUT)
            .await
            .unwrap();
        assert!(buf.is_empty());
        read_frame(&mut b, &mut buf, 1024, DEFAULT_FRAME_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(buf, [1, 2, 3]);
        writer.await.unwrap();
        assert!(matches!(
            read_frame(&mut b, &mut buf, 1024, DEFAULT_FRAME_TIMEOUT).await,
            Err(ReadError::Eof)
        ));
    }

    #[tokio::test]
    async fn rejects_oversized_length_without_allocating() {
        let wire = u32::MAX.to_le_bytes();
        let mut buf = Vec::new();
        let err = read_frame(&mut &wire[..], &mut buf, 1024, DEFAULT_FRAME_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::TooLarge(u32::MAX)));
        assert_eq!(buf.capacity(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_stops_halfway_is_dropped_after_the_deadline() {
        let (mut kong, server) = tokio::io::duplex(64);
        let mut server = tokio::io::BufReader::new(server);
        let mut wire = Vec::new();
        push_frame(&mut wire, b"abcdef");
        kong.write_all(&wire[..6]).await.unwrap();
        let mut buf = Vec::new();
        let limit = Duration::from_secs(60);
        let err = read_frame(&mut server, &mut buf, 1024, limit)
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Stalled(d) if d == limit));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_frame_to_begin_has_no_deadline() {
        let (mut kong, server) = tokio::io::duplex(64);
        let mut server = tokio::io::BufReader::new(server);
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            read_frame(&mut server, &mut buf, 1024, Duration::from_secs(1))
                .await
                .map(|()| buf)
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let mut wire = Vec::new();
        push_frame(&mut wire, b"late");
        kong.write_all(&wire).await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), b"late");
    }

    #[tokio::test]
    async fn truncated_payload_is_an_io_error() {
        let mut wire = Vec::new();
        push_frame(&mut wire, b"abcdef");
        wire.truncate(7);
        let mut buf = Vec::new();
        let err = read_frame(&mut &wire[..], &mut buf, 1024, DEFAULT_FRAME_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Io(_)));
    }
}
