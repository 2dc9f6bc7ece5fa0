//! # hub-hyper
//!
//! The [`hub_core`] hub on hyper 1: [`upgrade`] turns a `Request` into a hub client, and
//! [`serve`] runs an HTTP/1 server whose connections have a handshake timeout (so slowloris
//! clients are dropped) and upgrades enabled.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hub_core::Hub;
//! use hyper::{body::Incoming, Request, Response};
//!
//! # #[allow(dead_code)]
//! # async fn demo() -> std::io::Result<()> {
//! let chat = Hub::new();
//! chat.on_message(|hub, msg| {
//!     hub.broadcast(msg.message);
//! });
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let service = move |req: Request<Incoming>| {
//!     let chat = chat.clone();
//!     async move {
//!         Ok::<_, std::convert::Infallible>(match req.uri().path() {
//!             "/ws/chat" => hub_hyper::upgrade(req, &chat),
//!             _ => Response::new(Full::new(Bytes::from_static(b"hello"))),
//!         })
//!     }
//! };
//! hub_hyper::serve(listener, service, std::future::pending()).await;
//! # Ok(())
//! # }
//! ```
//!
//! [`upgrade`] is generic over the request body, so an axum handler can call it too.
#![doc(test(attr(deny(warnings))))]

mod server;

pub use hub_tokio::WsConfig;
pub use server::{http1_builder, serve, serve_with, HANDSHAKE_TIMEOUT};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hub_core::{Hub, RequestHead};
use hyper_util::rt::TokioIo;
use std::any::Any;

/// A [`RequestHead`] over an `http` 1 request.
#[derive(Debug)]
pub struct HttpHead<'a, B>(pub &'a Request<B>);

impl<B> RequestHead for HttpHead<'_, B> {
    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        Box::new(
            self.0
                .headers()
                .get_all(name)
                .into_iter()
                .map(HeaderValue::as_bytes),
        )
    }
}

/// Upgrades `req` into a client of `hub` with no metadata and the default buffer tuning.
/// See [`upgrade_with`].
pub fn upgrade<B>(req: Request<B>, hub: &Hub) -> Response<Full<Bytes>> {
    upgrade_with(req, hub, None, WsConfig::default())
}

/// Upgrades `req` into a client of `hub`.
///
/// Validates the method, `Upgrade`, `Connection`, `Sec-WebSocket-Version`, the key, the hub's
/// origin policy and its state, then answers `101 Switching Protocols` and spawns the client's
/// driver on tokio once hyper hands over the connection. Otherwise the response is 400, 403,
/// 426 or 503 with a short plain-text body, and nothing is spawned.
///
/// `data` is attached to the client (read it with [`Client::data`](hub_core::Client::data)),
/// e.g. the authenticated user taken from the request.
///
/// The server connection must have upgrades enabled (hyper's `serve_connection(..)
/// .with_upgrades()`; [`serve`] does it).
pub fn upgrade_with<B>(
    mut req: Request<B>,
    hub: &Hub,
    data: Option<Box<dyn Any + Send + Sync>>,
    config: WsConfig,
) -> Response<Full<Bytes>> {
    let accept = match hub.accept(&HttpHead(&req)) {
        Ok(accept) => accept,
        Err(rejection) => {
            let mut response =
                Response::new(Full::new(Bytes::from_static(rejection.body().as_bytes())));
            *response.status_mut() =
                StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            for (name, value) in rejection.headers() {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            return response;
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let hub = hub.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                hub_tokio::serve(hub, TokioIo::new(upgraded), data, config).await;
            }
            Err(error) => tracing::debug!(%error, "upgrade did not complete"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    for (name, value) in accept.headers() {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
