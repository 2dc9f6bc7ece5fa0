#![doc = include_str!("../README.md")]
//!
//! `warp::ws()` is not used: it keeps tungstenite's configuration private (a 128 KiB read
//! buffer per connection, about 137 kB per idle client). Here the upgrade is taken from hyper's
//! `OnUpgrade` request extension, answered with our own 101, and driven by the hub's one
//! connection driver and codec (permessage-deflate included; no buffer held while idle).
//!
//! [`serve`] runs a warp filter on `hub_hyper`'s server (a request-head timeout against
//! slowloris, which `warp::serve` lacks, and upgrades enabled). `warp::serve` works too.
#![doc(test(attr(deny(warnings))))]

mod authorized;
pub mod sse;

pub use authorized::{ws_authorized, ws_authorized_with, Refused};
/// SIGTERM or Ctrl-C, both meaning "drain" (from `hub-tokio`).
pub use hub_hyper::shutdown_signal;
pub use hub_hyper::WsConfig;

use http::{HeaderMap, Method, Request, Version};
use hub_core::{ConnectOptions, HttpVersion, Hub, Rejection, RequestHead};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::Response;
use warp::{Filter, Reply};

/// The request's HTTP version, put in its extensions by [`serve`] (warp has no filter for it).
#[derive(Clone, Copy, Debug)]
struct RequestVersion(Version);

/// The parts of a request the hub needs, extracted by [`request`]; the hub reads them as a
/// [`RequestHead`].
#[derive(Debug)]
pub struct RequestParts {
    version: Version,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    path: warp::path::FullPath,
    peer: Option<SocketAddr>,
    on_upgrade: Option<OnUpgrade>,
}

impl RequestHead for RequestParts {
    fn version(&self) -> HttpVersion {
        hub_hyper::http_version(self.version)
    }

    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        hub_hyper::response::header_values(&self.headers, name)
    }

    fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

impl RequestParts {
    /// The request headers (e.g. to authenticate before joining).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request path.
    pub fn path(&self) -> &str {
        self.path.as_str()
    }

    /// The peer's address: warp's (under `warp::serve`), else the one [`serve`] recorded.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Upgrades into a client of `hub` (101), or answers 400/403/426/503 like every adapter.
    ///
    /// # Errors
    /// A request that does not ask for a WebSocket upgrade at all (no `Upgrade: websocket`) is
    /// rejected, as `warp::ws()` does, so that another route on the same path can answer it;
    /// the hub has not seen it. [`recover`] gives the hub's answer (426, or 400 for a method
    /// other than `GET`, counted as a refused upgrade) when no route takes it.
    pub fn upgrade(
        mut self,
        hub: &Hub,
        options: ConnectOptions,
        config: WsConfig,
    ) -> Result<Response, warp::Rejection> {
        if !self.is_websocket_upgrade() {
            self.on_upgrade = None;
            return Err(warp::reject::custom(NotAnUpgrade {
                hub: hub.clone(),
                parts: self,
            }));
        }
        let on_upgrade = self.on_upgrade.take();
        let options = options.located_at(self.peer, self.path.as_str());
        Ok(
            match hub_hyper::start_upgrade(&self, on_upgrade, hub, options, config) {
                Ok(accept) => hub_hyper::response::switching_protocols(&accept),
                Err(rejection) => rejection_response(rejection),
            },
        )
    }
}

/// Why [`ws`] rejected a request: it does not ask for a WebSocket upgrade. [`recover`] gives
/// the hub's answer to it.
#[derive(Debug)]
pub struct NotAnUpgrade {
    hub: Hub,
    parts: RequestParts,
}

impl warp::reject::Reject for NotAnUpgrade {}

/// Answers a request that [`ws`] rejected and no other route took, as the hub answers it on
/// every adapter (426; counted in
/// [`Stats::rejected_upgrades`](hub_core::Stats::rejected_upgrades)), and one an
/// authorization step refused ([`Refused`]: its status, headers and body); passes every other
/// rejection on. Use it with `Filter::recover`.
///
/// # Errors
/// The rejection, when it is not [`ws`]'s.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, warp::Rejection> {
    if let Some(Refused(refusal)) = rejection.find::<Refused>() {
        return Ok(hub_hyper::response::refusal(refusal));
    }
    match rejection.find::<NotAnUpgrade>() {
        Some(NotAnUpgrade { hub, parts }) => Ok(rejection_response(
            hub.accept(parts).err().unwrap_or(Rejection::NotUpgrade),
        )),
        None => Err(rejection),
    }
}

/// Extracts what an upgrade or a subscription needs; never rejects.
///
/// warp offers no filter for the request's HTTP version: [`serve`] records it, and under
/// another server (`warp::serve`) requests count as HTTP/1.1, so an HTTP/1.0 upgrade is only
/// refused (400, as on every adapter) when served by [`serve`].
pub fn request() -> impl Filter<Extract = (RequestParts,), Error = Infallible> + Clone {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    let peer = warp::addr::remote()
        .and(warp::ext::optional::<hub_hyper::PeerAddr>())
        .map(
            |remote: Option<SocketAddr>, recorded: Option<hub_hyper::PeerAddr>| {
                remote.or(recorded.map(|p| p.0))
            },
        );
    warp::method()
        .and(warp::header::headers_cloned())
        .and(query)
        .and(warp::path::full())
        .and(peer)
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<RequestVersion>())
        .map(
            |method, headers, query, path, peer, on_upgrade, version: Option<RequestVersion>| {
                RequestParts {
                    version: version.map_or(Version::HTTP_11, |v| v.0),
                    method,
                    headers,
                    query,
                    path,
                    peer,
                    on_upgrade,
                }
            },
        )
}

/// A filter that upgrades the request into a client of `hub`, with the default buffers and the
/// request's `last_event_id` query parameter as its resume point. Like `warp::ws()`, it rejects
/// a request that does not ask for an upgrade, so another route on the same path can answer
/// (add [`recover`] to give it the 426 every adapter gives); an upgrade it refuses gets 400,
/// 403, 426 or 503, exactly as on every adapter.
pub fn ws(hub: Hub) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    ws_with(hub, WsConfig::default())
}

/// As [`ws`], with buffer tuning.
pub fn ws_with(
    hub: Hub,
    config: WsConfig,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    request().and_then(move |parts: RequestParts| {
        let answer = parts.upgrade(&hub, ConnectOptions::websocket(), config);
        async move { answer }
    })
}

/// The response for a refused upgrade or subscription.
pub fn rejection_response(rejection: Rejection) -> Response {
    hub_hyper::response::rejection(rejection)
}

/// Serves `filter` on `listener` with [`hub_hyper::serve`]'s server (request-head timeout,
/// upgrades) until `shutdown` resolves; [`shutdown_signal`] resolves on SIGTERM (a
/// container's stop) or Ctrl-C.
pub async fn serve<F>(listener: TcpListener, filter: F, shutdown: impl Future<Output = ()>)
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    serve_with(hub_hyper::http1_builder(), listener, filter, shutdown).await;
}

/// As [`serve`], with connections configured by `builder` (start from
/// [`hub_hyper::http1_builder`]).
pub async fn serve_with<F>(
    builder: hyper::server::conn::http1::Builder,
    listener: TcpListener,
    filter: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let service = warp::service(filter);
    hub_hyper::serve_with(
        builder,
        listener,
        move |mut req: Request<hyper::body::Incoming>| {
            let version = RequestVersion(req.version());
            req.extensions_mut().insert(version);
            let mut service = service.clone();
            tower_service::Service::call(&mut service, req)
        },
        shutdown,
    )
    .await;
}
