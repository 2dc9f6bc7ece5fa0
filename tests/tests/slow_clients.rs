//! Slow-client eviction, graceful shutdown, and broadcasting from inside the handler.
#![allow(clippy::unwrap_used)]

use hub_tests::Adapter;

use bytes::Bytes;
use futures_util::StreamExt;
use hub_core::{DisconnectReason, Hub, HubConfig, Message as HubMessage};
use hub_tests::{
    close_code, connect, connect_small_rcvbuf, guard, next_data, next_text, send_text, wait_hub,
    Server,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: u32 = 3000;
const SIZE: usize = 4096;

fn numbered(i: u32) -> Bytes {
    let mut payload = vec![0u8; SIZE];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    Bytes::from(payload)
}

fn number(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload[..4].try_into().unwrap())
}

async fn stalled_reader_is_evicted_while_the_others_get_every_message_in_order(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let hub = server.app.chat.clone();

    // A client with a 4 KiB receive buffer that never reads.
    let mut stalled = connect_small_rcvbuf(server.addr, "/ws/chat", 4096).await;

    // Three readers that check order and report progress.
    let mut progress = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(&server.url("/ws/chat")).await;
        let (tx, rx) = watch::channel(0u32);
        progress.push(rx);
        readers.push(tokio::spawn(async move {
            let mut bytes = 0usize;
            for expected in 0..MESSAGES {
                match next_data(&mut ws).await {
                    Message::Binary(b) => {
                        assert_eq!(number(&b), expected, "out of order");
                        bytes += b.len();
                    }
                    other => panic!("unexpected {other:?}"),
                }
                tx.send_replace(expected + 1);
            }
            (bytes, ws)
        }));
    }
    wait_hub(&hub, "4 clients", |h| h.client_count() == 4).await;

    // Publish from the test task: broadcast is synchronous and never waits for a client.
    // Pace on the fast readers (an awaited event, not a sleep) so that only the stalled one
    // can fall behind.
    for i in 0..MESSAGES {
        for rx in &mut progress {
            guard("readers to catch up", rx.wait_for(|&n| n + 128 > i))
                .await
                .unwrap();
        }
        hub.broadcast(HubMessage::Binary(numbered(i)));
    }

    let mut total = 0;
    let mut keep_open = Vec::new();
    for reader in readers {
        let (bytes, ws) = guard("a reader", reader).await.unwrap();
        total += bytes;
        keep_open.push(ws);
    }
    assert!(total >= 20_000_000, "others received only {total} bytes");

    let stats = hub.stats();
    assert_eq!(stats.evicted(), 1, "{stats:?}");
    assert!(
        stats.dropped >= 1,
        "eviction must count what it dropped: {stats:?}"
    );
    assert_eq!(hub.client_count(), 3);

    // The stalled client now reads: a gap-free prefix of the stream, then close 1008.
    let mut next = 0;
    let (code, reason) = guard("the stalled client's close", async {
        loop {
            match stalled.next().await {
                Some(Ok(Message::Binary(b))) => {
                    assert_eq!(number(&b), next, "gap in the evicted client's stream");
                    next += 1;
                }
                Some(Ok(Message::Close(Some(f)))) => {
                    break (u16::from(f.code), f.reason.to_string())
                }
                Some(Ok(other)) => panic!("unexpected {other:?}"),
                Some(Err(e)) => panic!("read error: {e}"),
                None => panic!("no close frame"),
            }
        }
    })
    .await;
    assert_eq!((code, reason.as_str()), (1008, "slow consumer"));
    assert!(next < MESSAGES);
}

async fn send_to_a_full_queue_evicts_like_broadcast(adapter: Adapter) {
    let server = Server::with(adapter, Default::default(), |c| c.queue_capacity(8)).await;
    let _stalled = connect_small_rcvbuf(server.addr, "/ws/chat", 4096).await;
    wait_hub(&server.app.chat, "1 client", |h| h.client_count() == 1).await;
    let client = server.app.chat.clients().pop().unwrap();
    let big = HubMessage::Binary(Bytes::from(vec![0u8; 1 << 20]));
    let mut result = Ok(());
    for _ in 0..1000 {
        result = client.send(big.clone());
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(result, Err(hub_core::SendError::Evicted)),
        "{result:?}"
    );
    assert_eq!(server.app.chat.client_count(), 0);
    assert_eq!(server.app.chat.stats().evicted(), 1);
    assert!(matches!(
        client.send("more"),
        Err(hub_core::SendError::Closed(_))
    ));
}

async fn shutdown_flushes_then_closes_everyone_with_1001(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut chat = Vec::new();
    for _ in 0..3 {
        chat.push(connect(&server.url("/ws/chat")).await);
    }
    let mut echo = connect(&server.url("/ws/echo")).await;
    wait_hub(&server.app.chat, "3 clients", |h| h.client_count() == 3).await;
    wait_hub(&server.app.echo, "1 client", |h| h.client_count() == 1).await;
    let chat_hub = server.app.chat.clone();
    chat_hub.broadcast("before shutdown");
    // Ctrl-C, while the clients keep reading (and so answer the close handshake).
    let stopping = tokio::spawn(server.stop());

    for ws in &mut chat {
        assert_eq!(next_text(ws).await, "before shutdown");
        assert_eq!(close_code(ws).await, (1001, "server shutting down".into()));
    }
    assert_eq!(close_code(&mut echo).await.0, 1001);
    guard("the server to stop", stopping).await.unwrap();
    assert_eq!(chat_hub.stats().disconnected(DisconnectReason::Shutdown), 3);
    assert_eq!(chat_hub.live_connections(), 0);
}

async fn upgrades_after_shutdown_get_503(adapter: Adapter) {
    let server = Server::start(adapter).await;
    server.app.chat.shutdown();
    let head = hub_tests::raw::upgrade_head(server.addr, "/ws/chat", "");
    let (status, _, _) = hub_tests::raw::request(server.addr, &head).await;
    assert_eq!(status, 503);
}

async fn broadcasting_from_the_handler_while_queues_are_full_does_not_deadlock(adapter: Adapter) {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(4)).unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let done = handled.clone();
    let finished = Arc::new(tokio::sync::Notify::new());
    let signal = finished.clone();
    hub.on_message(move |hub, msg| {
        if msg.message.as_text() == Some("flood") {
            for i in 0..50 {
                hub.broadcast(format!("flood {i}"));
            }
            done.fetch_add(1, Ordering::SeqCst);
            signal.notify_one();
        } else {
            hub.broadcast(msg.message);
        }
    });
    let addr = hub_tests::bare::serve_hub(adapter, &hub).await;

    let _stalled_a = connect_small_rcvbuf(addr, "/", 4096).await;
    let _stalled_b = connect_small_rcvbuf(addr, "/", 4096).await;
    let mut sender = connect(&format!("ws://{addr}/")).await;
    wait_hub(&hub, "3 clients", |h| h.client_count() == 3).await;
    send_text(&mut sender, "flood").await;
    guard("the handler to finish", finished.notified()).await;
    // capacity 4 and 50 broadcasts: every queue overflowed, the sender's own included
    assert_eq!(hub.stats().evicted(), 3);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    assert_eq!(hub.stats().broadcasts, 50);

    // The hub still works for a newcomer.
    let mut fresh = connect(&format!("ws://{addr}/")).await;
    send_text(&mut fresh, "alive").await;
    assert_eq!(next_text(&mut fresh).await, "alive");
}

hub_tests::conformance!(
    stalled_reader_is_evicted_while_the_others_get_every_message_in_order,
    send_to_a_full_queue_evicts_like_broadcast,
    shutdown_flushes_then_closes_everyone_with_1001,
    upgrades_after_shutdown_get_503,
    broadcasting_from_the_handler_while_queues_are_full_does_not_deadlock,
);
