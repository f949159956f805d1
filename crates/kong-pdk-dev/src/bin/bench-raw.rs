//! `bench-raw`: the benchmark baseline, written straight against the
//! framing, with no PDK, no handler machinery and no checks beyond what the
//! protocol needs: the practical limit of a plugin server on this protocol.
//! Not for production.
//!
//! Per event it either replays a recorded call list (`replay` in the
//! instance config: `[method, hex args]` pairs, what `kong-pdk-dev bench`
//! records from the plugin under test), or makes the same PDK calls as
//! `bench-plugin` and the `rust-hello` example — `calls - 1`
//! `kong.request.get_header` calls, then one `kong.response.set_header`
//! (`calls` from the instance config, default 2, i.e. exactly rust-hello).
//!
//! Usage: `bench-raw -kong-prefix <dir>` (listens on `<dir>/<exe name>.socket`).

use std::path::PathBuf;

use kong_pdk_proto::{self as pb, rpc_call::Call, rpc_return::Return};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut prefix = PathBuf::from("/usr/local/kong");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-kong-prefix" | "--kong-prefix" => {
                prefix = args.next().expect("-kong-prefix needs a value").into();
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "bench-raw".into());
    let path = prefix.join(format!("{name}.socket"));
    let _ = std::fs::remove_file(&path);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let listener = UnixListener::bind(&path).expect("bind");
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(serve(stream));
                    }
                }
                _ = term.recv() => break,
            }
        }
        let _ = std::fs::remove_file(&path);
    });
}

/// What an instance needs: its config.
struct Instance {
    message: String,
    calls: u64,
    /// Recorded calls sent instead, when given.
    replay: Option<Vec<RecordedCall>>,
}

/// A recorded PDK call: the method name and the encoded arguments.
type RecordedCall = (Vec<u8>, Vec<u8>);

/// `[[method, hex], …]` → (method, bytes) pairs.
fn parse_replay(json: &serde_json::Value) -> std::io::Result<Option<Vec<RecordedCall>>> {
    let Some(list) = json.as_array() else {
        return Ok(None);
    };
    let bad = || std::io::Error::other("replay: expected [[method, hex args], ...]");
    let unhex = |h: &str| -> Option<Vec<u8>> {
        (h.len() % 2 == 0)
            .then(|| {
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
                    .collect()
            })
            .flatten()
    };
    list.iter()
        .map(|pair| {
            let method = pair[0].as_str().ok_or_else(bad)?;
            let args = pair[1].as_str().and_then(unhex).ok_or_else(bad)?;
            Ok((method.as_bytes().to_vec(), args))
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map(Some)
}

/// Instances by id, shared by all connections (Kong starts an instance on
/// one connection and sends its events on others).
static INSTANCES: std::sync::Mutex<std::collections::BTreeMap<i32, std::sync::Arc<Instance>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Headers read by the extra calls of the many-call variant (same list as
/// `bench-plugin`).
const HEADERS: [&str; 4] = ["user-agent", "accept", "x-request-id", "x-forwarded-for"];

async fn read_frame(r: &mut BufReader<UnixStream>, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let len = r.read_u32_le().await? as usize;
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(())
}

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// One PDK call: the method and args frames, then Kong's answer into `buf`.
async fn pdk_call(
    io: &mut BufReader<UnixStream>,
    out: &mut Vec<u8>,
    buf: &mut Vec<u8>,
    method: &[u8],
    args: &[u8],
) -> std::io::Result<()> {
    frame(out, method);
    frame(out, args);
    io.get_mut().write_all(out).await?;
    out.clear();
    read_frame(io, buf).await
}

async fn serve(stream: UnixStream) -> std::io::Result<()> {
    let mut io = BufReader::new(stream);
    let mut buf = Vec::with_capacity(256);
    let mut out = Vec::with_capacity(256);

    loop {
        read_frame(&mut io, &mut buf).await?;
        let call = pb::RpcCall::decode(&buf[..]).map_err(std::io::Error::other)?;
        out.clear();
        match call.call {
            Some(Call::CmdStartInstance(start)) => {
                let config: serde_json::Value =
                    serde_json::from_slice(&start.config).map_err(std::io::Error::other)?;
                let seq = config["__seq__"].as_i64().unwrap_or(1) as i32;
                let instance = Instance {
                    message: config["message"].as_str().unwrap_or("Kong!").to_owned(),
                    calls: config["calls"].as_u64().unwrap_or(2).max(1),
                    replay: parse_replay(&config["replay"])?,
                };
                INSTANCES
                    .lock()
                    .unwrap()
                    .insert(seq, std::sync::Arc::new(instance));
                let ret = pb::RpcReturn {
                    sequence: call.sequence,
                    r#return: Some(Return::InstanceStatus(pb::InstanceStatus {
                        name: start.name,
                        instance_id: seq,
                        config: None,
                        started_at: 0,
                    })),
                };
                frame(&mut out, &ret.encode_to_vec());
            }
            Some(Call::CmdHandleEvent(event)) => {
                let Some(instance) = INSTANCES.lock().unwrap().get(&event.instance_id).cloned()
                else {
                    return Ok(()); // unknown instance: close, as Kong expects
                };
                if let Some(calls) = &instance.replay {
                    for (method, args) in calls {
                        pdk_call(&mut io, &mut out, &mut buf, method, args).await?;
                    }
                } else {
                    let mut host = String::new();
                    for n in 1..instance.calls {
                        let name = if n == 1 {
                            "host"
                        } else {
                            HEADERS[(n as usize) % HEADERS.len()]
                        };
                        let args = pb::Str { v: name.into() }.encode_to_vec();
                        pdk_call(
                            &mut io,
                            &mut out,
                            &mut buf,
                            b"kong.request.get_header",
                            &args,
                        )
                        .await?;
                        let value = pb::Str::decode(&buf[..]).map_err(std::io::Error::other)?.v;
                        if n == 1 {
                            host = value;
                        }
                    }
                    let kv = pb::Kv {
                        k: "x-hello-from-rust".into(),
                        v: Some(pb::Value {
                            kind: Some(pb::ValueKind::StringValue(format!(
                                "Rust says {} to {host}",
                                instance.message
                            ))),
                        }),
                    };
                    let args = kv.encode_to_vec();
                    pdk_call(
                        &mut io,
                        &mut out,
                        &mut buf,
                        b"kong.response.set_header",
                        &args,
                    )
                    .await?;
                }
                frame(&mut out, b"");
                let ret = pb::RpcReturn {
                    sequence: call.sequence,
                    r#return: None,
                };
                frame(&mut out, &ret.encode_to_vec());
            }
            _ => {
                let ret = pb::RpcReturn {
                    sequence: call.sequence,
                    r#return: None,
                };
                frame(&mut out, &ret.encode_to_vec());
            }
        }
        io.get_mut().write_all(&out).await?;
    }
}
