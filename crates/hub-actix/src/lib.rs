#![doc = include_str!("../README.md")]
//!
//! Configure the server with `.h1_allow_half_closed(false)`: by default actix keeps streaming
//! a response after the client closed its side, so an SSE subscriber that left would only be
//! noticed when a write fails (a heartbeat or two later). With it, actix ends the response at
//! once, as hyper does. `client_request_timeout` is the handshake (slowloris) timeout; actix
//! measures it on a clock refreshed every 500 ms.
//!
//! The connection is driven by the hub's one driver and codec (permessage-deflate included),
//! exactly as on hyper and warp. actix keeps its HTTP/1 dispatcher (and its buffers) alive under an upgraded
//! connection: S3 in the repository's `bench/README.md` shows the memory this costs, and
//! [`lean`] how to avoid it.
#![doc(test(attr(deny(warnings))))]

mod authorized;
mod io;
pub mod lean;
pub mod sse;

pub use authorized::{refusal_response, upgrade_authorized};
/// SIGTERM or Ctrl-C, both meaning "drain" (from `hub-tokio`).
pub use hub_tokio::shutdown_signal;
pub use hub_tokio::WsConfig;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use hub_core::{ConnectOptions, HttpVersion, Hub, Rejection, RequestHead};

/// A [`RequestHead`] over an actix-web request.
#[derive(Debug)]
pub struct ActixHead<'a>(pub &'a HttpRequest);

impl RequestHead for ActixHead<'_> {
    fn version(&self) -> HttpVersion {
        http_version(self.0.version())
    }

    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        header_values(self.0.headers(), name)
    }

    fn query(&self) -> Option<&str> {
        Some(self.0.query_string())
    }
}

/// An actix (`http` 0.2) version as the hub's [`HttpVersion`].
pub(crate) fn http_version(version: actix_web::http::Version) -> HttpVersion {
    use actix_web::http::Version;
    match version {
        Version::HTTP_09 => HttpVersion::Http09,
        Version::HTTP_10 => HttpVersion::Http10,
        Version::HTTP_2 => HttpVersion::H2,
        Version::HTTP_3 => HttpVersion::H3,
        _ => HttpVersion::Http11,
    }
}

/// Every value of header `name` in an actix header map.
pub(crate) fn header_values<'a>(
    headers: &'a header::HeaderMap,
    name: &str,
) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
    Box::new(headers.get_all(name.to_string()).map(HeaderValue::as_bytes))
}

/// The response for a refused upgrade or subscription.
pub fn rejection_response(rejection: Rejection) -> HttpResponse {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"));
    for (name, value) in rejection.headers() {
        builder.insert_header((*name, *value));
    }
    builder.body(rejection.body())
}

/// Upgrades the request into a client of `hub` with the default buffers and the request's
/// resume point. See [`upgrade_with`].
pub fn upgrade(req: &HttpRequest, payload: web::Payload, hub: &Hub) -> HttpResponse {
    upgrade_with(
        req,
        payload,
        hub,
        ConnectOptions::websocket(),
        WsConfig::default(),
    )
}

/// Upgrades the request into a client of `hub`: validates it like every adapter (400, 403,
/// 426 or 503 when refused), answers 101, and runs the hub's driver on this worker's executor
/// over the request payload (inbound) and the response body (outbound).
///
/// `options` carries the client's metadata; when its `last_event_id` is unset the request's
/// is used ([`RequestHead::last_event_id`]).
pub fn upgrade_with(
    req: &HttpRequest,
    payload: web::Payload,
    hub: &Hub,
    options: ConnectOptions,
    config: WsConfig,
) -> HttpResponse {
    let accept = match hub.accept(&ActixHead(req)) {
        Ok(accept) => accept,
        Err(rejection) => return rejection_response(rejection),
    };
    let options = options
        .resume_from(&ActixHead(req))
        .located_at(req.peer_addr(), req.path());
    switching_protocols(&accept, payload, hub, options, config)
}

/// The 101 for an accepted upgrade (with the selected subprotocol, if any); the hub's driver
/// runs on this worker's executor over the payload and the response body.
fn switching_protocols(
    accept: &hub_core::Accept,
    payload: web::Payload,
    hub: &Hub,
    options: ConnectOptions,
    config: WsConfig,
) -> HttpResponse {
    let (io, response_stream) = io::duplex(payload);
    let hub = hub.clone();
    let options = options.accepted(accept);
    actix_web::rt::spawn(async move {
        hub_tokio::serve(hub, io, options, config).await;
    });
    let mut builder = HttpResponse::SwitchingProtocols();
    builder
        .upgrade("websocket")
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, accept.accept_key.as_str()));
    if let Some(protocol) = &accept.protocol {
        builder.insert_header((header::SEC_WEBSOCKET_PROTOCOL, protocol.as_str()));
    }
    if let Some(extensions) = accept.extensions() {
        builder.insert_header((header::SEC_WEBSOCKET_EXTENSIONS, extensions));
    }
    builder.streaming(response_stream)
}
