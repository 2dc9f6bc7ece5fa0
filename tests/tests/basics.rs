//! Broadcast, echo, reply-to-sender, client count, text and binary, metadata — over real sockets.
#![allow(clippy::unwrap_used)]

use hub_tests::Adapter;

use futures_util::{FutureExt, SinkExt, StreamExt};
use hub_core::{DisconnectReason, Hub, Message as HubMessage};
use hub_tests::{close_code, connect, next_data, next_text, send_text, wait_hub, Server};
use tokio_tungstenite::tungstenite::Message;

async fn broadcast_reaches_every_client_in_order(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(connect(&server.url("/ws/chat")).await);
    }
    wait_hub(&server.app.chat, "5 clients", |h| h.client_count() == 5).await;

    for i in 0..200 {
        send_text(&mut clients[0], &format!("{{\"n\":{i}}}")).await;
    }
    for ws in &mut clients {
        for i in 0..200 {
            assert_eq!(next_text(ws).await, format!("{{\"n\":{i}}}"));
        }
    }
    let stats = server.app.chat.stats();
    assert_eq!(stats.messages_in, 200);
    assert_eq!(stats.messages_out, 1000);
}

async fn broadcast_from_outside_a_handler_reaches_every_client(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut a = connect(&server.url("/ws/chat")).await;
    let mut b = connect(&server.url("/ws/chat")).await;
    wait_hub(&server.app.chat, "2 clients", |h| h.client_count() == 2).await;
    // From plain sync code on another thread.
    let hub = server.app.chat.clone();
    let queued = std::thread::spawn(move || hub.broadcast(r#"{"type":"update"}"#))
        .join()
        .unwrap();
    assert_eq!(queued, 2);
    assert_eq!(next_text(&mut a).await, r#"{"type":"update"}"#);
    assert_eq!(next_text(&mut b).await, r#"{"type":"update"}"#);
}

async fn echo_replies_to_the_sender_only(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut a = connect(&server.url("/ws/echo")).await;
    let mut b = connect(&server.url("/ws/echo")).await;
    send_text(&mut a, "from a").await;
    assert_eq!(next_text(&mut a).await, "from a");
    // b's first message must be its own echo, not a's.
    send_text(&mut b, "from b").await;
    assert_eq!(next_text(&mut b).await, "from b");
}

async fn text_and_binary_keep_their_type(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = connect(&server.url("/ws/echo")).await;
    ws.send(Message::binary(vec![0u8, 159, 146, 150, 255]))
        .await
        .unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(vec![0u8, 159, 146, 150, 255])
    );
    ws.send(Message::text("héllo ✓")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("héllo ✓"));
    // a large message (1 MiB) through the 16 MiB echo endpoint
    let big = vec![7u8; 1 << 20];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::binary(big));
}

async fn client_count_follows_connects_clean_closes_and_abrupt_drops(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let hub = &server.app.chat;
    let mut a = connect(&server.url("/ws/chat")).await;
    let b = connect(&server.url("/ws/chat")).await;
    let c = connect(&server.url("/ws/chat")).await;
    wait_hub(hub, "3 clients", |h| h.client_count() == 3).await;

    // clean close: the close handshake completes and the client leaves
    a.close(None).await.unwrap();
    while a.next().await.is_some() {}
    wait_hub(hub, "2 clients", |h| h.client_count() == 2).await;

    // abrupt drop: TCP goes away without a close frame
    drop(b);
    wait_hub(hub, "1 client", |h| h.client_count() == 1).await;
    drop(c);
    wait_hub(hub, "0 clients", |h| h.client_count() == 0).await;

    let stats = hub.stats();
    assert_eq!(stats.connections_total, 3);
    assert_eq!(stats.disconnected(DisconnectReason::PeerClosed), 3);
    assert_eq!(stats.connected, 0);
    wait_hub(hub, "drivers to end", |h| h.live_connections() == 0).await;
}

async fn client_send_after_the_client_left_is_an_error_not_a_panic(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let ws = connect(&server.url("/ws/chat")).await;
    wait_hub(&server.app.chat, "1 client", |h| h.client_count() == 1).await;
    let client = server.app.chat.clients().pop().unwrap();
    assert!(client.send("hi").is_ok());
    drop(ws);
    wait_hub(&server.app.chat, "0 clients", |h| h.client_count() == 0).await;
    assert!(matches!(
        client.send("late"),
        Err(hub_core::SendError::Closed(m)) if m == HubMessage::text("late")
    ));
    assert!(!client.is_connected());
}

async fn server_side_close_sends_code_and_reason_after_queued_messages(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = connect(&server.url("/ws/chat")).await;
    wait_hub(&server.app.chat, "1 client", |h| h.client_count() == 1).await;
    let client = server.app.chat.clients().pop().unwrap();
    client.send("last words").unwrap();
    assert!(client.close(4000, "bye now"));
    assert_eq!(server.app.chat.client_count(), 0);
    assert_eq!(next_text(&mut ws).await, "last words");
    assert_eq!(close_code(&mut ws).await, (4000, "bye now".to_string()));
}

/// The adapter attaches the user taken from a request header to the client.
async fn client_close_is_answered_with_the_same_code_then_the_connection_ends(adapter: Adapter) {
    use hub_tests::raw::RawWs;
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/echo").await;
    ws.send(true, 0x1, b"hi", true).await;
    let echo = ws.recv().await.expect("the echo");
    assert_eq!(echo.payload, b"hi");
    let mut close = 4000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"done");
    ws.send(true, 0x8, &close, true).await;
    assert_eq!(
        ws.expect_close().await,
        4000,
        "the reply echoes the client's code"
    );
    ws.expect_eof().await;
}

async fn metadata_attached_at_upgrade_reaches_the_handler(adapter: Adapter) {
    use hub_tests::bare::User;

    let hub = Hub::new();
    hub.on_message(|_hub, msg| {
        let name = msg.client.data::<User>().map_or("?", |u| u.0.as_str());
        let _ = msg
            .client
            .send(format!("{name}: {}", msg.message.as_text().unwrap_or("")));
    });
    let addr = hub_tests::bare::serve_hub(adapter, &hub).await;
    let request = http::Request::builder()
        .uri(format!("ws://{addr}/"))
        .header("x-user", "ada")
        .header("host", addr.to_string())
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-version", "13")
        .header(
            "sec-websocket-key",
            tokio_tungstenite::tungstenite::handshake::client::generate_key(),
        )
        .body(())
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send_text(&mut ws, "hello").await;
    assert_eq!(next_text(&mut ws).await, "ada: hello");
}

async fn async_handler_keeps_per_client_order_and_does_not_stall_others(adapter: Adapter) {
    let hub = Hub::new();
    hub.on_message_async(|_hub, msg| async move {
        // "slow" work for messages that ask for it: waits on a timer, not the thread
        if msg.message.as_text() == Some("slow") {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        let _ = msg.client.send(msg.message);
    });
    let addr = hub_tests::bare::serve_hub(adapter, &hub).await;

    let mut slow = connect(&format!("ws://{addr}/")).await;
    let mut fast = connect(&format!("ws://{addr}/")).await;
    send_text(&mut slow, "slow").await;
    send_text(&mut slow, "after").await;
    // The fast client is served while the slow client's handler is still waiting.
    send_text(&mut fast, "quick").await;
    assert_eq!(next_text(&mut fast).await, "quick");
    assert!(
        slow.next().now_or_never().is_none(),
        "the slow handler finished before the fast client was served"
    );
    // The slow client's replies come in its own order.
    assert_eq!(next_text(&mut slow).await, "slow");
    assert_eq!(next_text(&mut slow).await, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_an_axum_handler() {
    let hub = Hub::new();
    hub.on_message(|_hub, msg| {
        let _ = msg.client.send(msg.message);
    });
    let router = axum::Router::new().route(
        "/ws",
        axum::routing::any(move |req: axum::extract::Request| {
            let hub = hub.clone();
            async move { hub_hyper::upgrade(req, &hub) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut ws = connect(&format!("ws://{addr}/ws")).await;
    send_text(&mut ws, "through axum").await;
    assert_eq!(next_text(&mut ws).await, "through axum");
}

hub_tests::conformance!(
    client_close_is_answered_with_the_same_code_then_the_connection_ends,
    broadcast_reaches_every_client_in_order,
    broadcast_from_outside_a_handler_reaches_every_client,
    echo_replies_to_the_sender_only,
    text_and_binary_keep_their_type,
    client_count_follows_connects_clean_closes_and_abrupt_drops,
    client_send_after_the_client_left_is_an_error_not_a_panic,
    server_side_close_sends_code_and_reason_after_queued_messages,
    metadata_attached_at_upgrade_reaches_the_handler,
    async_handler_keeps_per_client_order_and_does_not_stall_others,
);
