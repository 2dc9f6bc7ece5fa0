//! An HTTP/1 server loop with the timeouts a public WebSocket endpoint needs.

use crate::HttpHead;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hub_core::{host_is_valid, Rejection};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The peer's address, put in every request's extensions by [`serve`] (the upgrades and
/// subscriptions here read it for the authorization step and the connection's span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// How long a client may take to send its complete request head. Slower connections
/// (slowloris) are closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most request header lines a connection accepts; more get 431. 96 is actix-http's fixed
/// limit, so every adapter answers the same request the same way.
pub const MAX_HEADERS: usize = 96;

/// An HTTP/1 connection builder with a timer, so that hyper's `header_read_timeout` is really
/// on ([`HANDSHAKE_TIMEOUT`]; without a timer hyper silently ignores it), and a limit of
/// [`MAX_HEADERS`] request headers (more → 431). Response bodies are flattened into one buffer per write
/// (`writev(false)`): event streams send many small chunks, which one `write` carries more
/// cheaply than a vectored write of chunk header, data and trailer.
pub fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(64 * 1024)
        .writev(false);
    builder
}

/// Accepts connections from `listener` and serves each with `service` on
/// [`http1_builder`]'s settings, upgrades enabled, until `shutdown` resolves. A request
/// without the `Host` header its version requires, or with two, gets 400 without reaching
/// `service` (RFC 7230 §5.4; actix-http does the same). Then it stops
/// accepting, lets in-flight requests finish (at most 10 s), and returns. Upgraded WebSocket
/// connections belong to their hub from then on: shut them down with
/// [`Hub::shutdown`](hub_core::Hub::shutdown). For `shutdown`,
/// [`shutdown_signal`](crate::shutdown_signal) drains on SIGTERM (a container's stop) as on
/// Ctrl-C.
pub async fn serve<S, F, B>(listener: TcpListener, service: S, shutdown: impl Future<Output = ()>)
where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send + From<&'static str>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_with(http1_builder(), listener, service, shutdown).await;
}

/// As [`serve`], with connections configured by `builder` (start from [`http1_builder`] to
/// keep its timer and timeouts).
pub async fn serve_with<S, F, B>(
    builder: http1::Builder,
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send + From<&'static str>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = move |req: Request<Incoming>| {
        let answer = if host_is_valid(&HttpHead(&req)) {
            Ok(service(req))
        } else {
            Err(bad_host::<B::Data>())
        };
        async move {
            match answer {
                Ok(response) => Ok(response.await?.map(Either::Left)),
                Err(refusal) => Ok::<_, Infallible>(refusal.map(Either::Right)),
            }
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let service = move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            service(req)
        };
        let connection = builder
            .serve_connection(TokioIo::new(stream), service_fn(service))
            .with_upgrades();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// The 400 for a request whose `Host` headers are wrong, in the service's body type.
fn bad_host<D: bytes::Buf + From<&'static str>>() -> Response<Full<D>> {
    crate::response::rejection(Rejection::BadHost)
}
