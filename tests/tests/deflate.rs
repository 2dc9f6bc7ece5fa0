//! permessage-deflate (RFC 7692) on every adapter, over real sockets, with a hand-written client
//! and flate2 as the independent compressor: negotiation, compressed echoes, one compressed
//! form per broadcast, plain frames for clients that did not offer it, and hostile input.
#![allow(clippy::unwrap_used)]

use hub_core::DisconnectReason;
use hub_tests::deflate::{bomb, compress as deflate, inflate};
use hub_tests::raw::{frame, header, request, upgrade_head, Frame, RawWs};
use hub_tests::{wait_hub, Adapter, Server};
use std::net::SocketAddr;

const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Upgrades on `path` offering permessage-deflate as Chromium does; returns the connection and
/// the 101's `Sec-WebSocket-Extensions`.
async fn connect_deflate(addr: SocketAddr, path: &str) -> (RawWs, Option<String>) {
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let (status, head, stream) = request(addr, &upgrade_head(addr, path, offer)).await;
    assert_eq!(status, 101, "upgrade refused: {head}");
    let agreed = header(&head, "sec-websocket-extensions").map(String::from);
    (RawWs { stream }, agreed)
}

/// The next data frame (pings and pongs skipped).
async fn next_data(ws: &mut RawWs) -> Frame {
    hub_tests::guard("a data frame", async {
        loop {
            let f = ws.recv().await.expect("connection ended");
            if f.opcode != 0x9 && f.opcode != 0xA {
                return f;
            }
        }
    })
    .await
}

async fn an_offer_is_agreed_and_an_echo_comes_back_compressed(adapter: Adapter) {
    let server = Server::start(adapter).await;
    for path in ["/ws/echo", "/ws/chat"] {
        let (_, agreed) = connect_deflate(server.addr, path).await;
        assert_eq!(agreed.as_deref(), Some(AGREED), "{path}");
    }
    let (mut ws, _) = connect_deflate(server.addr, "/ws/echo").await;
    let text = r#"{"type":"chat","text":"deflate deflate deflate deflate"}"#.repeat(30);
    let compressed = deflate(text.as_bytes());
    ws.send_bytes(&with_rsv1(frame(true, 0x1, &compressed, true)))
        .await;
    let echo = next_data(&mut ws).await;
    assert!(echo.rsv1, "the echo is compressed");
    assert_eq!(echo.opcode, 0x1);
    assert!(
        echo.payload.len() * 5 < text.len(),
        "{} bytes",
        echo.payload.len()
    );
    assert_eq!(inflate(&echo.payload, 15), text.as_bytes());
    // uncompressed messages are fine too (RSV1 is per message)
    ws.send(true, 0x2, &[7; 300], true).await;
    let echo = next_data(&mut ws).await;
    assert!(echo.rsv1);
    assert_eq!(inflate(&echo.payload, 15), vec![7; 300]);
}

fn with_rsv1(mut frame: Vec<u8>) -> Vec<u8> {
    frame[0] |= 0x40;
    frame
}

async fn a_broadcast_goes_compressed_to_deflate_clients_and_plain_to_the_rest(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let (mut a, _) = connect_deflate(server.addr, "/ws/chat").await;
    let (mut b, _) = connect_deflate(server.addr, "/ws/chat").await;
    let mut plain = RawWs::connect(server.addr, "/ws/chat").await;
    wait_hub(&server.app.chat, "three clients", |h| h.client_count() == 3).await;
    let text = r#"{"symbol":"ACME","price":101.25,"volume":1200}"#.repeat(20);
    plain.send(true, 0x1, text.as_bytes(), true).await;
    let (fa, fb, fp) = (
        next_data(&mut a).await,
        next_data(&mut b).await,
        next_data(&mut plain).await,
    );
    assert!(fa.rsv1 && fb.rsv1 && !fp.rsv1);
    assert_eq!(fa.payload, fb.payload, "the same compressed bytes for both");
    assert_eq!(inflate(&fa.payload, 15), text.as_bytes());
    assert_eq!(fp.payload, text.as_bytes());
    assert!(fa.payload.len() * 4 < text.len());
}

async fn a_deflate_bomb_is_closed_with_1009_and_the_client_counted(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let (mut ws, _) = connect_deflate(server.addr, "/ws/chat").await;
    // 100 MB of zeros: about 100 KB on the wire, far over the 512 KiB limit inflated
    let bomb = bomb();
    assert!(bomb.len() < 200 * 1024);
    ws.send_bytes(&with_rsv1(frame(true, 0x2, &bomb, true)))
        .await;
    assert_eq!(ws.expect_close().await, 1009);
    wait_hub(&server.app.chat, "the client to leave", |h| {
        h.stats().disconnected(DisconnectReason::TooBig) == 1
    })
    .await;
}

async fn corrupt_compressed_data_is_closed_with_1002(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let (mut ws, _) = connect_deflate(server.addr, "/ws/chat").await;
    ws.send_bytes(&with_rsv1(frame(true, 0x1, &[0xff; 40], true)))
        .await;
    assert_eq!(ws.expect_close().await, 1002);
}

async fn a_compressed_frame_without_the_extension_is_closed_with_1002(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let mut ws = RawWs::connect(server.addr, "/ws/chat").await;
    let compressed = deflate(b"hello hello hello");
    ws.send_bytes(&with_rsv1(frame(true, 0x1, &compressed, true)))
        .await;
    assert_eq!(ws.expect_close().await, 1002);
}

async fn an_offer_the_hub_cannot_keep_is_declined_not_refused(adapter: Adapter) {
    let server = Server::start(adapter).await;
    // a window of 256 bytes (zlib keeps 512 at least), then a parameter nobody knows
    for offer in [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; no_such_parameter",
    ] {
        let extra = format!("Sec-WebSocket-Extensions: {offer}\r\n");
        let (status, head, stream) =
            request(server.addr, &upgrade_head(server.addr, "/ws/echo", &extra)).await;
        assert_eq!(status, 101, "{offer}: {head}");
        assert_eq!(header(&head, "sec-websocket-extensions"), None, "{offer}");
        let mut ws = RawWs { stream };
        ws.send(true, 0x1, b"plain", true).await;
        let echo = next_data(&mut ws).await;
        assert!(!echo.rsv1);
        assert_eq!(echo.payload, b"plain");
    }
    // a smaller window the hub can keep: agreed, and the echo inflates within it
    let extra = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n";
    let (status, head, stream) =
        request(server.addr, &upgrade_head(server.addr, "/ws/echo", extra)).await;
    assert_eq!(status, 101);
    assert_eq!(
        header(&head, "sec-websocket-extensions"),
        Some(&*format!("{AGREED}; server_max_window_bits=9"))
    );
    let mut ws = RawWs { stream };
    let text = "abcdefghij".repeat(500);
    ws.send(true, 0x1, text.as_bytes(), true).await;
    let echo = next_data(&mut ws).await;
    assert!(echo.rsv1);
    let out = inflate(&echo.payload, 9);
    assert_eq!(out, text.as_bytes());
}

hub_tests::conformance!(
    an_offer_is_agreed_and_an_echo_comes_back_compressed,
    a_broadcast_goes_compressed_to_deflate_clients_and_plain_to_the_rest,
    a_deflate_bomb_is_closed_with_1009_and_the_client_counted,
    corrupt_compressed_data_is_closed_with_1002,
    a_compressed_frame_without_the_extension_is_closed_with_1002,
    an_offer_the_hub_cannot_keep_is_declined_not_refused,
);
