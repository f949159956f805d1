//! A whole server connection fed arbitrary bytes as if they came from Kong:
//! RpcCall decoding, dispatch, instance configs, events, PDK replies. The
//! server must never panic or hang (handlers are bounded by a deadline).
#![no_main]

use std::time::Duration;

use kong_pdk::server::Server;
use kong_pdk::{Kong, PhaseResult, Plugin, Schema};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Deserialize, Schema)]
struct Config {
    message: Option<String>,
    #[serde(default)]
    limits: Vec<u32>,
}

#[kong_pdk::plugin]
impl Plugin for Config {
    async fn access(&self, kong: &mut Kong) -> PhaseResult {
        let host = kong.request().get_header("host").await?;
        let _: Option<serde_json::Value> = kong.ctx().get_shared("k").await?;
        let _ = kong.request().get_query().await?;
        let _ = kong.router().get_route().await?;
        kong.response()
            .set_header("x", &format!("{:?} {host} {:?}", self.message, self.limits))
            .await?;
        Ok(())
    }

    async fn log(&self, kong: &mut Kong) -> PhaseResult {
        let _ = kong.log().serialize().await?;
        kong.response().exit_status(500).await?;
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (kong_side, server_side) = tokio::net::UnixStream::pair().unwrap();
        let server = Server::<Config>::new("1.0.0", 1)
            .name("fuzz")
            .handler_timeout(Duration::from_millis(50));
        let serve = kong_pdk::__private::serve_connection(server, server_side);
        let (mut read, mut write) = kong_side.into_split();
        let peer = async move {
            let _ = write.write_all(data).await;
            drop(write);
        };
        let drain = async move {
            let mut sink = vec![0u8; 4096];
            while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let all = async { tokio::join!(serve, peer, drain) };
        tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .expect("the connection ends once Kong's side is closed");
    });
});
