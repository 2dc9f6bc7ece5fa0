//! The example on actix-web: the routes of [`example_common`]'s contract, as handlers taking
//! `web::Data<App>`. WebSocket upgrades take the lean path by default ([`Upgrades`]).

use actix_http::{HttpService, Request};
use actix_service::map_config;
use actix_web::dev::AppConfig;
use actix_web::{web, HttpRequest, HttpResponse, HttpServer};
use example_common::{App, ECHO_READ_BUFFER, HANDSHAKE_TIMEOUT, INDEX_HTML};
use hub_actix::sse;
use hub_actix::WsConfig;
use hub_core::ConnectOptions;
use std::future::Future;

/// Upgrades into `hub`, behind the app's authorization step when it has one (`AUTH_TOKEN`).
async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    app: &App,
    hub: &hub_core::Hub,
    config: WsConfig,
) -> HttpResponse {
    let options = ConnectOptions::websocket();
    match &app.auth {
        Some(auth) => hub_actix::upgrade_authorized(&req, body, hub, auth, options, config).await,
        None => hub_actix::upgrade_with(&req, body, hub, options, config),
    }
}

async fn chat(req: HttpRequest, body: web::Payload, app: web::Data<App>) -> HttpResponse {
    upgrade(req, body, &app, &app.chat, WsConfig::default()).await
}

async fn echo(req: HttpRequest, body: web::Payload, app: web::Data<App>) -> HttpResponse {
    let config = WsConfig::default().read_buffer_size(ECHO_READ_BUFFER);
    upgrade(req, body, &app, &app.echo, config).await
}

async fn events_chat(req: HttpRequest, app: web::Data<App>) -> HttpResponse {
    match example_common::rooms::chat_events(Some(req.query_string())) {
        Ok(options) => match &app.auth {
            Some(auth) => sse::subscribe_authorized(&req, &app.chat, auth, app.sse, options).await,
            None => sse::subscribe_with(&req, &app.chat, app.sse, options),
        },
        Err(body) => HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body(body),
    }
}

async fn feed(req: HttpRequest, app: web::Data<App>) -> HttpResponse {
    match sse::stream(&req, app.sse) {
        Some((stream, response)) => {
            let app = app.get_ref().clone();
            actix_web::rt::spawn(async move { app.feed(stream).await });
            response
        }
        None => sse::not_acceptable(),
    }
}

async fn metrics(app: web::Data<App>) -> HttpResponse {
    let (status, body, content_type) = app.metrics();
    text(status, body, content_type)
}

async fn healthz(app: web::Data<App>) -> HttpResponse {
    let (status, body) = app.healthz();
    text(status, body.into(), example_common::PLAIN)
}

/// A response with `status`, `body` and its `Content-Type`.
fn text(status: u16, body: String, content_type: &'static str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
    HttpResponse::build(status)
        .content_type(content_type)
        .body(body)
}

async fn index(req: HttpRequest) -> HttpResponse {
    if req.method() == actix_web::http::Method::GET || req.method() == actix_web::http::Method::HEAD
    {
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(INDEX_HTML)
    } else {
        not_found().await
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("not found\n")
}

/// Adds the contract's routes to an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/chat", web::to(chat))
        .route("/ws/echo", web::to(echo))
        .route("/events/chat", web::to(events_chat))
        .route("/events/feed", web::to(feed))
        .route("/metrics", web::to(metrics))
        .route("/healthz", web::to(healthz))
        .route("/", web::to(index))
        .default_service(web::to(not_found));
}

/// How WebSocket upgrades reach the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upgrades {
    /// actix-web handlers (`hub_actix::upgrade`); actix's dispatcher stays under each client.
    Native,
    /// actix-http's upgrade service (`hub_actix::lean`): the raw socket goes to the hub.
    Lean,
}

/// Serves the example with [`Upgrades::Lean`]; see [`run_with`].
///
/// # Errors
/// If the listener cannot be used.
pub async fn run(
    listener: std::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_with(listener, app, shutdown, Upgrades::Lean).await
}

type LeanRoute = (
    hub_core::Hub,
    ConnectOptions,
    WsConfig,
    Option<hub_core::Authorizer>,
);

fn lean_route(app: &App, req: &Request) -> Option<LeanRoute> {
    let (hub, config) = match req.path() {
        "/ws/chat" => (&app.chat, WsConfig::default()),
        "/ws/echo" => (
            &app.echo,
            WsConfig::default().read_buffer_size(ECHO_READ_BUFFER),
        ),
        _ => return None,
    };
    let options = ConnectOptions::websocket();
    Some((hub.clone(), options, config, app.auth.clone()))
}

/// What both binaries' `main` does inside `#[actix_web::main]`: [`example_common::startup`],
/// then [`run_with`] until SIGTERM or Ctrl-C; the exit code to end with.
pub async fn main(name: &str, upgrades: Upgrades) -> std::process::ExitCode {
    // before the address is announced: from then on SIGTERM or Ctrl-C drains
    let stop = example_common::shutdown_signal();
    let (listener, app) = match example_common::startup(name).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    match run_with(listener, app, stop, upgrades).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves the example on `listener` until `shutdown` resolves; then the hubs shut down (1001
/// to every client, event streams end) and the server stops gracefully. Run it inside an
/// actix system (`#[actix_web::main]` or `actix_web::rt::System`).
///
/// # Errors
/// If the listener cannot be used.
pub async fn run_with(
    listener: std::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    upgrades: Upgrades,
) -> std::io::Result<()> {
    let data = web::Data::new(app.clone());
    let server = match upgrades {
        Upgrades::Native => HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .configure(configure)
        })
        .client_request_timeout(HANDSHAKE_TIMEOUT)
        // A client that closes its side ends its event stream at once, as on hyper.
        .h1_allow_half_closed(false)
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
        .run(),
        Upgrades::Lean => {
            let routes = app.clone();
            actix_server::Server::build()
                .listen("example-actix", listener, move || {
                    let routes = routes.clone();
                    let route = move |req: &Request| lean_route(&routes, req);
                    let app = || {
                        actix_web::App::new()
                            .app_data(data.clone())
                            .configure(configure)
                    };
                    // an upgrade request to a route that is no WebSocket goes to the same routes
                    let fallback = map_config(app(), |_| AppConfig::default());
                    HttpService::build()
                        .client_request_timeout(HANDSHAKE_TIMEOUT)
                        .h1_allow_half_closed(false)
                        .upgrade(hub_actix::lean::authorized_upgrade_service_or(
                            route, fallback,
                        ))
                        .finish(map_config(app(), |_| AppConfig::default()))
                        .tcp()
                })?
                .disable_signals()
                .shutdown_timeout(10)
                .run()
        }
    };
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);
    shutdown.await;
    app.begin_shutdown();
    handle.stop(true).await;
    let _ = running.await;
    app.shutdown().await;
    Ok(())
}
