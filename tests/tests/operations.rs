//! Operating the examples, on every adapter over real sockets: the per-client rate limit
//! (`RATE_LIMIT_PER_S`), the per-hub connection limit (`MAX_CONNECTIONS`), the lifecycle
//! hooks, `/healthz` and `/metrics`.
#![allow(clippy::unwrap_used, missing_docs)]

use futures_util::{SinkExt, StreamExt};
use hub_core::{DisconnectReason, Hub, Rejection};
use hub_tests::raw::{self, header};
use hub_tests::sse::SseClient;
use hub_tests::{
    close_code, conformance, connect, guard, next_text, send_text, wait_hub, Adapter, Server,
    Settings,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// `GET path` on a connection of its own; the status, the head and the whole body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (status, head, mut stream) = raw::request(addr, &head).await;
    let body = raw::read_until(&mut stream, |_| false).await;
    (status, head, String::from_utf8(body).unwrap())
}

/// A WebSocket upgrade of `/ws/chat` and a subscription to `/events/chat` both get 503 with
/// `Retry-After`.
async fn chat_refuses_with_503_and_retry_after(addr: SocketAddr) {
    let upgrade = raw::upgrade_head(addr, "/ws/chat", "");
    let (status, head, _stream) = raw::request(addr, &upgrade).await;
    assert_eq!(status, 503, "{head}");
    assert!(header(&head, "retry-after").is_some(), "{head}");
    let refused = SseClient::get(addr, "/events/chat", &[("accept", "text/event-stream")]).await;
    assert_eq!(refused.status, 503);
    assert!(refused.headers.contains_key("retry-after"));
}

async fn rate_limit_closes_a_flooder_with_1008_and_spares_the_others(adapter: Adapter) {
    let settings = Settings {
        rate_limit_per_s: Some(100),
        ..Settings::default()
    };
    let server = Server::with(adapter, settings, |c| c).await;
    let url = server.url("/ws/echo");
    let mut other = connect(&url).await;
    let (mut flood_tx, flood_rx) = connect(&url).await.split();
    // 1,000 messages a second until the server closes the connection
    let flooding = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for n in 0u32.. {
            tick.tick().await;
            if flood_tx.send(Message::text(format!("f{n}"))).await.is_err() {
                return n;
            }
        }
        unreachable!()
    });
    // meanwhile the other client's round trips go on, each answered
    let round_trips = async {
        for n in 0..30 {
            let text = format!("other {n}");
            send_text(&mut other, &text).await;
            assert_eq!(next_text(&mut other).await, text);
        }
    };
    let closed = async {
        let mut rx = flood_rx;
        close_code(&mut rx).await
    };
    let ((code, reason), ()) = tokio::join!(closed, round_trips);
    assert_eq!(code, 1008, "{reason}");
    assert_eq!(reason, "rate limit");
    let sent = guard("the flooder's sends to fail", flooding)
        .await
        .unwrap();
    assert!(sent > 100, "closed after {sent} messages, within the burst");
    // the other client is still served after the flooder is gone
    send_text(&mut other, "after").await;
    assert_eq!(next_text(&mut other).await, "after");
    let stats = server.app.echo.stats();
    assert_eq!(stats.disconnected(DisconnectReason::RateLimited), 1);
    assert_eq!(stats.rate_limited, 1, "the message that closed it");
    assert_eq!(stats.connected, 1);
}

async fn connection_limit_refuses_the_next_upgrade_and_subscription_with_503(adapter: Adapter) {
    let settings = Settings {
        max_connections: Some(2),
        ..Settings::default()
    };
    let server = Server::with(adapter, settings, |c| c).await;
    let chat = &server.app.chat;
    let mut a = connect(&server.url("/ws/chat")).await;
    let mut b = SseClient::get(
        server.addr,
        "/events/chat",
        &[("accept", "text/event-stream")],
    )
    .await;
    assert_eq!(b.status, 200);
    wait_hub(chat, "two clients", |h| h.client_count() == 2).await;
    // the next WebSocket upgrade and the next subscription are refused
    chat_refuses_with_503_and_retry_after(server.addr).await;
    let stats = chat.stats();
    assert_eq!(stats.rejected(Rejection::TooManyConnections), 2);
    // nobody already connected is disturbed: a broadcast reaches both
    send_text(&mut a, "still here").await;
    assert_eq!(next_text(&mut a).await, "still here");
    assert_eq!(b.next().await.data, "still here");
    assert_eq!(chat.client_count(), 2);
    // the limit is per hub: the echo has room
    let mut echo = connect(&server.url("/ws/echo")).await;
    send_text(&mut echo, "echo").await;
    assert_eq!(next_text(&mut echo).await, "echo");
    // and a place that frees up is taken again
    drop(b);
    wait_hub(chat, "one client", |h| h.client_count() == 1).await;
    let mut c = connect(&server.url("/ws/chat")).await;
    send_text(&mut c, "back").await;
    assert_eq!(next_text(&mut c).await, "back");
}

/// One hook call: `connect`, `message` or `disconnect`, with the client's id.
type Event = (&'static str, u64);

/// Logs `hub`'s hooks and messages into a channel; the message handler echoes.
fn log_hooks(hub: &Hub, echo: bool) -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (t1, t2, t3) = (tx.clone(), tx.clone(), tx);
    hub.on_connect_async(move |_, client| {
        let tx = t1.clone();
        async move {
            // a slow lookup: the client's first message waits for it
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(("connect", client.id().get()));
        }
    });
    if echo {
        hub.on_message(move |_, msg| {
            let _ = t2.send(("message", msg.client.id().get()));
            let _ = msg.client.send(msg.message);
        });
    }
    hub.on_disconnect(move |_, client, _| {
        let _ = t3.send(("disconnect", client.id().get()));
    });
    rx
}

async fn next_event(log: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    guard("a hook", log.recv()).await.unwrap()
}

async fn hooks_run_once_each_around_a_websocket_and_a_stream(adapter: Adapter) {
    let server = Server::start(adapter).await;
    // WebSocket: connect before the first message, disconnect once after the last
    let mut log = log_hooks(&server.app.echo, true);
    let mut ws = connect(&server.url("/ws/echo")).await;
    send_text(&mut ws, "first").await;
    assert_eq!(next_text(&mut ws).await, "first");
    let (kind, id) = next_event(&mut log).await;
    assert_eq!(kind, "connect");
    assert_eq!(next_event(&mut log).await, ("message", id));
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    assert_eq!(next_event(&mut log).await, ("disconnect", id));
    // SSE: the same two hooks, on the chat
    let mut log = log_hooks(&server.app.chat, false);
    let stream = SseClient::get(
        server.addr,
        "/events/chat",
        &[("accept", "text/event-stream")],
    )
    .await;
    assert_eq!(stream.status, 200);
    let (kind, sse_id) = next_event(&mut log).await;
    assert_eq!(kind, "connect");
    drop(stream);
    assert_eq!(next_event(&mut log).await, ("disconnect", sse_id));
    // exactly once: a later client's hooks come next, nothing more of the first two
    let mut ws = connect(&server.url("/ws/chat")).await;
    let (kind, later) = next_event(&mut log).await;
    assert_eq!(kind, "connect");
    assert_ne!(later, sse_id);
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    assert_eq!(next_event(&mut log).await, ("disconnect", later));
    server.stop().await;
    assert!(log.try_recv().is_err(), "no hook ran twice");
}

async fn draining_answers_503_with_retry_after_and_metrics_count_the_clients(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let (status, _, body) = get(server.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let mut ws = connect(&server.url("/ws/chat")).await;
    wait_hub(&server.app.chat, "the client", |h| h.client_count() == 1).await;
    let (status, head, text) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200, "{head}");
    let content_type = header(&head, "content-type").unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(
        text.contains("hub_connected_clients{hub=\"chat\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("hub_connected_clients{hub=\"echo\"} 0\n"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // draining: the server still answers, /healthz says 503 and the client gets 1001
    server.app.begin_shutdown();
    let (status, _, body) = get(server.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (503, "draining\n"));
    assert_eq!(close_code(&mut ws).await.0, 1001);
    // and new upgrades and subscriptions are told when to come back
    chat_refuses_with_503_and_retry_after(server.addr).await;
    server.stop().await;
}

conformance!(
    rate_limit_closes_a_flooder_with_1008_and_spares_the_others,
    connection_limit_refuses_the_next_upgrade_and_subscription_with_503,
    hooks_run_once_each_around_a_websocket_and_a_stream,
    draining_answers_503_with_retry_after_and_metrics_count_the_clients,
);
