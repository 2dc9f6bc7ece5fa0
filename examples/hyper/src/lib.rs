//! The example on hyper: the routes of [`example_common`]'s contract.

use example_common::{App, ECHO_READ_BUFFER, INDEX_HTML};
use http::{header, Method, Request, Response, StatusCode};
use hub_core::ConnectOptions;
use hub_hyper::sse;
use hub_hyper::{Body, WsConfig};
use std::convert::Infallible;
use std::future::{ready, Future};
use std::pin::Pin;
use tokio::net::TcpListener;

/// What [`serve_request`] answers with.
pub type Answer = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Routes one request: with `AUTH_TOKEN` ([`App::auth`]), the protected routes behind its
/// authorization step; every other request (and every one without it) as [`route`].
pub fn serve_request<B>(app: &App, req: Request<B>) -> Answer {
    let Some(auth) = &app.auth else {
        return Box::pin(ready(route(app, req)));
    };
    let websocket = ConnectOptions::websocket();
    match req.uri().path() {
        "/ws/chat" => Box::pin(hub_hyper::upgrade_authorized(
            req,
            &app.chat,
            auth,
            websocket,
            WsConfig::default(),
        )),
        "/ws/echo" => Box::pin(hub_hyper::upgrade_authorized(
            req,
            &app.echo,
            auth,
            websocket,
            WsConfig::default().read_buffer_size(ECHO_READ_BUFFER),
        )),
        "/events/chat" => match example_common::rooms::chat_events(req.uri().query()) {
            Ok(options) => Box::pin(sse::subscribe_authorized(
                &req, &app.chat, auth, app.sse, options,
            )),
            Err(body) => Box::pin(ready(plain(StatusCode::BAD_REQUEST, body))),
        },
        _ => Box::pin(ready(route(app, req))),
    }
}

/// Routes one request, without authentication.
pub fn route<B>(app: &App, req: Request<B>) -> Response<Body> {
    match req.uri().path() {
        "/ws/chat" => hub_hyper::upgrade(req, &app.chat),
        "/ws/echo" => hub_hyper::upgrade_with(
            req,
            &app.echo,
            ConnectOptions::websocket(),
            WsConfig::default().read_buffer_size(ECHO_READ_BUFFER),
        ),
        "/events/chat" => match example_common::rooms::chat_events(req.uri().query()) {
            Ok(options) => sse::subscribe_with(&req, &app.chat, app.sse, options),
            Err(body) => plain(StatusCode::BAD_REQUEST, body),
        },
        "/events/feed" => match sse::stream(&req, app.sse) {
            Some((stream, response)) => {
                let app = app.clone();
                tokio::spawn(async move { app.feed(stream).await });
                response
            }
            None => sse::not_acceptable(),
        },
        "/metrics" => {
            let (status, body, content_type) = app.metrics();
            text(status, body, content_type)
        }
        "/healthz" => {
            let (status, body) = app.healthz();
            text(status, body.into(), example_common::PLAIN)
        }
        "/" if req.method() == Method::GET || req.method() == Method::HEAD => {
            let mut response = Response::new(hub_hyper::full(INDEX_HTML));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn plain(status: StatusCode, body: String) -> Response<Body> {
    text(status.as_u16(), body, example_common::PLAIN)
}

fn text(status: u16, body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(hub_hyper::full(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// Serves the example on `listener` until `shutdown` resolves; then the hubs shut down (1001
/// to every client, event streams end) while the server finishes in-flight requests.
pub async fn run(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let routes = app.clone();
    let service = move |req: Request<hyper::body::Incoming>| {
        let response = serve_request(&routes, req);
        async move { Ok::<_, Infallible>(response.await) }
    };
    let hubs = app.clone();
    let shutdown = async move {
        shutdown.await;
        hubs.begin_shutdown();
    };
    hub_hyper::serve(listener, service, shutdown).await;
    app.shutdown().await;
}
