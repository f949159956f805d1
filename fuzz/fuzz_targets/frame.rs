//! The frame reader on arbitrary bytes in arbitrary chunks: never panics,
//! never allocates beyond the maximum frame size, and reads back exactly the
//! frames a writer framed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

const MAX: u32 = 1 << 16;
const DEADLINE: std::time::Duration = kong_pdk::wire::DEFAULT_FRAME_TIMEOUT;

fuzz_target!(|data: &[u8]| {
    // The frame deadline needs the timer when a frame arrives in pieces.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        // 1. Raw bytes as a stream of frames.
        let mut reader = data;
        let mut buf = Vec::new();
        while kong_pdk::wire::read_frame(&mut reader, &mut buf, MAX, DEADLINE).await.is_ok() {
            assert!(buf.len() <= MAX as usize);
        }
        // 2. The bytes cut into frames, framed, and written in 3-byte chunks.
        let frames: Vec<&[u8]> = data.split(|b| *b == 0xff).collect();
        let mut wire = Vec::new();
        for f in &frames {
            kong_pdk::wire::push_frame(&mut wire, f);
        }
        let (mut a, b) = tokio::io::duplex(7);
        let mut b = tokio::io::BufReader::with_capacity(5, b);
        let writer = async move {
            for chunk in wire.chunks(3) {
                a.write_all(chunk).await.unwrap();
            }
        };
        let reader = async {
            let mut got = Vec::new();
            let mut buf = Vec::new();
            for _ in 0..frames.len() {
                kong_pdk::wire::read_frame(&mut b, &mut buf, u32::MAX, DEADLINE).await.unwrap();
                got.push(buf.clone());
            }
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            assert_eq!(g.as_slice(), *f);
        }
    });
});
