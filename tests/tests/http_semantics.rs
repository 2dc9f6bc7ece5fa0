//! One request, one answer on every framework: the HTTP rules around an upgrade or an event
//! stream (HTTP version, `Host`, the header count, `Upgrade` forms, request bodies, close-
//! delimited streams, content negotiation, origins, pipelining), sent as raw bytes over TCP so
//! no client library smooths them over.
#![allow(clippy::unwrap_used)]

use hub_tests::raw::{frame, header, read_head, read_until, request, upgrade_head, RawWs};
use hub_tests::sse::SseClient;
use hub_tests::{wait_hub, Adapter, Server, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Refusals the hub saw, and clients it ever registered, on the chat hub.
fn chat_counts(server: &Server) -> (u64, u64) {
    let stats = server.app.chat.stats();
    (stats.rejected_upgrades, stats.connections_total)
}

/// Forms hyper and warp could serve but actix-http cannot (it takes only `Upgrade: websocket`
/// alone as a WebSocket upgrade, and a body turns the rest of the connection into that body):
/// every adapter refuses them with 400, counted, and nobody joins.
async fn upgrades_not_every_adapter_can_serve_are_refused_with_400(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    let base = upgrade_head(addr, "/ws/chat", "");
    let cases = [
        base.replace("Upgrade: websocket", "Upgrade: h2c, websocket"),
        base.replace("Upgrade: websocket", "Upgrade: websocket, foo/1"),
        upgrade_head(addr, "/ws/chat", "Transfer-Encoding: chunked\r\n")
            + "5\r\nhello\r\n0\r\n\r\n",
        upgrade_head(addr, "/ws/chat", "Content-Length: 5\r\n") + "hello",
    ];
    for (i, case) in cases.iter().enumerate() {
        let (status, head, _) = request(addr, case).await;
        assert_eq!(status, 400, "case {i}: {head}");
        assert_eq!(chat_counts(&server), (i as u64 + 1, 0), "case {i}");
    }
    // `Upgrade: websocket` alone, on a line of its own next to another, still works
    let two_lines = upgrade_head(addr, "/ws/chat", "Upgrade: foo/1\r\n");
    assert_eq!(request(addr, &two_lines).await.0, 101);
    let empty_body = upgrade_head(addr, "/ws/chat", "Content-Length: 0\r\n");
    assert_eq!(request(addr, &empty_body).await.0, 101);
    wait_hub(&server.app.chat, "both clients to join", |h| {
        h.stats().connections_total == 2
    })
    .await;
}

/// RFC 6455 §4.1: the upgrade is an HTTP/1.1 request. An HTTP/1.0 one gets 400 everywhere,
/// counted, and never a 101.
async fn http_1_0_upgrade_is_refused_with_400_and_counted(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    let head = upgrade_head(addr, "/ws/chat", "").replacen("HTTP/1.1", "HTTP/1.0", 1);
    let (status, text, _) = request(addr, &head).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(chat_counts(&server), (1, 0));
    // the same upgrade over HTTP/1.1 is fine
    RawWs::connect(addr, "/ws/chat").await;
}

/// RFC 7230 §5.4: an HTTP/1.1 request without `Host`, or any request with two, is a 400.
async fn missing_or_duplicated_host_is_400_everywhere(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    let host = format!("Host: {addr}\r\n");
    let upgrade = upgrade_head(addr, "/ws/chat", "");
    let cases = [
        upgrade.replace(&host, ""),
        upgrade_head(addr, "/ws/chat", &host),
        "GET / HTTP/1.1\r\n\r\n".to_string(),
        format!("GET / HTTP/1.1\r\n{host}{host}\r\n"),
        format!("GET /events/chat HTTP/1.1\r\n{host}{host}Accept: text/event-stream\r\n\r\n"),
    ];
    for (i, case) in cases.iter().enumerate() {
        let (status, head, _) = request(addr, case).await;
        assert_eq!(status, 400, "case {i}: {head}");
    }
    assert_eq!(server.app.chat.stats().connections_total, 0);
    assert_eq!(server.app.chat.client_count(), 0);
    // HTTP/1.0 does not require Host
    let (status, head, _) = request(addr, "GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200, "{head}");
}

/// `head` with `n` more header lines before its blank line.
fn with_extra_headers(head: &str, n: usize) -> String {
    let mut out = head.trim_end_matches("\r\n").to_string();
    for i in 0..n {
        out.push_str(&format!("\r\nx-extra-{i}: {i}"));
    }
    out.push_str("\r\n\r\n");
    out
}

/// The same header limit on every adapter: 96 header lines pass, 97 get 431.
async fn header_count_limit_is_96_everywhere(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    let page = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n"); // 1 header
    let upgrade = upgrade_head(addr, "/ws/chat", ""); // 5 headers
    for (head, own, ok) in [(&page, 1, 200), (&upgrade, 5, 101)] {
        let (status, text, _) = request(addr, &with_extra_headers(head, 96 - own)).await;
        assert_eq!(status, ok, "96 headers: {text}");
        let (status, text, _) = request(addr, &with_extra_headers(head, 97 - own)).await;
        assert_eq!(status, 431, "97 headers: {text}");
    }
}

/// Reads a close-delimited body up to `needle`, then checks it is plain event-stream text
/// (`sse-core` writes LF only: a CR LF can only be chunked framing).
async fn read_events_until(stream: &mut tokio::net::TcpStream, needle: &str) -> String {
    let body = read_until(stream, |b| {
        String::from_utf8_lossy(b).contains(needle) || b.len() > 64 * 1024
    })
    .await;
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains(needle), "no {needle:?} in {body:?}");
    assert!(
        !body.contains('\r'),
        "chunk framing in the stream: {body:?}"
    );
    body
}

/// An HTTP/1.0 client cannot decode chunked transfer coding: its event stream is
/// close-delimited on every adapter, and ends with the connection.
async fn event_stream_to_an_http_1_0_client_is_close_delimited(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    for connection in ["", "Connection: keep-alive\r\n"] {
        let get = format!(
            "GET /events/feed HTTP/1.0\r\nHost: {addr}\r\n{connection}Accept: text/event-stream\r\n\r\n"
        );
        let (status, head, mut stream) = request(addr, &get).await;
        assert_eq!(status, 200, "{head}");
        assert_eq!(header(&head, "transfer-encoding"), None, "{head}");
        assert_eq!(header(&head, "content-length"), None, "{head}");
        read_events_until(&mut stream, "event: tick\ndata: {").await;
    }
    // a subscription, to its end: the stream ends by closing the connection
    let get =
        format!("GET /events/chat HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    let (status, head, mut stream) = request(addr, &get).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "transfer-encoding"), None, "{head}");
    let chat = &server.app.chat;
    wait_hub(chat, "the subscriber to join", |h| h.client_count() == 1).await;
    chat.broadcast("hello");
    read_events_until(&mut stream, "data: hello\n\n").await;
    chat.shutdown();
    let rest = read_until(&mut stream, |_| false).await;
    assert!(
        !rest.contains(&b'\r'),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// q=0 means "not acceptable" (RFC 9110 §12.4.2), and the most specific range decides.
async fn event_stream_refused_with_q_0_is_406_despite_a_wildcard(adapter: Adapter) {
    let server = Server::start(adapter).await;
    for path in ["/events/feed", "/events/chat"] {
        for accept in [
            "text/event-stream;q=0, */*",
            "*/*, text/event-stream; q=0",
            "text/event-stream;q=0.0, text/*",
            "text/event-stream;Q=0",
        ] {
            let client = SseClient::get(server.addr, path, &[("accept", accept)]).await;
            assert_eq!(client.status, 406, "{path} {accept}");
        }
        for accept in [
            "text/*;q=0, text/event-stream",
            "*/*;q=0, text/event-stream;q=0.5",
        ] {
            let client = SseClient::get(server.addr, path, &[("accept", accept)]).await;
            assert_eq!(client.status, 200, "{path} {accept}");
        }
    }
}

/// An allow-list entry written with its scheme's default port matches the origin a browser
/// sends (which never carries the default port), as the same-origin policy already does.
async fn allow_listed_origin_with_its_default_port_matches_the_browser_origin(adapter: Adapter) {
    let settings = Settings {
        allowed_origins: Some(vec![
            "https://example.com:443".into(),
            "http://localhost:80".into(),
        ]),
        ..Settings::default()
    };
    let server = Server::with(adapter, settings, |c| c).await;
    let addr = server.addr;
    for (origin, status) in [
        ("https://example.com", 101),
        ("https://EXAMPLE.com:443", 101),
        ("http://localhost", 101),
        ("https://example.com:8443", 403),
        ("http://example.com", 403),
        ("https://localhost", 403),
    ] {
        let head = upgrade_head(addr, "/ws/chat", &format!("Origin: {origin}\r\n"));
        let (got, text, _) = request(addr, &head).await;
        assert_eq!(got, status, "{origin}: {text}");
    }
}

/// A request pipelined ahead of an upgrade on the same connection gets its whole response
/// before the 101, and the WebSocket works after it.
async fn a_request_pipelined_before_an_upgrade_is_answered_first(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let both = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n{}",
        upgrade_head(addr, "/ws/echo", "")
    );
    stream.write_all(both.as_bytes()).await.unwrap();
    let (status, head) = read_head(&mut stream).await;
    assert_eq!(status, 200, "{head}");
    let len: usize = header(&head, "content-length").unwrap().parse().unwrap();
    let mut body = vec![0u8; len];
    hub_tests::guard("the page", stream.read_exact(&mut body))
        .await
        .unwrap();
    let (status, head) = read_head(&mut stream).await;
    assert_eq!(status, 101, "{head}");
    let mut ws = RawWs { stream };
    ws.send_bytes(&frame(true, 0x1, b"after the page", true))
        .await;
    let echo = hub_tests::guard("the echo", ws.recv()).await.unwrap();
    assert_eq!(echo.payload, b"after the page");
}

/// An upgrade request to a route that is no WebSocket is answered as the same request without
/// the upgrade (RFC 9110 §7.8: a server may ignore `Upgrade`): the page, the event streams
/// (or their 406) and the 404, with the same status and content type on every adapter. Each
/// case also says it plainly, so the expectation is checked against the adapter itself.
async fn an_upgrade_to_a_route_that_is_no_websocket_is_answered_as_a_plain_request(
    adapter: Adapter,
) {
    let server = Server::start(adapter).await;
    let addr = server.addr;
    let sse = "Accept: text/event-stream\r\n";
    let html = "Accept: text/html\r\n";
    let cases = [
        ("/", "", 200, "text/html; charset=utf-8"),
        ("/events/chat", sse, 200, "text/event-stream"),
        ("/events/chat", html, 406, "text/plain; charset=utf-8"),
        ("/events/feed", sse, 200, "text/event-stream"),
        ("/events/feed", html, 406, "text/plain; charset=utf-8"),
        ("/no/such/page", "", 404, "text/plain; charset=utf-8"),
    ];
    for (path, extra, status, content_type) in cases {
        let plain = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n");
        for (what, head) in [
            ("plain", plain),
            ("upgrade", upgrade_head(addr, path, extra)),
        ] {
            let (got, text, _) = request(addr, &head).await;
            assert_eq!(got, status, "{what} {path} {extra:?}: {text}");
            let got_type = header(&text, "content-type").map(str::to_ascii_lowercase);
            assert_eq!(
                got_type.as_deref(),
                Some(content_type),
                "{what} {path} {extra:?}: {text}"
            );
        }
    }
    // no upgrade refused: the only refusals are the chat stream's two 406s (plain and with
    // the upgrade headers), counted as every refused subscription is
    let stats = server.app.chat.stats();
    assert_eq!(stats.rejected(hub_core::Rejection::NotAcceptable), 2);
    assert_eq!(stats.rejected_upgrades, 2);
    // the event stream asked for with the upgrade headers streams, and ends with its client
    let chat = &server.app.chat;
    wait_hub(chat, "the streams above to end", |h| h.client_count() == 0).await;
    let (status, text, mut stream) = request(addr, &upgrade_head(addr, "/events/chat", sse)).await;
    assert_eq!(status, 200, "{text}");
    wait_hub(chat, "the subscriber to join", |h| h.client_count() == 1).await;
    chat.broadcast("through");
    let body = read_until(&mut stream, |b| {
        String::from_utf8_lossy(b).contains("data: through\n\n")
    })
    .await;
    assert!(
        String::from_utf8_lossy(&body).contains("data: through\n\n"),
        "{body:?}"
    );
    drop(stream);
    wait_hub(chat, "the subscriber to leave", |h| h.client_count() == 0).await;
}

hub_tests::conformance!(
    upgrades_not_every_adapter_can_serve_are_refused_with_400,
    http_1_0_upgrade_is_refused_with_400_and_counted,
    missing_or_duplicated_host_is_400_everywhere,
    header_count_limit_is_96_everywhere,
    event_stream_to_an_http_1_0_client_is_close_delimited,
    event_stream_refused_with_q_0_is_406_despite_a_wildcard,
    allow_listed_origin_with_its_default_port_matches_the_browser_origin,
    a_request_pipelined_before_an_upgrade_is_answered_first,
    an_upgrade_to_a_route_that_is_no_websocket_is_answered_as_a_plain_request,
);
