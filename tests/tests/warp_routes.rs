//! hub-warp's WebSocket filter composes like `warp::ws()`: a request on its path that asks for
//! no upgrade is rejected, so another route on the same path answers it; with
//! `hub_warp::recover` and no such route it gets the hub's 426, as on every adapter.
#![allow(clippy::unwrap_used)]

use hub_core::Hub;
use hub_tests::raw::{request, upgrade_head};
use std::net::SocketAddr;
use warp::Filter;

async fn serve<F>(routes: F) -> SocketAddr
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hub_warp::serve(listener, routes, std::future::pending()));
    addr
}

fn get(addr: SocketAddr, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")
}

#[tokio::test]
async fn a_plain_get_on_the_websocket_path_reaches_the_next_route() {
    let hub = Hub::new();
    let page = warp::path!("live").map(|| "the live page");
    let routes = warp::path!("live").and(hub_warp::ws(hub.clone())).or(page);
    let addr = serve(routes).await;

    let (status, head, _stream) = request(addr, &get(addr, "/live")).await;
    assert_eq!(status, 200, "{head}");
    // nobody tried to upgrade, so nothing was refused
    assert_eq!(hub.stats().rejected_upgrades, 0);
    // an upgrade on the same path still upgrades
    let (status, head, _ws) = request(addr, &upgrade_head(addr, "/live", "")).await;
    assert_eq!(status, 101, "{head}");
}

#[tokio::test]
async fn without_another_route_recover_gives_the_hubs_426() {
    let hub = Hub::new();
    let routes = warp::path!("live")
        .and(hub_warp::ws(hub.clone()))
        .recover(hub_warp::recover);
    let addr = serve(routes).await;

    let (status, head, _stream) = request(addr, &get(addr, "/live")).await;
    assert_eq!(status, 426, "{head}");
    assert_eq!(hub.stats().rejected_upgrades, 1);
    // an upgrade attempt the hub refuses is answered, not passed on
    let bad = upgrade_head(addr, "/live", "")
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let (status, head, _stream) = request(addr, &bad).await;
    assert_eq!(status, 426, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{head}"
    );
}
