#![doc = include_str!("../README.md")]
//!
//! `warp::ws()` is not used: it keeps tungstenite's configuration private (a 128 KiB read
//! buffer per connection, about 137 kB per idle client). Here the upgrade is taken from hyper's
//! `OnUpgrade` request extension, answered with our own 101, and driven by the hub's one
//! connection driver with tuned buffers.
//!
//! [`serve`] runs a warp filter on `hub_hyper`'s server (a request-head timeout against
//! slowloris, which `warp::serve` lacks, and upgrades enabled). `warp::serve` works too.
#![doc(test(attr(deny(warnings))))]

pub mod sse;

pub use hub_hyper::WsConfig;

use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version};
use hub_core::{ConnectOptions, Hub, Rejection};
use std::convert::Infallible;
use std::future::Future;
use tokio::net::TcpListener;
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::Response;
use warp::{Filter, Reply};

/// The request's HTTP version, put in its extensions by [`serve`] (warp has no filter for it).
#[derive(Clone, Copy, Debug)]
struct RequestVersion(Version);

/// The parts of a request the hub needs, extracted by [`request`].
#[derive(Debug)]
pub struct RequestParts {
    version: Version,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    on_upgrade: Option<OnUpgrade>,
}

impl RequestParts {
    /// The request headers (e.g. to authenticate before joining).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn into_request(self) -> Request<()> {
        let uri = match &self.query {
            Some(q) => format!("/?{q}"),
            None => "/".to_string(),
        };
        let mut req = Request::new(());
        *req.version_mut() = self.version;
        *req.method_mut() = self.method;
        *req.headers_mut() = self.headers;
        if let Ok(uri) = uri.parse() {
            *req.uri_mut() = uri;
        }
        if let Some(on_upgrade) = self.on_upgrade {
            req.extensions_mut().insert(on_upgrade);
        }
        req
    }

    /// Upgrades into a client of `hub` (101), or answers 400/403/426/503 like every adapter.
    pub fn upgrade(self, hub: &Hub, options: ConnectOptions, config: WsConfig) -> Response {
        let mut req = self.into_request();
        match hub_hyper::start_upgrade(&mut req, hub, options, config) {
            Ok(accept) => {
                let mut response = Response::new("".into());
                *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                for (name, value) in accept.headers() {
                    if let Ok(value) = HeaderValue::from_str(value) {
                        response.headers_mut().insert(name, value);
                    }
                }
                response
            }
            Err(rejection) => rejection_response(rejection),
        }
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
    warp::method()
        .and(warp::header::headers_cloned())
        .and(query)
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<RequestVersion>())
        .map(
            |method, headers, query, on_upgrade, version: Option<RequestVersion>| RequestParts {
                version: version.map_or(Version::HTTP_11, |v| v.0),
                method,
                headers,
                query,
                on_upgrade,
            },
        )
}

/// A filter that upgrades the request into a client of `hub`, with the default buffers and the
/// request's `last_event_id` query parameter as its resume point. It never rejects: a request
/// that is not a valid upgrade gets 400, 403, 426 or 503, exactly as on every adapter.
pub fn ws(hub: Hub) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    ws_with(hub, WsConfig::default())
}

/// As [`ws`], with buffer tuning.
pub fn ws_with(
    hub: Hub,
    config: WsConfig,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    request()
        .map(move |parts: RequestParts| parts.upgrade(&hub, ConnectOptions::websocket(), config))
}

/// The response for a refused upgrade or subscription.
pub fn rejection_response(rejection: Rejection) -> Response {
    let mut response = Response::new(rejection.body().into());
    *response.status_mut() =
        StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in rejection.headers() {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// Serves `filter` on `listener` with [`hub_hyper::serve`]'s server (request-head timeout,
/// upgrades) until `shutdown` resolves.
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
