//! What `get_decoded_body` + `replace_body` cost on the plugin's side: decode
//! and re-encode a body per coding, at 64 KiB and 8 MiB, made of the text the
//! echo upstream pads its answers with (what the gateway tests edit). Run
//! with `cargo bench -p kong-pdk-dev --bench content_encoding`.

use std::hint::black_box;

use kong_pdk::pdk::ContentEncoding;

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [64 * 1024, 8 * 1024 * 1024];

/// Decode, then encode again in the same coding: one edited response.
#[divan::bench(args = ["gzip", "deflate", "br"], consts = SIZES, sample_count = 10)]
fn decode_and_reencode<const N: usize>(bencher: divan::Bencher<'_, '_>, coding: &str) {
    let encoding = ContentEncoding::parse(coding).unwrap();
    let compressed = encoding.encode(kong_pdk_dev::echo::pad(N).into_bytes());
    bencher.bench(|| {
        let decoded = encoding
            .decode(black_box(compressed.clone()), usize::MAX / 2)
            .unwrap();
        encoding.encode(decoded)
    });
}
