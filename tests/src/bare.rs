//! A bare hub served by each adapter, for tests that need their own hub or handler:
//! - `/sse-stream`: the seed's stream, handed to the test through [`Bare::streams`];
//! - `/sse-hub`: an SSE subscription to the hub;
//! - `/sse-news`: an SSE subscription created already subscribed to the topic [`NEWS`];
//! - `/sse-topics?topic=a&topic=b`: an SSE subscription to the topics named in the query
//!   (none: broadcasts only), resuming from the request's `Last-Event-ID`;
//! - any other path: a WebSocket upgrade into the hub, with the `x-user` header attached to
//!   the client as a [`User`].

use crate::Adapter;
use hub_core::{ConnectOptions, Hub};
use hub_hyper::sse::{SseConfig, SseStream};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// The metadata attached from the `x-user` header.
#[derive(Debug, Clone)]
pub struct User(pub String);

/// The topic `/sse-news` subscribers are created in.
pub const NEWS: &str = "news";

fn news() -> ConnectOptions {
    ConnectOptions::default().topics([NEWS]).unwrap()
}

/// An SSE subscriber's options with the query's `topic=` values as its topics.
fn topics(query: Option<&str>) -> ConnectOptions {
    let named = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.strip_prefix("topic="));
    ConnectOptions::sse(None).topics(named).unwrap()
}

/// Settings of a bare server.
#[derive(Debug, Clone, Copy)]
pub struct BareConfig {
    pub sse: SseConfig,
    pub handshake_timeout: Duration,
}

impl Default for BareConfig {
    fn default() -> Self {
        Self {
            sse: SseConfig::default(),
            handshake_timeout: hub_hyper::HANDSHAKE_TIMEOUT,
        }
    }
}

/// A running bare server.
#[derive(Debug)]
pub struct Bare {
    pub addr: SocketAddr,
    pub streams: mpsc::UnboundedReceiver<SseStream>,
}

fn user(value: Option<&[u8]>) -> ConnectOptions {
    match value.and_then(|v| std::str::from_utf8(v).ok()) {
        Some(name) => ConnectOptions::websocket().data(User(name.to_string())),
        None => ConnectOptions::websocket(),
    }
}

/// Serves `hub` on an ephemeral port with `adapter`.
pub async fn serve_bare(adapter: Adapter, hub: &Hub, config: BareConfig) -> Bare {
    let (tx, streams) = mpsc::unbounded_channel();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hub = hub.clone();
    match adapter {
        Adapter::Hyper => {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let service = move |req: http::Request<hyper::body::Incoming>| {
                let response = match req.uri().path() {
                    "/sse-stream" => match hub_hyper::sse::stream(&req, config.sse) {
                        Some((stream, response)) => {
                            let _ = tx.send(stream);
                            response
                        }
                        None => hub_hyper::sse::not_acceptable(),
                    },
                    "/sse-hub" => hub_hyper::sse::subscribe(&req, &hub, config.sse),
                    "/sse-news" => hub_hyper::sse::subscribe_with(&req, &hub, config.sse, news()),
                    "/sse-topics" => {
                        let options = topics(req.uri().query());
                        hub_hyper::sse::subscribe_with(&req, &hub, config.sse, options)
                    }
                    _ => {
                        let options = user(req.headers().get("x-user").map(|v| v.as_bytes()));
                        hub_hyper::upgrade_with(req, &hub, options, Default::default())
                    }
                };
                async move { Ok::<_, std::convert::Infallible>(response) }
            };
            let mut builder = hub_hyper::http1_builder();
            builder.header_read_timeout(config.handshake_timeout);
            tokio::spawn(hub_hyper::serve_with(
                builder,
                listener,
                service,
                std::future::pending(),
            ));
        }
        Adapter::Warp => {
            use warp::Filter;
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let sse_hub = hub.clone();
            let stream = warp::path!("sse-stream")
                .and(hub_warp::sse::stream(config.sse))
                .map(
                    move |new: Option<(SseStream, warp::reply::Response)>| match new {
                        Some((stream, response)) => {
                            let _ = tx.send(stream);
                            response
                        }
                        None => hub_warp::sse::not_acceptable(),
                    },
                );
            let news_hub = hub.clone();
            let subscribe_news = warp::path!("sse-news").and(hub_warp::request()).map(
                move |parts: hub_warp::RequestParts| {
                    hub_warp::sse::subscribe_parts(&parts, &news_hub, config.sse, news())
                },
            );
            let topics_hub = hub.clone();
            let subscribe_topics = warp::path!("sse-topics")
                .and(warp::query::raw().or(warp::any().map(String::new)).unify())
                .and(hub_warp::request())
                .map(move |query: String, parts: hub_warp::RequestParts| {
                    let options = topics(Some(&query));
                    hub_warp::sse::subscribe_parts(&parts, &topics_hub, config.sse, options)
                });
            let subscribe =
                warp::path!("sse-hub").and(hub_warp::sse::subscribe(sse_hub, config.sse));
            let ws = hub_warp::request().and_then(move |parts: hub_warp::RequestParts| {
                let options = user(parts.headers().get("x-user").map(|v| v.as_bytes()));
                let answer = parts.upgrade(&hub, options, Default::default());
                async move { answer }
            });
            let routes = stream
                .or(subscribe)
                .unify()
                .or(subscribe_news)
                .unify()
                .or(subscribe_topics)
                .unify()
                .or(ws)
                .unify()
                .recover(hub_warp::recover)
                .unify();
            let mut builder = hub_hyper::http1_builder();
            builder.header_read_timeout(config.handshake_timeout);
            tokio::spawn(hub_warp::serve_with(
                builder,
                listener,
                routes,
                std::future::pending(),
            ));
        }
        // the bare server uses actix-web's handler path for both
        Adapter::Actix | Adapter::ActixNative => {
            use actix_web::{web, HttpRequest, HttpResponse};
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    actix_web::HttpServer::new(move || {
                        let hub = hub.clone();
                        let sse_hub = hub.clone();
                        let news_hub = hub.clone();
                        let topics_hub = hub.clone();
                        let tx = tx.clone();
                        actix_web::App::new()
                            .route(
                                "/sse-stream",
                                web::to(move |req: HttpRequest| {
                                    let tx = tx.clone();
                                    async move {
                                        match hub_actix::sse::stream(&req, config.sse) {
                                            Some((stream, response)) => {
                                                let _ = tx.send(stream);
                                                response
                                            }
                                            None => hub_actix::sse::not_acceptable(),
                                        }
                                    }
                                }),
                            )
                            .route(
                                "/sse-hub",
                                web::to(move |req: HttpRequest| {
                                    let hub = sse_hub.clone();
                                    async move { hub_actix::sse::subscribe(&req, &hub, config.sse) }
                                }),
                            )
                            .route(
                                "/sse-news",
                                web::to(move |req: HttpRequest| {
                                    let hub = news_hub.clone();
                                    async move {
                                        hub_actix::sse::subscribe_with(
                                            &req,
                                            &hub,
                                            config.sse,
                                            news(),
                                        )
                                    }
                                }),
                            )
                            .route(
                                "/sse-topics",
                                web::to(move |req: HttpRequest| {
                                    let hub = topics_hub.clone();
                                    async move {
                                        let options = topics(Some(req.query_string()));
                                        hub_actix::sse::subscribe_with(
                                            &req, &hub, config.sse, options,
                                        )
                                    }
                                }),
                            )
                            .default_service(web::to(
                                move |req: HttpRequest, body: web::Payload| {
                                    let hub = hub.clone();
                                    async move {
                                        let options =
                                            user(req.headers().get("x-user").map(|v| v.as_bytes()));
                                        let response: HttpResponse = hub_actix::upgrade_with(
                                            &req,
                                            body,
                                            &hub,
                                            options,
                                            Default::default(),
                                        );
                                        response
                                    }
                                },
                            ))
                    })
                    .client_request_timeout(config.handshake_timeout)
                    .h1_allow_half_closed(false)
                    .disable_signals()
                    .workers(1)
                    .listen(listener)
                    .unwrap()
                    .run()
                    .await
                    .unwrap();
                });
            });
        }
    }
    Bare { addr, streams }
}

/// Serves `hub` with the default bare configuration; returns its address.
pub async fn serve_hub(adapter: Adapter, hub: &Hub) -> SocketAddr {
    serve_bare(adapter, hub, BareConfig::default()).await.addr
}
