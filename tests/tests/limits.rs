//! Limits and protocol errors get the right close code; bad handshakes the right status.
#![allow(clippy::unwrap_used)]

use hub_tests::Adapter;

use futures_util::SinkExt;
use hub_core::DisconnectReason;
use hub_tests::raw::{frame, request, upgrade_head, RawWs};
use hub_tests::Settings;
use hub_tests::{close_code, connect, wait_hub, Server};
use tokio_tungstenite::tungstenite::Message;

async fn message_over_512_kib_is_closed_with_1009(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = connect(&server.url("/ws/chat")).await;
    // exactly the limit passes
    ws.send(Message::binary(vec![1u8; 512 * 1024]))
        .await
        .unwrap();
    assert_eq!(
        hub_tests::next_data(&mut ws).await,
        Message::binary(vec![1u8; 512 * 1024])
    );
    // One byte more does not. The client reads only after the server has given up on it, so
    // the close frame must survive the server's unread input (a plain close would reset the
    // connection and destroy it).
    let _ = ws.send(Message::binary(vec![1u8; 512 * 1024 + 1])).await;
    let hub = &server.app.chat;
    wait_hub(hub, "the client to leave", |h| {
        h.stats().disconnected(DisconnectReason::TooBig) == 1
    })
    .await;
    assert_eq!(close_code(&mut ws).await.0, 1009);
    assert_eq!(hub.client_count(), 0);
}

async fn fragmented_message_growing_past_the_limit_is_closed_with_1009(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    let chunk = vec![b'a'; 100 * 1024];
    ws.send(false, 0x1, &chunk, true).await;
    for _ in 0..5 {
        ws.send(false, 0x0, &chunk, true).await; // 600 KiB in total, never finished
    }
    assert_eq!(ws.expect_close().await, 1009);
}

async fn invalid_utf8_text_is_closed_with_1007(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    ws.send(true, 0x1, &[b'o', b'k', 0xff, 0xfe], true).await;
    assert_eq!(ws.expect_close().await, 1007);
    wait_hub(&server.app.chat, "the client to leave", |h| {
        h.client_count() == 0
    })
    .await;
    assert_eq!(
        server
            .app
            .chat
            .stats()
            .disconnected(DisconnectReason::InvalidUtf8),
        1
    );
}

async fn unmasked_client_frame_is_closed_with_1002(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    ws.send(true, 0x1, b"hello", false).await;
    assert_eq!(ws.expect_close().await, 1002);
}

async fn control_frame_over_125_bytes_is_closed_with_1002(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    ws.send(true, 0x9, &[0u8; 126], true).await;
    assert_eq!(ws.expect_close().await, 1002);
}

async fn frame_length_of_2_pow_63_is_refused_at_once(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    // header only: FIN+binary, masked, 64-bit length 2^63-1, mask key; no payload follows
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    ws.send_bytes(&frame).await;
    let code = ws.expect_close().await;
    assert!(code == 1009 || code == 1002, "got {code}");
}

async fn replies_queued_before_a_protocol_error_still_go_out_ahead_of_the_close(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/echo").await;
    // a valid message and a frame with a reserved opcode, in one write: the server reads both
    // before it can answer the first
    let mut bytes = frame(true, 0x1, b"before the error", true);
    bytes.extend(frame(true, 0x3, b"reserved opcode", true));
    ws.send_bytes(&bytes).await;
    let echo = ws.recv().await.expect("the echo of the valid message");
    assert_eq!(
        (echo.opcode, echo.payload.as_slice()),
        (0x1, &b"before the error"[..])
    );
    assert_eq!(ws.expect_close().await, 1002);
}

async fn handshake_errors_get_their_status(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    // a plain GET on a WebSocket route
    let (status, head, _) = request(
        addr,
        &format!("GET /ws/chat HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 426, "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"));
    // POST
    let post = upgrade_head(addr, "/ws/chat", "").replacen("GET", "POST", 1);
    assert_eq!(request(addr, &post).await.0, 400);
    // wrong version
    let v8 = upgrade_head(addr, "/ws/chat", "").replace("Version: 13", "Version: 8");
    let (status, head, _) = request(addr, &v8).await;
    assert_eq!(status, 426);
    assert!(head
        .to_ascii_lowercase()
        .contains("sec-websocket-version: 13"));
    // bad key
    let bad = upgrade_head(addr, "/ws/chat", "").replace("Key: ", "Key: x");
    assert_eq!(request(addr, &bad).await.0, 400);
    // Connection without upgrade
    let conn =
        upgrade_head(addr, "/ws/chat", "").replace("Connection: Upgrade", "Connection: close");
    assert_eq!(request(addr, &conn).await.0, 400);
    assert_eq!(server.app.chat.stats().rejected_upgrades, 5);
    // and a good one still works
    RawWs::connect(addr, "/ws/chat").await;
}

async fn cross_origin_upgrade_is_refused_with_403_under_an_allow_list(adapter: Adapter) {
    let settings = Settings {
        allowed_origins: Some(vec!["https://example.com".into()]),
        ..Settings::default()
    };
    let server = Server::with(adapter, settings, |c| c).await;
    let addr = server.addr;
    for origin in [
        "null",
        "https://example.com.evil.com",
        "https://evil-example.com",
        "http://example.com",
        &format!("http://{addr}"),
    ] {
        let head = upgrade_head(addr, "/ws/chat", &format!("Origin: {origin}\r\n"));
        let (status, text, _) = request(addr, &head).await;
        assert_eq!(status, 403, "origin {origin}: {text}");
    }
    let head = upgrade_head(addr, "/ws/chat", "Origin: https://example.com\r\n");
    assert_eq!(request(addr, &head).await.0, 101);
    assert_eq!(server.app.chat.stats().rejected_upgrades, 5);
}

async fn default_policy_allows_all_origins_as_the_seed_documents(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let head = upgrade_head(
        server.addr,
        "/ws/chat",
        "Origin: https://anywhere.example\r\n",
    );
    assert_eq!(request(server.addr, &head).await.0, 101);
}

async fn silent_client_is_pinged_then_closed_after_the_pong_wait(adapter: Adapter) {
    let settings = Settings {
        ping_interval: std::time::Duration::from_millis(100),
        pong_wait: std::time::Duration::from_millis(300),
        ..Settings::default()
    };
    let server = Server::with(adapter, settings, |c| c).await;
    // A raw client that reads but never answers pings.
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    let first = hub_tests::guard("a ping", ws.recv()).await.unwrap();
    assert_eq!(first.opcode, 0x9, "expected a ping, got {first:?}");
    assert_eq!(ws.expect_close().await, 1001);
    ws.expect_eof().await;
    let hub = &server.app.chat;
    wait_hub(hub, "the client to leave", |h| h.client_count() == 0).await;
    assert_eq!(hub.stats().disconnected(DisconnectReason::PeerSilent), 1);
}

async fn client_that_answers_pings_stays_connected(adapter: Adapter) {
    let settings = Settings {
        ping_interval: std::time::Duration::from_millis(50),
        pong_wait: std::time::Duration::from_millis(150),
        ..Settings::default()
    };
    let server = Server::with(adapter, settings, |c| c).await;
    let mut ws = connect(&server.url("/ws/echo")).await;
    // tungstenite answers each ping; wait for ten of them (many pong waits long).
    let mut pings = 0;
    hub_tests::guard("ten pings", async {
        use futures_util::StreamExt;
        while pings < 10 {
            if let Some(Ok(Message::Ping(_))) = ws.next().await {
                pings += 1;
            }
        }
    })
    .await;
    hub_tests::send_text(&mut ws, "still here").await;
    assert_eq!(hub_tests::next_text(&mut ws).await, "still here");
    assert_eq!(
        server
            .app
            .echo
            .stats()
            .disconnected(DisconnectReason::PeerSilent),
        0
    );
}

async fn partial_request_then_silence_is_closed_at_the_handshake_timeout(adapter: Adapter) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = hub_core::Hub::new();
    // 1 s: actix measures its deadline on a clock it refreshes every 500 ms.
    let config = hub_tests::bare::BareConfig {
        handshake_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let addr = hub_tests::bare::serve_bare(adapter, &hub, config)
        .await
        .addr;
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgr")
        .await
        .unwrap();
    // The server must end the connection by itself (EOF or reset), at most with a 408.
    let mut buf = Vec::new();
    let _ = hub_tests::guard(
        "the server to drop the slow request",
        slow.read_to_end(&mut buf),
    )
    .await;
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected response: {text:?}"
    );
    // and a normal client still connects
    RawWs::connect(addr, "/ws").await;
}

/// Sends `head` while reading the answer: the server may answer and close before it has read
/// everything. Returns the status line, or `None` if the connection ended without one.
async fn status_of_flood(addr: std::net::SocketAddr, head: String) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        wr
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&buf).to_string();
    text.lines().next().map(str::to_string)
}

fn is_refused(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.starts_with("HTTP/1.1 431") || s.starts_with("HTTP/1.1 400"))
}

async fn header_floods_are_refused_fast_and_normal_clients_still_connect(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    let base = upgrade_head(addr, "/ws/chat", "");
    let bound = std::time::Duration::from_secs(1);

    let mut many = base.trim_end_matches("\r\n").to_string();
    for i in 0..2000 {
        many.push_str(&format!("\r\nx-flood-{i}: {i}"));
    }
    many.push_str("\r\n\r\n");
    let status = tokio::time::timeout(bound, status_of_flood(addr, many))
        .await
        .expect("2000 headers: no answer within 1 s");
    assert!(is_refused(status.as_deref()), "2000 headers: {status:?}");

    let mut huge = base.trim_end_matches("\r\n").to_string();
    huge.push_str(&format!("\r\nx-huge: {}\r\n\r\n", "a".repeat(1 << 20)));
    let status = tokio::time::timeout(bound, status_of_flood(addr, huge))
        .await
        .expect("1 MiB header: no answer within 1 s");
    assert!(is_refused(status.as_deref()), "1 MiB header: {status:?}");

    RawWs::connect(addr, "/ws/chat").await;
}

async fn five_hundred_slowloris_sockets_do_not_stop_a_normal_upgrade(adapter: Adapter) {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(adapter).await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /ws/chat HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    tokio::time::timeout(
        std::time::Duration::from_secs(1),
        RawWs::connect(server.addr, "/ws/chat"),
    )
    .await
    .expect("a normal client could not upgrade within 1 s behind 500 slowloris sockets");
    drop(idle);
}

hub_tests::conformance!(
    header_floods_are_refused_fast_and_normal_clients_still_connect,
    five_hundred_slowloris_sockets_do_not_stop_a_normal_upgrade,
    message_over_512_kib_is_closed_with_1009,
    fragmented_message_growing_past_the_limit_is_closed_with_1009,
    invalid_utf8_text_is_closed_with_1007,
    unmasked_client_frame_is_closed_with_1002,
    control_frame_over_125_bytes_is_closed_with_1002,
    frame_length_of_2_pow_63_is_refused_at_once,
    replies_queued_before_a_protocol_error_still_go_out_ahead_of_the_close,
    handshake_errors_get_their_status,
    cross_origin_upgrade_is_refused_with_403_under_an_allow_list,
    default_policy_allows_all_origins_as_the_seed_documents,
    silent_client_is_pinged_then_closed_after_the_pong_wait,
    client_that_answers_pings_stays_connected,
    partial_request_then_silence_is_closed_at_the_handshake_timeout,
);
