//! The application's authorization step at the upgrade and the subscription, on every adapter
//! (actix on both paths): admitted clients carry its data and the subprotocol it picked,
//! refusals are answered with their status and headers before any upgrade and counted, a
//! subprotocol the client did not offer is a 500 and never a 101, hostile subprotocol headers
//! never reach the step.
#![allow(clippy::unwrap_used)]

use hub_core::{Hub, HubConfig, Rejection};
use hub_tests::authed::{serve_authed, Authed, TestAuth};
use hub_tests::raw::{header, read_until, request, upgrade_head};
use hub_tests::sse::SseClient;
use hub_tests::{guard, next_text, wait_hub, Adapter};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Response;
use tokio_tungstenite::MaybeTlsStream;

/// Connects offering `protocols`; returns the socket, the 101 and the client's local address.
async fn connect_offering(
    addr: SocketAddr,
    protocols: &str,
) -> (hub_tests::Ws, Response<Option<Vec<u8>>>, SocketAddr) {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (ws, response) = guard("connect", tokio_tungstenite::connect_async(req))
        .await
        .unwrap();
    let local = match ws.get_ref() {
        MaybeTlsStream::Plain(stream) => stream.local_addr().unwrap(),
        _ => unreachable!("plain TCP"),
    };
    (ws, response, local)
}

fn data_of(hub: &Hub) -> Vec<Authed> {
    let mut all: Vec<Authed> = hub
        .clients()
        .iter()
        .map(|c| c.data::<Authed>().expect("the step's data").clone())
        .collect();
    all.sort_by_key(|a| a.peer);
    all
}

async fn a_good_token_upgrades_with_bearer_echoed_and_the_steps_data(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    let (mut ws, response, local) = connect_offering(addr, "bearer, good").await;
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "bearer");
    wait_hub(&hub, "the client", |h| h.client_count() == 1).await;
    let expected = Authed {
        token: "good".into(),
        path: "/ws".into(),
        peer: Some(local),
    };
    assert_eq!(data_of(&hub), [expected]);
    hub.broadcast("hello");
    assert_eq!(next_text(&mut ws).await, "hello");
    assert_eq!(auth.calls(), 1);
    assert_eq!(hub.stats().rejected_upgrades, 0);
}

async fn a_bad_or_missing_token_gets_401_before_any_upgrade(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    for extra in ["Sec-WebSocket-Protocol: bearer, wrong\r\n", ""] {
        let (status, head, _stream) = request(addr, &upgrade_head(addr, "/ws", extra)).await;
        assert_eq!(status, 401, "{head}");
        assert_eq!(header(&head, "www-authenticate"), Some("Bearer"), "{head}");
        assert_eq!(header(&head, "sec-websocket-accept"), None, "{head}");
    }
    assert_eq!(auth.calls(), 2);
    assert_eq!(hub.stats().rejected(Rejection::Refused), 2);
    assert_eq!(hub.client_count(), 0);
}

async fn a_subprotocol_the_client_did_not_offer_is_a_500_never_a_101(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    let extra = "Sec-WebSocket-Protocol: bearer, unoffered\r\n";
    let (status, head, _stream) = request(addr, &upgrade_head(addr, "/ws", extra)).await;
    assert_eq!(status, 500, "{head}");
    assert_eq!(header(&head, "sec-websocket-protocol"), None, "{head}");
    assert_eq!(hub.stats().rejected(Rejection::UnofferedProtocol), 1);
    assert_eq!(hub.client_count(), 0);
}

async fn hostile_subprotocol_headers_get_431_and_never_reach_the_step(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    let many = vec!["p"; 1000].join(", ");
    let extra = format!("Sec-WebSocket-Protocol: bearer, good, {many}\r\n");
    let (status, head, _stream) = request(addr, &upgrade_head(addr, "/ws", &extra)).await;
    assert_eq!(status, 431, "{head}");
    assert_eq!(hub.stats().rejected(Rejection::ProtocolsTooLarge), 1);
    // 64 KiB in one value: refused by the server's header limit or by the hub, never parsed
    let long = "x".repeat(64 * 1024);
    let extra = format!("Sec-WebSocket-Protocol: bearer, good, {long}\r\n");
    let (status, head, _stream) = request(addr, &upgrade_head(addr, "/ws", &extra)).await;
    assert_eq!(status, 431, "{head}");
    assert_eq!(auth.calls(), 0);
    assert_eq!(hub.client_count(), 0);
}

async fn sse_is_admitted_with_the_header_or_the_query_token(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    let accept = ("accept", "text/event-stream");
    let mut by_header =
        SseClient::get(addr, "/sse", &[accept, ("authorization", "Bearer good")]).await;
    let mut by_query = SseClient::get(addr, "/sse?token=good", &[accept]).await;
    assert_eq!((by_header.status, by_query.status), (200, 200));
    wait_hub(&hub, "both subscribers", |h| h.client_count() == 2).await;
    for data in data_of(&hub) {
        assert_eq!((data.token.as_str(), data.path.as_str()), ("good", "/sse"));
        assert!(data.peer.is_some_and(|p| p.ip().is_loopback()), "{data:?}");
    }
    hub.broadcast("hi");
    assert_eq!(by_header.next().await.data, "hi");
    assert_eq!(by_query.next().await.data, "hi");

    for headers in [vec![accept], vec![accept, ("authorization", "Bearer nope")]] {
        let refused = SseClient::get(addr, "/sse?token=nope", &headers).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.headers["www-authenticate"], "Bearer");
    }
    assert_eq!(hub.stats().rejected(Rejection::Refused), 2);
    // an event stream offers no subprotocol: picking one is the application's error
    let wrong = SseClient::get(addr, "/sse?token=unoffered", &[accept]).await;
    assert_eq!(wrong.status, 500);
    assert_eq!(hub.stats().rejected(Rejection::UnofferedProtocol), 1);
    assert_eq!(hub.client_count(), 2);
}

async fn a_pending_lookup_holds_back_no_one_else(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    let slow = tokio::spawn(async move { connect_offering(addr, "bearer, slow").await });
    // the slow client's lookup is under way ...
    guard("the slow lookup", auth.entered.acquire())
        .await
        .unwrap()
        .forget();
    // ... and another client gets in meanwhile
    let (_fast, response, _) = connect_offering(addr, "bearer, good").await;
    assert_eq!(response.status(), 101);
    wait_hub(&hub, "the fast client", |h| h.client_count() == 1).await;
    assert!(!slow.is_finished(), "the slow client waits for its lookup");
    auth.gate.add_permits(1);
    let (_slow, response, _) = guard("the slow client", slow).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "bearer");
    wait_hub(&hub, "both clients", |h| h.client_count() == 2).await;
    let tokens: Vec<String> = data_of(&hub).into_iter().map(|d| d.token).collect();
    assert!(tokens.contains(&"slow".to_string()) && tokens.contains(&"good".to_string()));
}

async fn a_refusal_whose_status_is_no_refusal_is_answered_403_never_an_upgrade(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    let extra = "Sec-WebSocket-Protocol: bearer, informational\r\n";
    let (status, head, _stream) = request(addr, &upgrade_head(addr, "/ws", extra)).await;
    assert_eq!(status, 403, "{head}");
    assert_eq!(header(&head, "sec-websocket-accept"), None, "{head}");
    let accept = ("accept", "text/event-stream");
    let refused = SseClient::get(addr, "/sse?token=informational", &[accept]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(hub.stats().rejected(Rejection::Refused), 2);
    assert_eq!(hub.client_count(), 0);
}

async fn a_browser_behind_basic_auth_gets_in_with_its_subprotocol_token(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    // what a browser sends by itself to a site behind HTTP authentication
    let extra = "Authorization: Basic dXNlcjpwYXNz\r\nSec-WebSocket-Protocol: bearer, good\r\n";
    let (status, head, _stream) = request(addr, &upgrade_head(addr, "/ws", extra)).await;
    assert_eq!(status, 101, "{head}");
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        Some("bearer"),
        "{head}"
    );
    wait_hub(&hub, "the client", |h| h.client_count() == 1).await;
    assert_eq!(hub.stats().rejected_upgrades, 0);
}

async fn the_connection_limit_reached_during_a_lookup_is_answered_503_not_an_upgrade(
    adapter: Adapter,
) {
    let hub = Hub::with_config(HubConfig::default().max_connections(1)).unwrap();
    let auth = TestAuth::default();
    let addr = serve_authed(adapter, &hub, &auth).await;
    let slow = tokio::spawn(async move {
        let extra = "Sec-WebSocket-Protocol: bearer, slow\r\n";
        request(addr, &upgrade_head(addr, "/ws", extra)).await
    });
    // the slow client's lookup is under way when another client takes the last place
    guard("the slow lookup", auth.entered.acquire())
        .await
        .unwrap()
        .forget();
    let (_fast, response, _) = connect_offering(addr, "bearer, good").await;
    assert_eq!(response.status(), 101);
    wait_hub(&hub, "the fast client", |h| h.client_count() == 1).await;
    auth.gate.add_permits(1);
    let (status, head, _stream) = guard("the slow client", slow).await.unwrap();
    assert_eq!(status, 503, "{head}");
    assert!(header(&head, "retry-after").is_some(), "{head}");
    assert_eq!(hub.stats().rejected(Rejection::TooManyConnections), 1);
    assert_eq!(hub.stats().connections_total, 1);
    assert_eq!(hub.client_count(), 1);
}

async fn a_refusal_keeps_its_own_content_type_and_is_framed_by_the_server(adapter: Adapter) {
    let (hub, auth) = (Hub::new(), TestAuth::default());
    let addr = serve_authed(adapter, &hub, &auth).await;
    let body = r#"{"error":"bad token"}"#;
    let extra = "Sec-WebSocket-Protocol: bearer, json\r\n";
    let (status, head, mut stream) = request(addr, &upgrade_head(addr, "/ws", extra)).await;
    assert_eq!(status, 401, "{head}");
    let all = |name: &str| -> Vec<String> {
        head.lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    assert_eq!(all("content-type"), ["application/json"], "{head}");
    assert_eq!(all("content-length"), [body.len().to_string()], "{head}");
    let got = read_until(&mut stream, |b| b.len() >= body.len()).await;
    assert_eq!(String::from_utf8_lossy(&got), body);
    // the event stream's refusal alike
    let accept = ("accept", "text/event-stream");
    let refused = SseClient::get(addr, "/sse?token=json", &[accept]).await;
    assert_eq!(refused.status, 401);
    let types: Vec<_> = refused.headers.get_all("content-type").iter().collect();
    assert_eq!(types, ["application/json"]);
    assert_eq!(hub.stats().rejected(Rejection::Refused), 2);
}

hub_tests::conformance!(
    a_good_token_upgrades_with_bearer_echoed_and_the_steps_data,
    a_bad_or_missing_token_gets_401_before_any_upgrade,
    a_subprotocol_the_client_did_not_offer_is_a_500_never_a_101,
    hostile_subprotocol_headers_get_431_and_never_reach_the_step,
    sse_is_admitted_with_the_header_or_the_query_token,
    a_pending_lookup_holds_back_no_one_else,
    a_refusal_whose_status_is_no_refusal_is_answered_403_never_an_upgrade,
    a_browser_behind_basic_auth_gets_in_with_its_subprotocol_token,
    the_connection_limit_reached_during_a_lookup_is_answered_503_not_an_upgrade,
    a_refusal_keeps_its_own_content_type_and_is_framed_by_the_server,
);
