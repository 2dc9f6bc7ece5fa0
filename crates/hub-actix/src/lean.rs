//! The lean path, for memory-bound deployments: actix-http hands every `Connection: upgrade`
//! request, with its raw connection, to an upgrade service. Here that service validates the
//! request through the hub, writes the 101 itself and gives the socket (plus any bytes actix
//! already read) to the hub's driver. actix's HTTP/1 dispatcher buffers are gone, which brings
//! an idle client from ~14 kB down to ~2 kB (see the README).
//!
//! Requests without `Connection: upgrade` (a plain GET, SSE) still reach the actix-web `App`
//! given to `HttpService::build().finish(..)`, so keep the native routes there too: they answer
//! 426 and friends exactly as every adapter. actix-http sends every request with
//! `Connection: upgrade` and `Upgrade: websocket` to the upgrade service, whatever its path:
//! [`upgrade_service_or`] answers those not on a WebSocket route with a second instance of the
//! same `App`, so a page or an event stream asked for with those headers gets what it gets on
//! hyper and warp.
//!
//! ```no_run
//! use actix_http::{HttpService, Request};
//! use actix_service::map_config;
//! use actix_web::{dev::AppConfig, App};
//! use hub_core::{ConnectOptions, Hub};
//!
//! # #[allow(dead_code)]
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = Hub::new();
//!     let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
//!     actix_server::Server::build()
//!         .listen("hub", listener, move || {
//!             let ws_hub = hub.clone();
//!             let route = move |req: &Request| {
//!                 (req.path() == "/ws/chat").then(|| {
//!                     (ws_hub.clone(), ConnectOptions::websocket(), Default::default())
//!                 })
//!             };
//!             // the application's routes (the same for both instances)
//!             let app = || App::new();
//!             let fallback = map_config(app(), |_| AppConfig::default());
//!             HttpService::build()
//!                 .upgrade(hub_actix::lean::upgrade_service_or(route, fallback))
//!                 .finish(map_config(app(), |_| AppConfig::default()))
//!                 .tcp()
//!         })?
//!         .run()
//!         .await
//! }
//! ```

use crate::WsConfig;
use actix_codec::{Encoder, Framed};
use actix_http::body::{BoxBody, MessageBody};
use actix_http::{h1, ConnectionType, HttpMessage, Request, Response};
use actix_service::{fn_factory, fn_service, Service, ServiceFactory};
use actix_web::rt::net::TcpStream;
use hub_core::{Authorizer, ConnectOptions, HttpVersion, Hub, Refusal, Rejection, RequestHead};
use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A [`RequestHead`] over an actix-http request.
#[derive(Debug)]
pub struct LeanHead<'a>(pub &'a Request);

impl RequestHead for LeanHead<'_> {
    fn version(&self) -> HttpVersion {
        crate::http_version(self.0.version())
    }

    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        crate::header_values(self.0.headers(), name)
    }

    fn query(&self) -> Option<&str> {
        self.0.uri().query()
    }
}

fn response_head(status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if status != 101 {
        // plain text unless the headers (an application's refusal) say otherwise
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("content-type: text/plain; charset=utf-8\r\n");
        }
        head.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(body);
    head
}

fn reason(status: u16) -> &'static str {
    actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

async fn refuse(io: &mut TcpStream, rejection: Rejection) {
    let status = rejection.status();
    let head = response_head(
        status,
        reason(status),
        rejection.headers(),
        rejection.body(),
    );
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// Answers the application's refusal (only its headers that are valid HTTP and frame nothing:
/// no line breaks reach the wire, and the length is the body's).
async fn refuse_with(io: &mut TcpStream, refusal: &Refusal) {
    let valid = crate::authorized::refusal_headers(refusal);
    let headers: Vec<(&str, &str)> = valid
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let status = refusal.answer_status();
    let head = response_head(status, reason(status), &headers, &refusal.body);
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// What picks the hub for an upgrade request: the hub, the client's options and its buffers,
/// or `None` when the request's route is no WebSocket.
pub trait Route: Fn(&Request) -> Option<(Hub, ConnectOptions, WsConfig)> + Clone + 'static {}

impl<R> Route for R where
    R: Fn(&Request) -> Option<(Hub, ConnectOptions, WsConfig)> + Clone + 'static
{
}

/// As [`Route`], for an upgrade behind the application's authorization step: the picked
/// route also names the step (`None`: no step). See [`authorized_upgrade_service`].
pub trait AuthRoute:
    Fn(&Request) -> Option<(Hub, ConnectOptions, WsConfig, Option<Authorizer>)> + Clone + 'static
{
}

impl<R> AuthRoute for R where
    R: Fn(&Request) -> Option<(Hub, ConnectOptions, WsConfig, Option<Authorizer>)>
        + Clone
        + 'static
{
}

/// A [`Route`] as an [`AuthRoute`] without a step.
fn without_step<R: Route>(route: R) -> impl AuthRoute {
    move |req: &Request| route(req).map(|(hub, options, config)| (hub, options, config, None))
}

/// What `HttpService::build().upgrade(..)` takes: the services of this module.
pub trait UpgradeFactory:
    ServiceFactory<Upgrade, Config = (), Response = (), Error = actix_http::Error, InitError = ()>
{
}

impl<F> UpgradeFactory for F where
    F: ServiceFactory<
        Upgrade,
        Config = (),
        Response = (),
        Error = actix_http::Error,
        InitError = (),
    >
{
}

/// What actix-http gives an upgrade service: the request and its connection.
pub type Upgrade = (Request, Framed<TcpStream, h1::Codec>);

/// The connection, out of actix: responses actix encoded but has not written yet (to requests
/// pipelined ahead of this one) go out first, whatever this one's answer is. `None` if the
/// client is gone.
async fn take_connection(
    framed: Framed<TcpStream, h1::Codec>,
) -> Option<(TcpStream, h1::Codec, bytes::BytesMut)> {
    let parts = framed.into_parts();
    let mut io = parts.io;
    if !parts.write_buf.is_empty() && io.write_all(&parts.write_buf).await.is_err() {
        return None;
    }
    Some((io, parts.codec, parts.read_buf))
}

/// Completes the handshake of `req` on `hub` (behind the authorization step, if there is
/// one) and hands the socket to the hub's driver.
async fn upgrade(
    req: Request,
    mut io: TcpStream,
    codec: h1::Codec,
    read_buf: bytes::BytesMut,
    (hub, options, config, authorizer): (Hub, ConnectOptions, WsConfig, Option<Authorizer>),
) {
    let mut accept = match hub.accept(&LeanHead(&req)) {
        Ok(accept) => accept,
        Err(rejection) => return refuse(&mut io, rejection).await,
    };
    let mut options = options
        .resume_from(&LeanHead(&req))
        .located_at(req.peer_addr(), req.path());
    let step = authorizer.map(|authorizer| {
        let request = crate::authorized::auth_request(
            req.method(),
            req.uri(),
            req.headers(),
            req.peer_addr(),
        );
        (authorizer, request.with_protocols(accept.offered.clone()))
    });
    // Nothing of actix's may outlive the handshake: the request (and its payload plumbing),
    // the codec and its buffers would stay for the connection's life.
    drop(req);
    drop(codec);
    // Bytes actix read past the request head belong to the WebSocket.
    let already_read = read_buf.to_vec();
    drop(read_buf);
    if let Some((authorizer, request)) = step {
        match authorizer
            .authorize(&hub, request, Some(&mut accept), options)
            .await
        {
            Ok(admitted) => options = admitted,
            Err(refusal) => return refuse_with(&mut io, &refusal).await,
        }
    }
    let head = response_head(101, "Switching Protocols", &accept.headers(), "");
    if io.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let options = options.accepted(&accept);
    hub_tokio::serve_partially_read(hub, io, already_read, options, config).await;
}

/// The upgrade service. `route` picks the hub (and the client's options and buffers) for a
/// request, or `None` for a 404.
///
/// actix-http sends every request carrying `Connection: upgrade` and `Upgrade: websocket`
/// here, whatever its path: with this service such a request to a page or an event stream
/// gets the 404 too. [`upgrade_service_or`] answers it as the application would.
pub fn upgrade_service<R: Route>(route: R) -> impl UpgradeFactory + Clone {
    authorized_upgrade_service(without_step(route))
}

/// As [`upgrade_service`], with the application's authorization step named by the route:
/// once the hub accepted the upgrade (400, 403, 426, 431, 503 otherwise, without running the
/// step), the step sees the request head ([`AuthRequest`](hub_core::AuthRequest): path, query,
/// headers, cookies, peer address, offered subprotocols). Its admission gives the client's
/// data and the subprotocol the 101 answers with; its refusal is the answer, counted as
/// [`Rejection::Refused`]; a subprotocol the client did not offer is answered 500 (see
/// [`Authorizer::authorize`]). Exactly as `hub_actix::upgrade_authorized` on actix-web's
/// handler path.
pub fn authorized_upgrade_service<R: AuthRoute>(route: R) -> impl UpgradeFactory + Clone {
    fn_service(move |(req, framed): Upgrade| {
        let picked = route(&req);
        async move {
            let Some((mut io, codec, read_buf)) = take_connection(framed).await else {
                return Ok(());
            };
            match picked {
                Some(picked) => upgrade(req, io, codec, read_buf, picked).await,
                None => {
                    let head = response_head(404, "Not Found", &[], "not found\n");
                    let _ = io.write_all(head.as_bytes()).await;
                }
            }
            Ok(())
        }
    })
}

/// As [`upgrade_service`], but a request `route` does not take (an upgrade request to a route
/// that is no WebSocket) is answered by `fallback`, normally the same actix-web `App` as the
/// one given to `finish`: the page, the event stream or the 404 it would get without the
/// `Upgrade` header, as on hyper and warp. actix has taken the rest of the connection as that
/// request's body, so the connection closes after the response (a stream ends it by closing,
/// and ends when the client closes its side).
pub fn upgrade_service_or<R, F, B>(route: R, fallback: F) -> impl UpgradeFactory
where
    R: Route,
    F: ServiceFactory<Request, Config = ()>,
    F::Service: 'static,
    F::Response: Into<Response<B>>,
    F::Error: Into<Response<BoxBody>>,
    F::InitError: std::fmt::Debug,
    B: MessageBody + 'static,
{
    authorized_upgrade_service_or(without_step(route), fallback)
}

/// As [`upgrade_service_or`], with the application's authorization step named by the route
/// (see [`authorized_upgrade_service`]).
pub fn authorized_upgrade_service_or<R, F, B>(route: R, fallback: F) -> impl UpgradeFactory
where
    R: AuthRoute,
    F: ServiceFactory<Request, Config = ()>,
    F::Service: 'static,
    F::Response: Into<Response<B>>,
    F::Error: Into<Response<BoxBody>>,
    F::InitError: std::fmt::Debug,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let service = fallback.new_service(());
        let route = route.clone();
        async move {
            let service = Rc::new(service.await.map_err(|error| {
                tracing::error!(?error, "the lean path's fallback service did not start");
            })?);
            Ok(fn_service(move |(req, framed): Upgrade| {
                let picked = route(&req);
                let service = Rc::clone(&service);
                async move {
                    let Some((io, codec, read_buf)) = take_connection(framed).await else {
                        return Ok::<_, actix_http::Error>(());
                    };
                    match picked {
                        Some(picked) => upgrade(req, io, codec, read_buf, picked).await,
                        None => answer(&*service, req, io, codec).await,
                    }
                    Ok(())
                }
            }))
        }
    })
}

/// Answers `req` with `service`'s response, written with actix's own encoder (status line,
/// `Date`, `HEAD` without a body), close-delimited; then closes the connection.
async fn answer<S, B>(service: &S, req: Request, mut io: TcpStream, mut codec: h1::Codec)
where
    S: Service<Request>,
    S::Response: Into<Response<B>>,
    S::Error: Into<Response<BoxBody>>,
    B: MessageBody + 'static,
{
    let response: Response<BoxBody> = match service.call(req).await {
        Ok(response) => response.into().map_into_boxed_body(),
        Err(error) => error.into(),
    };
    let (mut head, body) = response.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    // no chunked coding: the body ends where the connection does
    head.head_mut().no_chunking(true);
    let mut out = bytes::BytesMut::new();
    if codec
        .encode(h1::Message::Item((head, body.size())), &mut out)
        .is_err()
        || io.write_all(&out).await.is_err()
    {
        return;
    }
    let mut body = std::pin::pin!(body);
    let mut scratch = [0u8; 256];
    loop {
        out.clear();
        tokio::select! {
            // what the body has ready goes out first, even after the client's FIN
            biased;
            chunk = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)) => match chunk {
                Some(Ok(chunk)) => {
                    if codec.encode(h1::Message::Chunk(Some(chunk)), &mut out).is_err()
                        || io.write_all(&out).await.is_err()
                    {
                        break;
                    }
                }
                Some(Err(_)) | None => break,
            },
            // the client closing its side ends a stream at once (as `h1_allow_half_closed(false)`
            // does on actix's own path); anything else it sends is no request and is dropped
            read = io.read(&mut scratch) => if matches!(read, Ok(0) | Err(_)) {
                break;
            },
        }
    }
    let _ = io.shutdown().await;
}
