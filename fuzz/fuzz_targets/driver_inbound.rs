//! The connection driver (with the tungstenite transport the adapters use) fed arbitrary bytes
//! as a client's inbound stream, on tokio's paused clock: it must never panic, must end once the
//! peer has gone (a hang shows as the virtual deadline passing), and must leave the registry.
//! libFuzzer's RSS limit catches unbounded memory.
#![no_main]

use hub_core::{ConnectOptions, Hub, HubConfig};
use hub_tokio::WsConfig;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Far beyond the keepalive (60 s pong wait) and write wait (10 s): a driver still running
/// this long after its peer went away is stuck.
const VIRTUAL_DEADLINE: Duration = Duration::from_secs(3600);

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let hub = Hub::with_config(HubConfig::default().max_message_size(64 * 1024)).expect("valid config");
        hub.on_message(|hub, msg| {
            // echo and broadcast: exercises the queue, eviction and the writer
            let _ = msg.client.send(msg.message.clone());
            hub.broadcast(msg.message);
        });
        let (mut peer, server) = tokio::io::duplex(4096);
        let driver = tokio::spawn(hub_tokio::serve(
            hub.clone(),
            server,
            ConnectOptions::default(),
            WsConfig::default(),
        ));
        let (mut peer_read, mut peer_write) = tokio::io::split(&mut peer);
        let write = async {
            // the server may close first; then the rest is not taken
            let _ = peer_write.write_all(data).await;
            let _ = peer_write.shutdown().await;
        };
        let read = async {
            let mut sink = [0u8; 4096];
            while matches!(peer_read.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let finished = tokio::time::timeout(VIRTUAL_DEADLINE, async {
            tokio::join!(write, read);
            driver.await
        })
        .await;
        let reason = finished
            .expect("the driver did not end after its peer left")
            .expect("the driver panicked");
        assert_eq!(
            hub.client_count(),
            0,
            "ended with {reason:?} but still registered"
        );
    });
});
