//! Micro-benchmarks of the per-call hot path: framing, RpcCall decoding and
//! Kong value conversions. Run with `cargo bench -p kong-pdk --bench codec`.

use std::hint::black_box;

use kong_pdk_proto as pb;
use prost::Message;

fn main() {
    divan::main();
}

fn handle_event_call() -> Vec<u8> {
    pb::RpcCall {
        sequence: 12345,
        call: Some(pb::rpc_call::Call::CmdHandleEvent(pb::CmdHandleEvent {
            instance_id: 1,
            event_name: "access".into(),
        })),
    }
    .encode_to_vec()
}

#[divan::bench]
fn decode_handle_event(bencher: divan::Bencher<'_, '_>) {
    let bytes = handle_event_call();
    bencher.bench(|| pb::RpcCall::decode(black_box(&bytes[..])).unwrap());
}

#[divan::bench]
fn frame_pdk_call_set_header(bencher: divan::Bencher<'_, '_>) {
    let args = pb::Kv {
        k: "x-hello-from-rust".into(),
        v: Some(pb::Value {
            kind: Some(pb::ValueKind::StringValue(
                "Rust says Kong! to 127.0.0.1:8000".into(),
            )),
        }),
    };
    let mut buf = Vec::with_capacity(256);
    bencher.bench_local(|| {
        buf.clear();
        kong_pdk::wire::push_frame(&mut buf, b"kong.response.set_header");
        kong_pdk::wire::push_message(&mut buf, black_box(&args));
        buf.len()
    });
}

#[divan::bench]
fn read_three_frames(bencher: divan::Bencher<'_, '_>) {
    let mut wire = Vec::new();
    kong_pdk::wire::push_frame(&mut wire, b"kong.request.get_header");
    kong_pdk::wire::push_frame(&mut wire, &pb::Str { v: "host".into() }.encode_to_vec());
    kong_pdk::wire::push_frame(&mut wire, b"");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut buf = Vec::with_capacity(64);
    bencher.bench_local(|| {
        rt.block_on(async {
            let mut reader = black_box(&wire[..]);
            for _ in 0..3 {
                kong_pdk::wire::read_frame(
                    &mut reader,
                    &mut buf,
                    1 << 20,
                    kong_pdk::wire::DEFAULT_FRAME_TIMEOUT,
                )
                .await
                .unwrap();
            }
        })
    });
}

fn shared_value() -> serde_json::Value {
    serde_json::json!({
        "tenant": "acme",
        "method": "DELETE",
        "path": "/orders/7",
        "limits": [10, 20, 30],
        "nested": {"ok": true, "ratio": 0.25, "none": null}
    })
}

#[divan::bench]
fn json_to_kong_value(bencher: divan::Bencher<'_, '_>) {
    let json = shared_value();
    bencher.bench(|| kong_pdk::__private::value_from_json(black_box(json.clone())));
}

#[divan::bench]
fn kong_value_to_json(bencher: divan::Bencher<'_, '_>) {
    let value = kong_pdk::__private::value_from_json(shared_value());
    bencher.bench(|| kong_pdk::__private::value_to_json(black_box(value.clone())));
}

#[divan::bench]
fn encode_kong_value(bencher: divan::Bencher<'_, '_>) {
    let value = kong_pdk::__private::value_from_json(shared_value());
    let mut buf = Vec::with_capacity(256);
    bencher.bench_local(|| {
        buf.clear();
        black_box(&value).encode(&mut buf).unwrap();
        buf.len()
    });
}
