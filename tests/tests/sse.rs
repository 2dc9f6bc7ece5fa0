//! Server-Sent Events end to end: negotiation, headers, the seed's stream API, heartbeats,
//! disconnects, Last-Event-ID resume, eviction, and WebSocket messages reaching subscribers.
#![allow(clippy::unwrap_used)]

use hub_tests::Adapter;

use futures_util::SinkExt;
use hub_core::{ClientKind, DisconnectReason, Hub, Message as HubMessage, Rejection};
use hub_hyper::sse::{SseConfig, SseStream};
use hub_tests::sse::SseClient;
use hub_tests::Settings;
use hub_tests::{connect, guard, next_text, send_text, wait_hub, Server};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

const ACCEPT: (&str, &str) = ("accept", "text/event-stream");

async fn event_stream_headers_and_negotiation(adapter: Adapter) {
    let server = Server::start(adapter).await;
    for path in ["/events/feed", "/events/chat"] {
        let client = SseClient::get(server.addr, path, &[ACCEPT]).await;
        assert_eq!(client.status, 200, "{path}");
        let h = &client.headers;
        assert_eq!(h["content-type"], "text/event-stream");
        assert_eq!(h["cache-control"], "no-cache");
        assert_eq!(h["x-accel-buffering"], "no");
        assert!(!h.contains_key("connection"), "{path}: {h:?}");
        // no Accept header at all is fine too
        assert_eq!(SseClient::get(server.addr, path, &[]).await.status, 200);
        // but not a client that wants something else, nor a POST
        let json = SseClient::get(server.addr, path, &[("accept", "application/json")]).await;
        assert_eq!(json.status, 406, "{path}");
        let post = SseClient::request(server.addr, "POST", path, &[ACCEPT]).await;
        assert_eq!(post.status, 406, "{path}");
    }
    // the chat stream's two 406s are the chat hub's refusals, counted as every other one
    let stats = server.app.chat.stats();
    assert_eq!(stats.rejected(Rejection::NotAcceptable), 2);
    assert_eq!(stats.rejected_upgrades, 2);
}

async fn feed_ticks_with_the_time_and_the_chat_client_count(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let _ws = connect(&server.url("/ws/chat")).await;
    wait_hub(&server.app.chat, "1 client", |h| h.client_count() == 1).await;
    let mut feed = SseClient::get(server.addr, "/events/feed", &[ACCEPT]).await;
    let tick = feed.next().await;
    assert_eq!(tick.event, "tick");
    let data: serde_json::Value = serde_json::from_str(&tick.data).unwrap();
    assert_eq!(data["count"], 1);
    let time = data["time"].as_str().unwrap();
    assert!(humantime_like(time), "not RFC 3339: {time}");
}

/// `YYYY-MM-DDTHH:MM:SSZ`
fn humantime_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
}

/// A bare server whose `/sse-stream` route hands its SseStream to the test.
async fn stream_server(
    adapter: Adapter,
    sse: SseConfig,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<SseStream>,
) {
    let config = hub_tests::bare::BareConfig {
        sse,
        ..Default::default()
    };
    let bare = hub_tests::bare::serve_bare(adapter, &Hub::new(), config).await;
    (bare.addr, bare.streams)
}

async fn seed_stream_api_named_json_raw_and_comment(adapter: Adapter) {
    let (addr, mut streams) = stream_server(adapter, SseConfig::default()).await;
    let mut client = SseClient::get(addr, "/sse-stream", &[ACCEPT]).await;
    let stream = streams.recv().await.unwrap();
    stream
        .send("update", &serde_json::json!({"id": 1, "status": "done"}))
        .unwrap();
    stream.comment("heartbeat\ndata: not an event").unwrap();
    stream.send_raw("hello world").unwrap();
    let update = client.next().await;
    assert_eq!(update.event, "update");
    assert_eq!(update.data, r#"{"id":1,"status":"done"}"#);
    let raw = client.next().await;
    assert_eq!(
        (raw.event.as_str(), raw.data.as_str()),
        ("message", "hello world")
    );
}

async fn a_client_that_leaves_is_noticed_within_one_heartbeat(adapter: Adapter) {
    let (addr, mut streams) = stream_server(
        adapter,
        SseConfig::default().heartbeat(Some(Duration::from_millis(100))),
    )
    .await;
    let client = SseClient::get(addr, "/sse-stream", &[ACCEPT]).await;
    let stream = streams.recv().await.unwrap();
    assert!(!stream.is_closed());
    drop(client);
    guard("is_closed after the client left", stream.closed()).await;
    assert!(stream.is_closed());
    assert!(matches!(
        stream.send_raw("late"),
        Err(hub_hyper::sse::SseError::Closed)
    ));
}

fn fast_heartbeat() -> SseConfig {
    SseConfig::default().heartbeat(Some(Duration::from_millis(100)))
}

async fn subscriber_that_aborts_leaves_the_hub_within_one_heartbeat(adapter: Adapter) {
    let server = Server::with_sse(adapter, Settings::default(), |c| c, fast_heartbeat()).await;
    let hub = &server.app.chat;
    let client = SseClient::get(server.addr, "/events/chat", &[ACCEPT]).await;
    wait_hub(hub, "the subscriber", |h| h.client_count() == 1).await;
    assert_eq!(hub.clients()[0].kind(), ClientKind::Sse);
    drop(client);
    wait_hub(hub, "the subscriber to leave", |h| {
        h.client_count() == 0 && h.live_connections() == 0
    })
    .await;
    assert_eq!(hub.stats().disconnected(DisconnectReason::PeerClosed), 1);
}

async fn websocket_messages_reach_subscribers_as_data_even_with_line_breaks(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut sse = SseClient::get(server.addr, "/events/chat", &[ACCEPT]).await;
    let mut ws = connect(&server.url("/ws/chat")).await;
    wait_hub(&server.app.chat, "2 clients", |h| h.client_count() == 2).await;
    let hostile = "line one\nevent: forged\ndata: injected\r\nid: 999\rretry: 1\n\nend";
    send_text(&mut ws, hostile).await;
    let event = sse.next().await;
    assert_eq!(event.event, "message");
    assert_eq!(event.id, "1", "the hub's id, not the forged one");
    // SSE carries line breaks as LF: CRLF and CR arrive as LF, everything else intact.
    assert_eq!(
        event.data,
        "line one\nevent: forged\ndata: injected\nid: 999\nretry: 1\n\nend"
    );
    assert_eq!(event.retry, None);
    // binary is base64 under the event name "binary"
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let binary = sse.next().await;
    assert_eq!(
        (binary.event.as_str(), binary.data.as_str()),
        ("binary", "AAEC/w==")
    );
}

async fn reconnect_with_last_event_id_resumes_without_loss_or_duplicate(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let hub = server.app.chat.clone();
    let mut first = SseClient::get(server.addr, "/events/chat", &[ACCEPT]).await;
    wait_hub(&hub, "the subscriber", |h| h.client_count() == 1).await;
    for i in 1..=10 {
        hub.broadcast(format!("m{i}"));
    }
    for i in 1..=5u64 {
        let e = first.next().await;
        assert_eq!(
            (e.id.as_str(), e.data.as_str()),
            (i.to_string().as_str(), format!("m{i}").as_str())
        );
    }
    drop(first); // gone after id 5, with 6..=10 unread
    wait_hub(&hub, "the subscriber to leave", |h| h.client_count() == 0).await;
    for i in 11..=15 {
        hub.broadcast(format!("m{i}"));
    }
    let mut again = SseClient::get(
        server.addr,
        "/events/chat",
        &[ACCEPT, ("last-event-id", "5")],
    )
    .await;
    wait_hub(&hub, "the subscriber to return", |h| h.client_count() == 1).await;
    hub.broadcast("m16");
    for i in 6..=16u64 {
        let e = again.next().await;
        assert_eq!(e.id, i.to_string());
        assert_eq!(e.data, format!("m{i}"));
    }
}

async fn resume_from_beyond_the_history_gets_a_missed_event_first(adapter: Adapter) {
    let server = Server::with(adapter, Settings::default(), |c| c.history(5)).await;
    let hub = server.app.chat.clone();
    for i in 1..=20 {
        hub.broadcast(format!("m{i}"));
    }
    let mut client = SseClient::get(
        server.addr,
        "/events/chat",
        &[ACCEPT, ("last-event-id", "2")],
    )
    .await;
    let missed = client.next().await;
    assert_eq!(missed.event, "missed");
    let data: serde_json::Value = serde_json::from_str(&missed.data).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"last_event_id": 2, "first_available": 16})
    );
    for i in 16..=20u64 {
        let e = client.next().await;
        assert_eq!((e.id, e.data), (i.to_string(), format!("m{i}")));
    }
}

async fn websocket_clients_resume_with_a_query_parameter(adapter: Adapter) {
    let server = Server::with(adapter, Settings::default(), |c| c.history(5)).await;
    let hub = server.app.chat.clone();
    for i in 1..=8 {
        hub.broadcast_with(|id| HubMessage::text(format!("{{\"id\":{}}}", id.unwrap())));
        let _ = i;
    }
    let mut ws = connect(&server.url("/ws/chat?last_event_id=6")).await;
    assert_eq!(next_text(&mut ws).await, r#"{"id":7}"#);
    assert_eq!(next_text(&mut ws).await, r#"{"id":8}"#);
    let mut old = connect(&server.url("/ws/chat?last_event_id=1")).await;
    assert_eq!(
        next_text(&mut old).await,
        r#"{"type":"missed","last_event_id":1,"first_available":4}"#
    );
    assert_eq!(next_text(&mut old).await, r#"{"id":4}"#);
}

async fn stalled_subscriber_is_evicted_while_the_others_continue(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let hub = server.app.chat.clone();
    // A subscriber with a 4 KiB receive buffer that never reads.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut stalled = tokio::net::TcpStream::from_std({
        socket.set_nonblocking(true).unwrap();
        socket.into()
    })
    .unwrap();
    let head = format!(
        "GET /events/chat HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        server.addr
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut reader = SseClient::get(server.addr, "/events/chat", &[ACCEPT]).await;
    let mut ws = connect(&server.url("/ws/chat")).await;
    wait_hub(&hub, "3 clients", |h| h.client_count() == 3).await;

    let payload = "x".repeat(4000);
    let total = 2000u64;
    let mut sent = 0u64;
    let mut read = 0u64;
    while read < total {
        while sent < total && sent < read + 128 {
            sent += 1;
            hub.broadcast(format!("{sent:06}{payload}"));
        }
        read += 1;
        let e = reader.next().await;
        assert_eq!(e.id, read.to_string(), "the fast subscriber skipped");
        let text = next_text(&mut ws).await;
        assert_eq!(
            &text[..6],
            format!("{read:06}"),
            "the WebSocket client skipped"
        );
    }
    let stats = hub.stats();
    assert_eq!(stats.evicted(), 1, "{stats:?}");
    assert_eq!(hub.client_count(), 2);
}

async fn subscriptions_follow_the_hub_origin_policy_and_shutdown(adapter: Adapter) {
    let settings = Settings {
        allowed_origins: Some(vec!["https://example.com".into()]),
        ..Settings::default()
    };
    let server = Server::with(adapter, settings, |c| c).await;
    let evil = SseClient::get(
        server.addr,
        "/events/chat",
        &[ACCEPT, ("origin", "https://evil-example.com")],
    )
    .await;
    assert_eq!(evil.status, 403);
    let good = SseClient::get(
        server.addr,
        "/events/chat",
        &[ACCEPT, ("origin", "https://example.com")],
    )
    .await;
    assert_eq!(good.status, 200);
    let hub: &Hub = &server.app.chat;
    hub.shutdown();
    assert_eq!(
        SseClient::get(server.addr, "/events/chat", &[ACCEPT])
            .await
            .status,
        503
    );
}

async fn shutdown_ends_subscriptions_after_flushing(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let hub = server.app.chat.clone();
    let mut client = SseClient::get(server.addr, "/events/chat", &[ACCEPT]).await;
    wait_hub(&hub, "the subscriber", |h| h.client_count() == 1).await;
    hub.broadcast("bye");
    let stopping = tokio::spawn(server.stop());
    assert_eq!(client.next().await.data, "bye");
    assert!(client.ended().await);
    guard("the server to stop", stopping).await.unwrap();
    assert_eq!(hub.stats().disconnected(DisconnectReason::Shutdown), 1);
}

hub_tests::conformance!(
    event_stream_headers_and_negotiation,
    feed_ticks_with_the_time_and_the_chat_client_count,
    seed_stream_api_named_json_raw_and_comment,
    a_client_that_leaves_is_noticed_within_one_heartbeat,
    subscriber_that_aborts_leaves_the_hub_within_one_heartbeat,
    websocket_messages_reach_subscribers_as_data_even_with_line_breaks,
    reconnect_with_last_event_id_resumes_without_loss_or_duplicate,
    resume_from_beyond_the_history_gets_a_missed_event_first,
    websocket_clients_resume_with_a_query_parameter,
    stalled_subscriber_is_evicted_while_the_others_continue,
    subscriptions_follow_the_hub_origin_policy_and_shutdown,
    shutdown_ends_subscriptions_after_flushing,
);
