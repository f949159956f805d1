//! One cheap hasher for the server's own lookups (instance ids, method
//! names, MsgPack event ids): keys come from Kong or from our own constants,
//! never from a client, so SipHash's flood resistance buys nothing and
//! costs about a hundred instructions per lookup on the hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative ("Fibonacci") hashing: spreads consecutive integers over
/// the high bits the table uses.
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// See the module.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<Key, V> = HashMap<Key, V, BuildHasherDefault<FastHasher>>;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Eight bytes at a time.
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        self.0 =
            (self.0.rotate_left(5) ^ u64::from_le_bytes(tail) ^ rest.len() as u64).wrapping_mul(K);
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(u64::from(n as u32));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_hash_apart_and_maps_work() {
        let hash = |f: &dyn Fn(&mut FastHasher)| {
            let mut h = FastHasher::default();
            f(&mut h);
            h.finish()
        };
        let ids: std::collections::HashSet<u64> =
            (0..1000).map(|i| hash(&|h| h.write_i32(i))).collect();
        assert_eq!(ids.len(), 1000);
        // Names that differ only past the first eight bytes, or by length.
        let a = hash(&|h| h.write(b"kong.request.get_header"));
        let b = hash(&|h| h.write(b"kong.request.get_headers"));
        let c = hash(&|h| h.write(b"kong.response.get_header"));
        assert!(a != b && b != c && a != c);
        let mut map: FastMap<&str, i32> = FastMap::default();
        map.insert("kong.request.get_header", 1);
        map.insert("kong.request.get_headers", 2);
        assert_eq!(map.get("kong.request.get_headers"), Some(&2));
        assert_eq!(map.get("kong.request.get_body"), None);
    }
}
