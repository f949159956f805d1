//! Where one MsgPack:1 message ends. Kong writes bare msgpack values one
//! after another with no length prefix, and a read may hold part of a
//! message or several; this walks the value's markers and lengths (never
//! its payload bytes) to find its end, so a body of megabytes arriving in
//! small reads costs one short walk per read, not a decode. Decoding is
//! `rmpv`'s.

use rmp::Marker;

/// Why a byte stream is not msgpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// A byte that starts no msgpack value (0xc1).
    Reserved(usize),
    /// The value announces more elements than `max` bytes could hold.
    TooLarge { max: usize },
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FramingError::Reserved(at) => {
                write!(f, "byte {at} is the reserved msgpack marker 0xc1")
            }
            FramingError::TooLarge { max } => {
                write!(f, "the message is larger than the maximum of {max} bytes")
            }
        }
    }
}

/// The length of the first whole msgpack value in `buf`; `None` while it is
/// incomplete. `max` bounds the message size.
pub(crate) fn value_len(buf: &[u8], max: usize) -> Result<Option<usize>, FramingError> {
    // Values still to walk: containers add their elements.
    let mut pending: usize = 1;
    let mut pos = 0usize;
    while pending > 0 {
        let Some(&byte) = buf.get(pos) else {
            return Ok(None);
        };
        pos += 1;
        pending -= 1;
        let be = |n: usize, pos: usize| -> Option<usize> {
            let bytes = buf.get(pos..pos + n)?;
            Some(
                bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            )
        };
        // (bytes of length field, fixed payload, elements per length unit)
        let (len_bytes, payload, elements) = match Marker::from_u8(byte) {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                (0, 0, 0)
            }
            Marker::U8 | Marker::I8 => (0, 1, 0),
            Marker::U16 | Marker::I16 => (0, 2, 0),
            Marker::U32 | Marker::I32 | Marker::F32 => (0, 4, 0),
            Marker::U64 | Marker::I64 | Marker::F64 => (0, 8, 0),
            Marker::FixStr(n) => (0, usize::from(n), 0),
            Marker::Str8 | Marker::Bin8 => (1, 0, 0),
            Marker::Str16 | Marker::Bin16 => (2, 0, 0),
            Marker::Str32 | Marker::Bin32 => (4, 0, 0),
            Marker::FixArray(n) => {
                pending += usize::from(n);
                (0, 0, 0)
            }
            Marker::FixMap(n) => {
                pending += 2 * usize::from(n);
                (0, 0, 0)
            }
            Marker::Array16 => (2, 0, 1),
            Marker::Array32 => (4, 0, 1),
            Marker::Map16 => (2, 0, 2),
            Marker::Map32 => (4, 0, 2),
            Marker::FixExt1 => (0, 2, 0),
            Marker::FixExt2 => (0, 3, 0),
            Marker::FixExt4 => (0, 5, 0),
            Marker::FixExt8 => (0, 9, 0),
            Marker::FixExt16 => (0, 17, 0),
            // Length, then the type byte, then the data.
            Marker::Ext8 => (1, 1, 0),
            Marker::Ext16 => (2, 1, 0),
            Marker::Ext32 => (4, 1, 0),
            Marker::Reserved => return Err(FramingError::Reserved(pos - 1)),
        };
        let mut skip = payload;
        if len_bytes > 0 {
            let Some(n) = be(len_bytes, pos) else {
                return Ok(None);
            };
            pos += len_bytes;
            if elements > 0 {
                pending = pending.saturating_add(n.saturating_mul(elements));
            } else {
                skip += n;
            }
        }
        pos = pos.saturating_add(skip);
        // Every element takes at least one byte.
        if pos > max || pending > max.saturating_sub(pos) {
            return Err(FramingError::TooLarge { max });
        }
    }
    Ok((pos <= buf.len()).then_some(pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    #[test]
    fn every_prefix_is_incomplete_and_the_whole_value_is_found() {
        let values = [
            Value::Nil,
            Value::from(-3),
            Value::from(403),
            Value::from(1_700_000_000u64),
            Value::from(u64::MAX),
            Value::from(1.5),
            Value::from(""),
            Value::from("x".repeat(40)),
            Value::from("y".repeat(300)),
            Value::from("z".repeat(70_000)),
            Value::Binary(vec![0xc1; 20]),
            Value::Binary(vec![1; 70_000]),
            Value::Array(vec![]),
            Value::Array((0..20).map(Value::from).collect()),
            Value::Map(vec![]),
            Value::Map(
                (0..20)
                    .map(|i| {
                        (
                            Value::from(format!("k{i}")),
                            Value::Array(vec![Value::from(i)]),
                        )
                    })
                    .collect(),
            ),
            Value::Ext(5, vec![1, 2, 3]),
            Value::Ext(1, vec![9; 8]),
            Value::Array(vec![
                Value::from(0),
                Value::from(7),
                Value::from("plugin.Step"),
                Value::Array(vec![Value::Map(vec![(
                    Value::from("Data"),
                    Value::Map(vec![(Value::from("a"), Value::Nil)]),
                )])]),
            ]),
        ];
        for v in &values {
            let bytes = encode(v);
            for cut in 0..bytes.len() {
                assert_eq!(
                    value_len(&bytes[..cut], 1 << 20),
                    Ok(None),
                    "{v:?} cut at {cut}"
                );
            }
            let mut two = bytes.clone();
            two.extend_from_slice(&bytes);
            assert_eq!(value_len(&two, 1 << 20), Ok(Some(bytes.len())), "{v:?}");
        }
    }

    #[test]
    fn bad_and_oversized_input_is_refused() {
        assert_eq!(value_len(&[0xc1], 100), Err(FramingError::Reserved(0)));
        assert_eq!(
            value_len(&[0x92, 0x01, 0xc1], 100),
            Err(FramingError::Reserved(2))
        );
        // An array of 2^32-1 elements in 5 bytes.
        assert_eq!(
            value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff], 1 << 20),
            Err(FramingError::TooLarge { max: 1 << 20 })
        );
        // A string longer than the limit.
        assert_eq!(
            value_len(&[0xdb, 0x00, 0x10, 0x00, 0x00], 1000),
            Err(FramingError::TooLarge { max: 1000 })
        );
    }
}
