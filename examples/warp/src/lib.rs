//! The example on warp: the routes of [`example_common`]'s contract, as filters.

use example_common::{App, ECHO_READ_BUFFER, INDEX_HTML};
use hub_core::{Authorizer, ConnectOptions, Hub};
use hub_warp::sse;
use hub_warp::{RequestParts, WsConfig};
use std::future::{ready, Future};
use std::pin::Pin;
use tokio::net::TcpListener;
use warp::reply::Response;
use warp::{Filter, Reply};

/// What a route that may reject answers with.
type Answer = Pin<Box<dyn Future<Output = Result<Response, warp::Rejection>> + Send>>;

/// Upgrades into `hub`, behind `auth` when there is one (`AUTH_TOKEN`).
fn upgrade(parts: RequestParts, hub: &Hub, auth: Option<&Authorizer>, config: WsConfig) -> Answer {
    let options = ConnectOptions::websocket();
    match auth {
        Some(auth) => Box::pin(parts.upgrade_authorized(hub, auth, options, config)),
        None => Box::pin(ready(parts.upgrade(hub, options, config))),
    }
}

/// Every route of the contract.
pub fn routes(
    app: App,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let (chat_hub, chat_auth) = (app.chat.clone(), app.auth.clone());
    let chat = warp::path!("ws" / "chat")
        .and(hub_warp::request())
        .and_then(move |parts: RequestParts| {
            upgrade(parts, &chat_hub, chat_auth.as_ref(), WsConfig::default())
        });
    let (echo_hub, echo_auth) = (app.echo.clone(), app.auth.clone());
    let echo = warp::path!("ws" / "echo")
        .and(hub_warp::request())
        .and_then(move |parts: RequestParts| {
            let config = WsConfig::default().read_buffer_size(ECHO_READ_BUFFER);
            upgrade(parts, &echo_hub, echo_auth.as_ref(), config)
        });
    // a request on a WebSocket path that is no upgrade gets the hub's 426
    let ws = chat.or(echo).unify().recover(hub_warp::recover).unify();
    let (chat_hub, auth) = (app.chat.clone(), app.auth.clone());
    let sse_config = app.sse;
    let events_chat = warp::path!("events" / "chat")
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(hub_warp::request())
        .and_then(move |query: String, parts: RequestParts| -> Answer {
            match (example_common::rooms::chat_events(Some(&query)), &auth) {
                (Ok(options), Some(auth)) => Box::pin(sse::subscribe_parts_authorized(
                    &parts, &chat_hub, auth, sse_config, options,
                )),
                (Ok(options), None) => Box::pin(ready(Ok(sse::subscribe_parts(
                    &parts, &chat_hub, sse_config, options,
                )))),
                (Err(body), _) => Box::pin(ready(Ok(warp::reply::with_status(
                    body,
                    warp::http::StatusCode::BAD_REQUEST,
                )
                .into_response()))),
            }
        })
        // a refused subscription gets the step's answer
        .recover(hub_warp::recover)
        .unify();
    let feed_app = app.clone();
    let feed = warp::path!("events" / "feed")
        .and(sse::stream(app.sse))
        .map(move |new: Option<(sse::SseStream, Response)>| match new {
            Some((stream, response)) => {
                let app = feed_app.clone();
                tokio::spawn(async move { app.feed(stream).await });
                response
            }
            None => sse::not_acceptable(),
        });
    let metrics_app = app.clone();
    let metrics = warp::path!("metrics").map(move || {
        let (status, body, content_type) = metrics_app.metrics();
        text(status, body, content_type)
    });
    let health_app = app.clone();
    let healthz = warp::path!("healthz").map(move || {
        let (status, body) = health_app.healthz();
        text(status, body.into(), example_common::PLAIN)
    });
    let index = warp::path::end()
        .and(warp::get().or(warp::head()).unify())
        .map(|| warp::reply::html(INDEX_HTML).into_response());
    let not_found = warp::any().map(|| {
        warp::reply::with_status("not found\n", warp::http::StatusCode::NOT_FOUND).into_response()
    });
    ws.or(events_chat)
        .unify()
        .or(feed)
        .unify()
        .or(metrics)
        .unify()
        .or(healthz)
        .unify()
        .or(index)
        .unify()
        .or(not_found)
        .unify()
}

/// A response with `status`, `body` and its `Content-Type`.
fn text(status: u16, body: String, content_type: &'static str) -> Response {
    let status = warp::http::StatusCode::from_u16(status).unwrap_or_default();
    let reply = warp::reply::with_header(body, "content-type", content_type);
    warp::reply::with_status(reply, status).into_response()
}

/// Serves the example on `listener` (on hub-hyper's server: request-head timeout, upgrades)
/// until `shutdown` resolves; then the hubs shut down while in-flight requests finish.
pub async fn run(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let hubs = app.clone();
    let shutdown = async move {
        shutdown.await;
        hubs.begin_shutdown();
    };
    hub_warp::serve(listener, routes(app.clone()), shutdown).await;
    app.shutdown().await;
}
