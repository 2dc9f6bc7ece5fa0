//! The examples' `AUTH_TOKEN` contract, on every framework (actix on both paths): the
//! protected routes require the token before any upgrade, in each form a client can send it.
#![allow(clippy::unwrap_used)]

use hub_core::Rejection;
use hub_tests::raw::{header, request, upgrade_head};
use hub_tests::sse::SseClient;
use hub_tests::{guard, next_text, send_text, wait_hub, Adapter, Server, Settings};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TOKEN: &str = "t0k-3n_";

async fn start(adapter: Adapter) -> Server {
    let settings = Settings::from_lookup(|name| (name == "AUTH_TOKEN").then(|| TOKEN.into()));
    Server::with(adapter, settings.unwrap(), |c| c).await
}

async fn websocket_routes_take_the_token_as_subprotocols(adapter: Adapter) {
    let server = start(adapter).await;
    for path in ["/ws/chat", "/ws/echo"] {
        let mut req = server.url(path).into_client_request().unwrap();
        let offered = format!("bearer, {TOKEN}").parse().unwrap();
        req.headers_mut().insert("sec-websocket-protocol", offered);
        let (mut ws, response) = guard("connect", tokio_tungstenite::connect_async(req))
            .await
            .unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "bearer");
        send_text(&mut ws, "ping").await;
        assert_eq!(next_text(&mut ws).await, "ping", "{path}");
    }
    // the keyword in another case is found, and answered as the client spelled it (a
    // client fails a 101 that selects none of its values)
    let capital = format!("Sec-WebSocket-Protocol: Bearer, {TOKEN}\r\n");
    let (status, head, _stream) = request(
        server.addr,
        &upgrade_head(server.addr, "/ws/echo", &capital),
    )
    .await;
    assert_eq!(status, 101, "{head}");
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        Some("Bearer"),
        "{head}"
    );
    let wrong = "Sec-WebSocket-Protocol: bearer, t0k-3n\r\n";
    for (path, extra) in [("/ws/chat", wrong), ("/ws/echo", wrong), ("/ws/chat", "")] {
        let head = upgrade_head(server.addr, path, extra);
        let (status, head, _stream) = request(server.addr, &head).await;
        assert_eq!(status, 401, "{path}: {head}");
        assert_eq!(header(&head, "www-authenticate"), Some("Bearer"));
    }
    assert_eq!(server.app.chat.stats().rejected(Rejection::Refused), 2);
    assert_eq!(server.app.echo.stats().rejected(Rejection::Refused), 1);
    server.stop().await;
}

async fn the_chat_stream_takes_the_header_or_the_query(adapter: Adapter) {
    let server = start(adapter).await;
    let accept = ("accept", "text/event-stream");
    let bearer = format!("Bearer {TOKEN}");
    let mut by_header = SseClient::get(
        server.addr,
        "/events/chat",
        &[accept, ("authorization", &bearer)],
    )
    .await;
    let query = format!("/events/chat?room=lobby&token={TOKEN}");
    let mut by_query = SseClient::get(server.addr, &query, &[accept]).await;
    assert_eq!((by_header.status, by_query.status), (200, 200));
    let hub = &server.app.chat;
    wait_hub(hub, "both subscribers", |h| h.client_count() == 2).await;
    hub.broadcast("hello");
    assert_eq!(by_header.next().await.data, "hello");
    assert_eq!(by_query.next().await.data, "hello");
    for path in ["/events/chat", "/events/chat?token=nope"] {
        let refused = SseClient::get(server.addr, path, &[accept]).await;
        assert_eq!(refused.status, 401, "{path}");
        assert_eq!(refused.headers["www-authenticate"], "Bearer");
    }
    assert_eq!(hub.stats().rejected(Rejection::Refused), 2);
    // the unprotected routes stay open
    let mut feed = SseClient::get(server.addr, "/events/feed", &[accept]).await;
    assert_eq!(feed.status, 200);
    assert_eq!(feed.next().await.event, "tick");
    drop((by_header, by_query, feed));
    server.stop().await;
}

#[test]
fn an_empty_auth_token_means_no_authentication() {
    let read = |value: &'static str| {
        Settings::from_lookup(|name| (name == "AUTH_TOKEN").then(|| value.into()))
            .unwrap()
            .auth_token
    };
    assert_eq!(read(""), None);
    assert_eq!(read("s3cret").as_deref(), Some("s3cret"));
    assert_eq!(Settings::from_lookup(|_| None).unwrap().auth_token, None);
}

hub_tests::conformance!(
    websocket_routes_take_the_token_as_subprotocols,
    the_chat_stream_takes_the_header_or_the_query,
);
