#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

mod server;
pub mod sse;

pub use hub_tokio::WsConfig;
pub use server::{http1_builder, serve, serve_with, HANDSHAKE_TIMEOUT, MAX_HEADERS};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_core::handshake::HttpVersion;
use hub_core::{ConnectOptions, Hub, Rejection, RequestHead};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

/// The response body of every function here: a short fixed body, or an event stream.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A [`RequestHead`] over an `http` 1 request.
#[derive(Debug)]
pub struct HttpHead<'a, B>(pub &'a Request<B>);

/// An `http` crate version as the hub's [`HttpVersion`].
pub fn http_version(version: http::Version) -> HttpVersion {
    match version {
        http::Version::HTTP_09 => HttpVersion::Http09,
        http::Version::HTTP_10 => HttpVersion::Http10,
        http::Version::HTTP_2 => HttpVersion::H2,
        http::Version::HTTP_3 => HttpVersion::H3,
        _ => HttpVersion::Http11,
    }
}

impl<B> RequestHead for HttpHead<'_, B> {
    fn version(&self) -> HttpVersion {
        http_version(self.0.version())
    }

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

/// The client's resume point: the `Last-Event-ID` header (what `EventSource` sends when it
/// reconnects), else the `last_event_id` query parameter (for WebSocket clients, which cannot
/// set headers).
pub fn last_event_id<B>(req: &Request<B>) -> Option<u64> {
    if let Some(id) = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(sse_core::parse_last_event_id)
    {
        return Some(id);
    }
    req.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "last_event_id")
            .then(|| sse_core::parse_last_event_id(value))
            .flatten()
    })
}

/// A small body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// The response for a refused upgrade or subscription: its status, required headers and a
/// short plain-text body.
pub fn rejection_response(rejection: Rejection) -> Response<Body> {
    let mut response = Response::new(full(rejection.body()));
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
    response
}

/// Upgrades `req` into a client of `hub`, with the default buffer tuning and the resume point
/// of [`last_event_id`]. See [`upgrade_with`].
pub fn upgrade<B>(req: Request<B>, hub: &Hub) -> Response<Body> {
    upgrade_with(req, hub, ConnectOptions::websocket(), WsConfig::default())
}

/// Upgrades `req` into a client of `hub`.
///
/// Validates the method, `Upgrade`, `Connection`, `Sec-WebSocket-Version`, the key, the hub's
/// origin policy and its state, then answers `101 Switching Protocols` and spawns the client's
/// driver on tokio once hyper hands over the connection. Otherwise the response is 400, 403,
/// 426 or 503 with a short plain-text body, and nothing is spawned.
///
/// `options` carries the client's metadata (e.g. the authenticated user taken from the
/// request; read it with [`Client::data`](hub_core::Client::data)); when its
/// `last_event_id` is unset, the request's [`last_event_id`] is used.
///
/// The server connection must have upgrades enabled (hyper's `serve_connection(..)
/// .with_upgrades()`; [`serve`] does it).
pub fn upgrade_with<B>(
    mut req: Request<B>,
    hub: &Hub,
    options: ConnectOptions,
    config: WsConfig,
) -> Response<Body> {
    match start_upgrade(&mut req, hub, options, config) {
        Ok(accept) => {
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            for (name, value) in accept.headers() {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            response
        }
        Err(rejection) => rejection_response(rejection),
    }
}

/// The framework-neutral half of [`upgrade_with`], for adapters on hyper-based frameworks
/// (warp): validates `req` and, if it is acceptable, arranges for the client's driver to be
/// spawned once hyper hands over the connection (the request must carry hyper's `OnUpgrade`
/// extension). The caller answers 101 with the [`Accept`](hub_core::Accept)'s headers.
///
/// # Errors
/// The [`Rejection`] to answer with; nothing is spawned.
pub fn start_upgrade<B>(
    req: &mut Request<B>,
    hub: &Hub,
    mut options: ConnectOptions,
    config: WsConfig,
) -> Result<hub_core::Accept, Rejection> {
    let accept = hub.accept(&HttpHead(req))?;
    if options.last_event_id.is_none() {
        options.last_event_id = last_event_id(req);
    }
    let on_upgrade = hyper::upgrade::on(req);
    let hub = hub.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                hub_tokio::serve(hub, TokioIo::new(upgraded), options, config).await;
            }
            Err(error) => tracing::debug!(%error, "upgrade did not complete"),
        }
    });
    Ok(accept)
}
