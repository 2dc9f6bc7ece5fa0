//! The example server's routes and settings, shared by `main` and the test-suite.
//!
//! The contract every framework's example follows:
//! - `GET /`: a chat page using the seed's browser client.
//! - `GET /ws/chat`: every inbound message is broadcast to every client.
//! - `GET /ws/echo`: every inbound message is sent back to its sender only; messages up to
//!   16 MiB (for conformance tools).
//! - `GET /events/feed`: Server-Sent Events, the seed's feed: a `tick` event every second with
//!   `{"time": RFC 3339, "count": chat clients}`.
//! - `GET /events/chat`: Server-Sent Events subscription to the chat hub; with its history of
//!   the last [`CHAT_HISTORY`] messages a reconnecting `EventSource` resumes where it left.
//! - env `HOST` (127.0.0.1), `PORT` (8080), `ALLOWED_ORIGINS` (comma-separated; switches the
//!   origin policy to that list), `PING_INTERVAL_MS` (54000), `PONG_WAIT_MS` (60000).

use http::{header, Method, Request, Response, StatusCode};
use hub_core::{ConnectOptions, Hub, HubConfig, OriginPolicy};
use hub_hyper::sse::{self, SseConfig};
use hub_hyper::{Body, WsConfig};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// The page served at `/`, shared by every framework's example.
pub const INDEX_HTML: &str = include_str!("../../assets/index.html");

/// Largest message `/ws/echo` accepts.
pub const ECHO_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Chat messages kept for resuming subscribers.
pub const CHAT_HISTORY: usize = 1000;

/// How often `/events/feed` ticks.
pub const TICK: Duration = Duration::from_secs(1);

/// The example's settings, normally read from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on (`HOST`:`PORT`).
    pub addr: SocketAddr,
    /// `ALLOWED_ORIGINS`, if set.
    pub allowed_origins: Option<Vec<String>>,
    /// `PING_INTERVAL_MS`.
    pub ping_interval: Duration,
    /// `PONG_WAIT_MS`.
    pub pong_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        let defaults = HubConfig::default();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: None,
            ping_interval: defaults.ping_interval,
            pong_wait: defaults.pong_wait,
        }
    }
}

impl Settings {
    /// Reads `HOST`, `PORT`, `ALLOWED_ORIGINS`, `PING_INTERVAL_MS` and `PONG_WAIT_MS`.
    ///
    /// # Errors
    /// A message naming the variable that does not parse.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Settings::from_env`], from any lookup function.
    ///
    /// # Errors
    /// A message naming the variable that does not parse.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut settings = Settings::default();
        let host = var("HOST").unwrap_or_else(|| "127.0.0.1".into());
        let port: u16 = match var("PORT") {
            Some(p) => p
                .parse()
                .map_err(|_| format!("PORT: not a port number: {p:?}"))?,
            None => 8080,
        };
        let ip: std::net::IpAddr = if host == "localhost" {
            [127, 0, 0, 1].into()
        } else {
            host.parse()
                .map_err(|_| format!("HOST: not an IP address: {host:?}"))?
        };
        settings.addr = SocketAddr::new(ip, port);
        if let Some(list) = var("ALLOWED_ORIGINS") {
            let origins: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            settings.allowed_origins = Some(origins);
        }
        let ms = |name: &str, default: Duration| -> Result<Duration, String> {
            match var(name) {
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Duration::from_millis)
                    .ok_or_else(|| format!("{name}: not a positive number of milliseconds: {v:?}")),
                None => Ok(default),
            }
        };
        settings.ping_interval = ms("PING_INTERVAL_MS", settings.ping_interval)?;
        settings.pong_wait = ms("PONG_WAIT_MS", settings.pong_wait)?;
        Ok(settings)
    }

    /// The hub configuration these settings describe.
    pub fn hub_config(&self) -> HubConfig {
        let origin = match &self.allowed_origins {
            Some(list) => OriginPolicy::allow_list(list.iter().cloned()),
            None => OriginPolicy::AllowAll,
        };
        HubConfig::default()
            .ping_interval(self.ping_interval)
            .pong_wait(self.pong_wait)
            .origin(origin)
    }
}

/// The example's hubs.
#[derive(Clone, Debug)]
pub struct App {
    /// `/ws/chat` and `/events/chat`: every message to everyone.
    pub chat: Hub,
    /// `/ws/echo`: every message back to its sender.
    pub echo: Hub,
    /// Settings of the event streams.
    pub sse: SseConfig,
}

impl App {
    /// Builds the hubs from a base configuration.
    pub fn new(config: HubConfig) -> Self {
        Self::with_sse(config, SseConfig::default())
    }

    /// Builds the hubs from a base configuration and event-stream settings. The chat keeps
    /// the configuration's history, or [`CHAT_HISTORY`] messages if it has none.
    pub fn with_sse(config: HubConfig, sse: SseConfig) -> Self {
        let chat_config = match config.history {
            0 => config.clone().history(CHAT_HISTORY),
            _ => config.clone(),
        };
        let chat = Hub::with_config(chat_config);
        chat.on_message(|hub, msg| {
            hub.broadcast(msg.message);
        });
        let echo = Hub::with_config(config.max_message_size(ECHO_MAX_MESSAGE));
        echo.on_message(|_hub, msg| {
            // A client too slow to take its own echoes is evicted; nothing to do here.
            let _ = msg.client.send(msg.message);
        });
        Self { chat, echo, sse }
    }

    /// Routes one request.
    pub fn route<B>(&self, req: Request<B>) -> Response<Body> {
        match req.uri().path() {
            "/ws/chat" => hub_hyper::upgrade(req, &self.chat),
            // Large messages: a bigger read buffer saves syscalls.
            "/ws/echo" => hub_hyper::upgrade_with(
                req,
                &self.echo,
                ConnectOptions::websocket(),
                WsConfig::default().read_buffer_size(4096),
            ),
            "/events/chat" => sse::subscribe(&req, &self.chat, self.sse),
            "/events/feed" => self.feed(&req),
            "/" if req.method() == Method::GET || req.method() == Method::HEAD => {
                let mut response = Response::new(hub_hyper::full(INDEX_HTML));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            _ => {
                let mut response = Response::new(hub_hyper::full("not found\n"));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        }
    }

    /// The seed's feed: a `tick` every second with the time and the chat's client count, on
    /// its own stream (Kashvi's `sse.New` and `stream.Send`).
    fn feed<B>(&self, req: &Request<B>) -> Response<Body> {
        let Some((stream, response)) = sse::stream(req, self.sse) else {
            return sse::not_acceptable();
        };
        let chat = self.chat.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                        let data = serde_json::json!({
                            "time": time.to_string(),
                            "count": chat.client_count(),
                        });
                        if let Err(error) = stream.send("tick", &data) {
                            tracing::debug!(%error, "feed ended");
                            break;
                        }
                    }
                    () = stream.closed() => break,
                    () = shut_down(&chat) => {
                        stream.close();
                        break;
                    }
                }
            }
        });
        response
    }

    /// Starts a graceful shutdown of every hub and waits (bounded by the hubs' shutdown
    /// timeout plus a margin) for their connections to end.
    pub async fn shutdown(&self) {
        self.chat.shutdown();
        self.echo.shutdown();
        let limit = self.chat.config().shutdown_timeout + Duration::from_secs(2);
        let _ = tokio::time::timeout(limit, async {
            self.chat.closed().await;
            self.echo.closed().await;
        })
        .await;
    }
}

/// Resolves once `hub` starts shutting down.
async fn shut_down(hub: &Hub) {
    while !hub.is_shutting_down() {
        hub.changed().await;
    }
}

/// Serves the example on `listener` until `shutdown` resolves, then shuts the hubs down
/// gracefully (1001 to every client, event streams ended) while the server stops accepting
/// and finishes in-flight requests.
pub async fn run(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let routes = app.clone();
    let service = move |req: Request<hyper::body::Incoming>| {
        let response = routes.route(req);
        async move { Ok::<_, Infallible>(response) }
    };
    let hubs = app.clone();
    let shutdown = async move {
        shutdown.await;
        // Event streams are in-flight responses: end them now, or the server's graceful
        // drain would wait for them.
        hubs.chat.shutdown();
        hubs.echo.shutdown();
    };
    hub_hyper::serve(listener, service, shutdown).await;
    app.shutdown().await;
}
