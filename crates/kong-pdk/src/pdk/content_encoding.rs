//! HTTP content codings (`Content-Encoding`) for upstream response bodies.
//!
//! Kong hands a `response` handler the upstream body exactly as the upstream
//! sent it: compressed when the upstream compressed it. Editing those bytes
//! corrupts them, and a decoded body sent on under the upstream's
//! `Content-Encoding` is just as broken. [`DecodedBody`] carries the decoded
//! bytes together with the codings they came in, so
//! [`Response::replace_body`](super::Response::replace_body) can send the
//! edited body in a form that matches its headers.

use std::io::{Read, Write};

use super::service_response::GET_RAW_BODY;
use crate::error::{Error, Result};

/// How much a decoded body may grow to unless the caller says otherwise:
/// enough for any JSON a plugin edits in memory, small enough that a
/// compression bomb (a few KiB of gzip that inflate to GiBs) is refused.
pub const DEFAULT_MAX_DECODED: usize = 64 * 1024 * 1024;

/// Brotli quality for re-encoding. The body is on the request path, so speed
/// wins over the last percent of size, as in nginx's `gzip_comp_level 1`
/// default (gzip and deflate use level 1 too): see the `content_encoding`
/// bench for the cost per MiB.
const BROTLI_QUALITY: u32 = 3;

/// One content coding Kong's upstreams use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (also `x-gzip`): RFC 1952; concatenated members are read as one.
    Gzip,
    /// `deflate`: a zlib stream (RFC 1950). Raw DEFLATE, which some servers
    /// send under this name, is read too; it is always written as zlib.
    Deflate,
    /// `br`: Brotli (RFC 7932).
    Br,
}

impl Coding {
    /// The token for `Content-Encoding`.
    pub const fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
        }
    }

    fn decode(self, data: &[u8], max: usize) -> std::result::Result<Vec<u8>, String> {
        let mut out = Vec::new();
        // Read one byte past the limit so "exactly max" is allowed and
        // "more" is seen without inflating the rest.
        let limit = max as u64 + 1;
        let read = match self {
            Coding::Gzip => flate2::read::MultiGzDecoder::new(data)
                .take(limit)
                .read_to_end(&mut out),
            Coding::Deflate => {
                let zlib = flate2::read::ZlibDecoder::new(data)
                    .take(limit)
                    .read_to_end(&mut out);
                if zlib.is_err() {
                    out.clear();
                    flate2::read::DeflateDecoder::new(data)
                        .take(limit)
                        .read_to_end(&mut out)
                } else {
                    zlib
                }
            }
            Coding::Br => brotli::Decompressor::new(data, 8192)
                .take(limit)
                .read_to_end(&mut out),
        };
        read.map_err(|e| format!("the body is not valid {}: {e}", self.token()))?;
        if out.len() > max {
            return Err(format!(
                "the decoded body is larger than the limit of {max} bytes"
            ));
        }
        Ok(out)
    }

    fn encode(self, data: &[u8]) -> Vec<u8> {
        // Writing into a Vec cannot fail.
        let written = match self {
            Coding::Gzip => {
                let mut w = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 3 + 64),
                    flate2::Compression::fast(),
                );
                w.write_all(data).and_then(|()| w.finish())
            }
            Coding::Deflate => {
                let mut w = flate2::write::ZlibEncoder::new(
                    Vec::with_capacity(data.len() / 3 + 64),
                    flate2::Compression::fast(),
                );
                w.write_all(data).and_then(|()| w.finish())
            }
            Coding::Br => {
                let mut w = brotli::CompressorWriter::new(
                    Vec::with_capacity(data.len() / 3 + 64),
                    8192,
                    BROTLI_QUALITY,
                    // A window no larger than the body: small bodies then
                    // skip allocating brotli's 4 MiB ring buffer.
                    (usize::BITS - data.len().leading_zeros()).clamp(16, 22),
                );
                w.write_all(data).map(|()| w.into_inner())
            }
        };
        written.expect("compressing into memory")
    }
}

/// The codings of a body, in the order they were applied (as
/// `Content-Encoding` lists them). Empty means identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentEncoding {
    codings: Vec<Coding>,
}

impl ContentEncoding {
    /// No coding: the bytes are the representation.
    pub const IDENTITY: ContentEncoding = ContentEncoding {
        codings: Vec::new(),
    };

    /// A single coding.
    pub fn new(coding: Coding) -> ContentEncoding {
        ContentEncoding {
            codings: vec![coding],
        }
    }

    /// Parses a `Content-Encoding` value (`""` is identity). Tokens are
    /// case-insensitive and comma-separated; `identity` is skipped. An
    /// unknown coding is an error that names it.
    pub fn parse(header: &str) -> Result<ContentEncoding> {
        let mut codings = Vec::new();
        for token in header.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let coding = match token.to_ascii_lowercase().as_str() {
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                "br" => Coding::Br,
                "identity" => continue,
                _ => {
                    return Err(Error::ContentEncoding {
                        method: GET_RAW_BODY,
                        message: format!("unsupported Content-Encoding {token:?}"),
                    });
                }
            };
            codings.push(coding);
        }
        Ok(ContentEncoding { codings })
    }

    /// True when no coding applies.
    pub fn is_identity(&self) -> bool {
        self.codings.is_empty()
    }

    /// The codings, first applied first.
    pub fn codings(&self) -> &[Coding] {
        &self.codings
    }

    /// The `Content-Encoding` value; `""` for identity.
    pub fn header_value(&self) -> String {
        let tokens: Vec<&str> = self.codings.iter().map(|c| c.token()).collect();
        tokens.join(", ")
    }

    /// Undoes the codings (last applied first); the result may be at most
    /// `max` bytes. An inner stage of a stack is still compressed, so it may
    /// be a little larger than what it decodes to, but not much.
    pub fn decode(&self, data: Vec<u8>, max: usize) -> Result<Vec<u8>> {
        let mut data = data;
        let inner_max = max.saturating_add(max / 8).saturating_add(1024);
        for (i, coding) in self.codings.iter().enumerate().rev() {
            let limit = if i == 0 { max } else { inner_max };
            data = coding
                .decode(&data, limit)
                .map_err(|message| Error::ContentEncoding {
                    method: GET_RAW_BODY,
                    message,
                })?;
        }
        if data.len() > max {
            return Err(Error::ContentEncoding {
                method: GET_RAW_BODY,
                message: format!("the body is larger than the limit of {max} bytes"),
            });
        }
        Ok(data)
    }

    /// Applies the codings in order.
    pub fn encode(&self, data: Vec<u8>) -> Vec<u8> {
        let mut data = data;
        for coding in &self.codings {
            data = coding.encode(&data);
        }
        data
    }
}

/// An upstream response body with its content codings undone.
///
/// Edit [`data`](Self::data) in place (or swap it), then give the value to
/// [`Response::replace_body`](super::Response::replace_body): the client
/// gets it encoded like the upstream's body (the client asked for that
/// coding in `Accept-Encoding`), or as identity after
/// [`send_identity`](Self::send_identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBody {
    /// The decoded bytes.
    pub data: Vec<u8>,
    /// What the upstream sent (its `Content-Encoding`).
    upstream: ContentEncoding,
    /// What `replace_body` will send.
    send_as: ContentEncoding,
}

impl DecodedBody {
    pub(crate) fn new(data: Vec<u8>, upstream: ContentEncoding) -> DecodedBody {
        DecodedBody {
            data,
            send_as: upstream.clone(),
            upstream,
        }
    }

    /// The upstream's codings.
    pub fn upstream_encoding(&self) -> &ContentEncoding {
        &self.upstream
    }

    /// The codings [`Response::replace_body`](super::Response::replace_body)
    /// will apply.
    pub fn send_encoding(&self) -> &ContentEncoding {
        &self.send_as
    }

    /// Replaces the bytes, keeping the encodings.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> DecodedBody {
        self.data = data.into();
        self
    }

    /// Send the body uncompressed (`Content-Encoding` removed).
    pub fn send_identity(self) -> DecodedBody {
        self.send_as(ContentEncoding::IDENTITY)
    }

    /// Send the body with `encoding` instead of the upstream's.
    pub fn send_as(mut self, encoding: ContentEncoding) -> DecodedBody {
        self.send_as = encoding;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"kong rust pdk "[i % 14]).collect()
    }

    #[test]
    fn parses_tokens_like_http() {
        let e = ContentEncoding::parse(" GZIP , identity,br").unwrap();
        assert_eq!(e.codings(), [Coding::Gzip, Coding::Br]);
        assert_eq!(e.header_value(), "gzip, br");
        assert!(ContentEncoding::parse("").unwrap().is_identity());
        assert!(ContentEncoding::parse("identity").unwrap().is_identity());
        assert_eq!(
            ContentEncoding::parse("x-gzip").unwrap().codings(),
            [Coding::Gzip]
        );
        let err = ContentEncoding::parse("gzip, zstd").unwrap_err();
        assert!(err.to_string().contains("\"zstd\""), "{err}");
    }

    #[test]
    fn every_coding_and_a_stack_round_trip() {
        for header in ["gzip", "deflate", "br", "gzip, br", ""] {
            let e = ContentEncoding::parse(header).unwrap();
            for n in [0, 1, 100_000] {
                let body = text(n);
                let encoded = e.encode(body.clone());
                assert_eq!(e.decode(encoded, n).unwrap(), body, "{header} {n}");
            }
        }
    }

    #[test]
    fn raw_deflate_is_read_as_deflate() {
        let mut w = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(b"raw deflate").unwrap();
        let raw = w.finish().unwrap();
        let e = ContentEncoding::new(Coding::Deflate);
        assert_eq!(e.decode(raw, 100).unwrap(), b"raw deflate");
    }

    #[test]
    fn a_body_over_the_limit_is_refused_without_inflating_it_all() {
        let bomb = ContentEncoding::new(Coding::Gzip).encode(vec![0; 10_000_000]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let err = ContentEncoding::new(Coding::Gzip)
            .decode(bomb.clone(), 1_000_000)
            .unwrap_err();
        assert!(err.to_string().contains("limit of 1000000 bytes"), "{err}");
        assert_eq!(
            ContentEncoding::new(Coding::Gzip)
                .decode(bomb, 10_000_000)
                .unwrap()
                .len(),
            10_000_000
        );
        let identity = ContentEncoding::IDENTITY.decode(vec![1; 11], 10);
        assert!(identity.is_err());
    }

    #[test]
    fn garbage_names_the_coding() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Br] {
            let err = ContentEncoding::new(coding)
                .decode(b"not compressed at all".to_vec(), 1000)
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("not valid {}", coding.token())),
                "{err}"
            );
        }
    }
}
