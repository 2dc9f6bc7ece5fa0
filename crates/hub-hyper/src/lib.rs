#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

mod authorized;
pub mod response;
mod server;
pub mod sse;

pub use authorized::{authorize_upgrade, refusal_response, upgrade_authorized};
/// SIGTERM or Ctrl-C, both meaning "drain" (from `hub-tokio`).
pub use hub_tokio::shutdown_signal;
pub use hub_tokio::WsConfig;
pub use server::{http1_builder, serve, serve_with, PeerAddr, HANDSHAKE_TIMEOUT, MAX_HEADERS};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hub_core::{ConnectOptions, HttpVersion, Hub, Rejection, RequestHead};
use hyper::upgrade::OnUpgrade;
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
        response::header_values(self.0.headers(), name)
    }

    fn query(&self) -> Option<&str> {
        self.0.uri().query()
    }
}

/// A small body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// The response for a refused upgrade or subscription: its status, required headers and a
/// short plain-text body.
pub fn rejection_response(rejection: Rejection) -> Response<Body> {
    response::rejection::<Full<Bytes>>(rejection).map(BodyExt::boxed_unsync)
}

/// Upgrades `req` into a client of `hub`, with the default buffer tuning and the resume point
/// of the request. See [`upgrade_with`].
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
/// `last_event_id` is unset, the request's is used
/// ([`RequestHead::last_event_id`]).
///
/// The server connection must have upgrades enabled (hyper's `serve_connection(..)
/// .with_upgrades()`; [`serve`] does it).
pub fn upgrade_with<B>(
    mut req: Request<B>,
    hub: &Hub,
    options: ConnectOptions,
    config: WsConfig,
) -> Response<Body> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let options = options.located_at(peer(&req), req.uri().path());
    match start_upgrade(&HttpHead(&req), Some(on_upgrade), hub, options, config) {
        Ok(accept) => {
            response::switching_protocols::<Full<Bytes>>(&accept).map(BodyExt::boxed_unsync)
        }
        Err(rejection) => rejection_response(rejection),
    }
}

/// The framework-neutral half of [`upgrade_with`], for adapters on hyper-based frameworks
/// (warp): validates the request `head` and, if it is acceptable, arranges for the client's
/// driver to be spawned once hyper hands over the connection (`on_upgrade`, hyper's request
/// extension; without it the connection cannot be taken over and nothing is spawned). The
/// caller answers with [`response::switching_protocols`].
///
/// # Errors
/// The [`Rejection`] to answer with; nothing is spawned.
pub fn start_upgrade(
    head: &dyn RequestHead,
    on_upgrade: Option<OnUpgrade>,
    hub: &Hub,
    options: ConnectOptions,
    config: WsConfig,
) -> Result<hub_core::Accept, Rejection> {
    let accept = hub.accept(head)?;
    spawn_client(
        on_upgrade,
        hub,
        options.resume_from(head).accepted(&accept),
        config,
    );
    Ok(accept)
}

/// The peer's address, when [`serve`] recorded it ([`PeerAddr`]).
pub fn peer<B>(req: &Request<B>) -> Option<std::net::SocketAddr> {
    req.extensions().get::<PeerAddr>().map(|p| p.0)
}

/// Spawns the client's driver for when hyper hands over the connection.
pub(crate) fn spawn_client(
    on_upgrade: Option<OnUpgrade>,
    hub: &Hub,
    options: ConnectOptions,
    config: WsConfig,
) {
    let Some(on_upgrade) = on_upgrade else {
        tracing::debug!("upgrade did not complete: the request has no connection to take over");
        return;
    };
    let hub = hub.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                hub_tokio::serve(hub, TokioIo::new(upgraded), options, config).await;
            }
            Err(error) => tracing::debug!(%error, "upgrade did not complete"),
        }
    });
}
