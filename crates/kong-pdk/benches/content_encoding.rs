//! What `get_decoded_body` + `replace_body` cost on the plugin's side: decode
//! and re-encode a JSON-like body per coding, at 64 KiB and 8 MiB. Run with
//! `cargo bench -p kong-pdk --bench content_encoding`.

use std::hint::black_box;

use kong_pdk::pdk::ContentEncoding;

fn main() {
    divan::main();
}

/// JSON-like text: varied words in a pseudo-random order, so the codecs do
/// real work (a repeated byte would compress a thousandfold).
fn body(n: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "\"id\": 7, ",
        "\"name\": ",
        "\"kong\", ",
        "\"rust\", ",
        "{\"items\": [",
        "], ",
        "true, ",
        "\"upstream body\", ",
    ];
    let mut out = String::with_capacity(n + 32);
    let mut state: u32 = 0x9e37_79b9;
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.push_str(WORDS[(state % 8) as usize]);
    }
    out.truncate(n);
    out.into_bytes()
}

const SIZES: [usize; 2] = [64 * 1024, 8 * 1024 * 1024];

/// Decode, then encode again in the same coding: one edited response.
#[divan::bench(args = ["gzip", "deflate", "br"], consts = SIZES, sample_count = 10)]
fn decode_and_reencode<const N: usize>(bencher: divan::Bencher<'_, '_>, coding: &str) {
    let encoding = ContentEncoding::parse(coding).unwrap();
    let compressed = encoding.encode(body(N));
    bencher.bench(|| {
        let decoded = encoding
            .decode(black_box(compressed.clone()), usize::MAX / 2)
            .unwrap();
        encoding.encode(decoded)
    });
}
