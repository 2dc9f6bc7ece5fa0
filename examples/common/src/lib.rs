//! The contract every framework's example follows, in one place:
//!
//! - `GET /`: a chat page using the seed's browser client ([`INDEX_HTML`]).
//! - `GET /ws/chat`: every inbound message is broadcast to every client, except the rooms'
//!   messages (JSON text, [`rooms`]):
//!   - `{"type":"join","room":"r"}` joins room `r` (a hub topic of that name): the reply is
//!     `{"type":"joined","room":"r"}`, also when already a member;
//!   - `{"type":"leave","room":"r"}` leaves it: `{"type":"left","room":"r"}`;
//!   - `{"type":"chat","room":"r","text":".."}` goes, unchanged, to the members of `r` only
//!     (the sender too when it is one; no reply otherwise). A `chat` without `room`, and any
//!     other message (not JSON, another type), goes to everyone as before;
//!   - a room name that is invalid (empty, over 256 bytes, a control character), a `room`
//!     that is not a string, a leave of a room not joined, or a join past the per-client
//!     limit ([`hub_core::HubConfig::max_topics_per_client`], 1,024) gets
//!     `{"type":"error","error":"<why>"}`, to the sender only; the connection stays open.
//!
//!   A member of rooms still gets every message to everyone; messages to a room carry no id
//!   on the WebSocket (as the seed's broadcasts).
//! - `GET /ws/echo`: every inbound message is sent back to its sender only; messages up to
//!   16 MiB (for conformance tools).
//! - `GET /events/feed`: Server-Sent Events, the seed's feed: a `tick` event every second with
//!   `{"time": RFC 3339, "count": chat clients}`.
//! - `GET /events/chat`: Server-Sent Events subscription to the chat hub; with its history of
//!   the last [`CHAT_HISTORY`] messages a reconnecting `EventSource` resumes where it left.
//!   `GET /events/chat?room=r` (URL-encoded) follows room `r`: its messages and those to
//!   everyone (what a WebSocket member of `r` alone gets), with ids from the hub's one
//!   sequence, so `Last-Event-ID` resumes the room without a gap or a duplicate. An invalid
//!   room name: 400, `text/plain`, `invalid room "<name>": <why>`.
//! - env `HOST` (127.0.0.1), `PORT` (8080), `ALLOWED_ORIGINS` (comma-separated; switches the
//!   origin policy to that list; `*` alone allows every origin, explicitly and without the
//!   default's warning; empty means unset; `*` inside a list is refused at start, exit code 2),
//!   `PING_INTERVAL_MS` (54000), `PONG_WAIT_MS` (60000),
//!   `REDIS_URL` (unset: the in-memory hub; set: the chat, its rooms included, is shared
//!   through Redis with every server on it, whatever its framework).
//! - env `RATE_LIMIT_PER_S` (unset or empty: off): a per-client limit on inbound messages
//!   a second on every WebSocket route, with a burst of as many; a client over it is closed
//!   with 1008 "rate limit" ([`hub_core::RateLimit::per_second`]).
//! - env `MAX_CONNECTIONS` (unset or empty: unlimited): a limit on the clients of each hub
//!   (the chat's WebSocket and SSE members together; the echo's); an upgrade or subscription
//!   over it gets 503 with `Retry-After`, and nothing already connected is disturbed. Either
//!   variable not a positive integer stops the server at start, exit code 2.
//! - `GET /metrics`: the hubs' stats in the OpenMetrics text format ([`hub_metrics`],
//!   `Content-Type` [`hub_metrics::CONTENT_TYPE`]), one `hub` label per hub: `chat` and
//!   `echo` (also their [`HubConfig::name`], in every connection's tracing span).
//! - `GET /healthz`: 200 `ok` while serving, 503 `draining` once shutdown has begun.
//! - SIGTERM (what Docker and Kubernetes send) and Ctrl-C (SIGINT) alike: the server stops
//!   accepting, upgrades and subscriptions still arriving get 503 with `Retry-After`, every
//!   WebSocket gets 1001 after its queue flushes (the closes spread over
//!   [`HubConfig::shutdown_spread`], 3 s), event streams end, and the process exits 0 within
//!   the shutdown timeout ([`HubConfig::shutdown_timeout`], 10 s).
//! - env `AUTH_TOKEN` (unset or empty: no authentication): when set, `/ws/chat`, `/ws/echo`
//!   and `/events/chat` require it, checked before any upgrade ([`token_authorizer`]). A
//!   browser's WebSocket offers it as subprotocols, `new WebSocket(url, ["bearer", token])`,
//!   and the 101 answers `Sec-WebSocket-Protocol: bearer`; an `EventSource` sends
//!   `?token=<token>` (URL-safe characters only: the value is compared as sent); any other
//!   client may send `Authorization: Bearer <token>`. A missing or wrong token gets 401 with
//!   `WWW-Authenticate: Bearer`, counted as a refused upgrade. Tokens are compared in constant
//!   time.

pub mod rooms;

use hub_core::{
    Admission, AuthRequest, Authorizer, Hub, HubConfig, OriginPolicy, RateLimit, Refusal,
};
use hub_metrics::prometheus_client::registry::Registry;
use hub_metrics::HubMetrics;
use sse_core::{SseConfig, SseStream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use hub_metrics;
/// SIGTERM or Ctrl-C, both meaning "drain": call it before the address is announced.
pub use hub_tokio::shutdown_signal;

/// The chat hub's name: its [`HubConfig::name`] and its `hub` label in `/metrics`.
pub const CHAT: &str = "chat";

/// The echo hub's name: its [`HubConfig::name`] and its `hub` label in `/metrics`.
pub const ECHO: &str = "echo";

/// `Content-Type` of the examples' plain-text answers.
pub const PLAIN: &str = "text/plain; charset=utf-8";

/// The page served at `/`.
pub const INDEX_HTML: &str = include_str!("../index.html");

/// Largest message `/ws/echo` accepts.
pub const ECHO_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Read buffer of `/ws/echo` connections: large messages take fewer syscalls.
pub const ECHO_READ_BUFFER: usize = 4096;

/// Chat messages kept for resuming subscribers.
pub const CHAT_HISTORY: usize = 1000;

/// How often `/events/feed` ticks.
pub const TICK: Duration = Duration::from_secs(1);

/// How long a client may take to send its request head.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `ALLOWED_ORIGINS=*`: every origin, stated explicitly.
pub const ALLOW_ALL: &str = "*";

/// The example's settings, normally read from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on (`HOST`:`PORT`).
    pub addr: SocketAddr,
    /// `ALLOWED_ORIGINS`, if set and not empty; `["*"]` allows every origin.
    pub allowed_origins: Option<Vec<String>>,
    /// `PING_INTERVAL_MS`.
    pub ping_interval: Duration,
    /// `PONG_WAIT_MS`.
    pub pong_wait: Duration,
    /// `REDIS_URL`, if set: the chat hub joins the cluster of every server with the same Redis.
    pub redis_url: Option<String>,
    /// `AUTH_TOKEN`, if set and not empty: the token the protected routes require.
    pub auth_token: Option<String>,
    /// `RATE_LIMIT_PER_S`, if set: inbound messages a second per WebSocket client (burst as
    /// many, close 1008 past it).
    pub rate_limit_per_s: Option<u32>,
    /// `MAX_CONNECTIONS`, if set: clients per hub.
    pub max_connections: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        let defaults = HubConfig::default();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: None,
            ping_interval: defaults.ping_interval,
            pong_wait: defaults.pong_wait,
            redis_url: None,
            auth_token: None,
            rate_limit_per_s: None,
            max_connections: None,
        }
    }
}

impl Settings {
    /// Reads `HOST`, `PORT`, `ALLOWED_ORIGINS`, `PING_INTERVAL_MS`, `PONG_WAIT_MS`,
    /// `REDIS_URL`, `RATE_LIMIT_PER_S`, `MAX_CONNECTIONS` and `AUTH_TOKEN`.
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
        settings.redis_url = var("REDIS_URL").filter(|url| !url.is_empty());
        settings.auth_token = var("AUTH_TOKEN").filter(|token| !token.is_empty());
        if let Some(list) = var("ALLOWED_ORIGINS") {
            let origins: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if origins.len() > 1 && origins.iter().any(|o| o == ALLOW_ALL) {
                return Err(format!(
                    "ALLOWED_ORIGINS: '*' allows every origin and cannot be part of a list: {list:?}"
                ));
            }
            // empty (or only commas) means unset, not "refuse everyone"
            settings.allowed_origins = (!origins.is_empty()).then_some(origins);
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
        settings.rate_limit_per_s = positive(&var, "RATE_LIMIT_PER_S", "messages a second")?;
        settings.max_connections = positive(&var, "MAX_CONNECTIONS", "connections")?;
        // every check of the combination runs now, at start
        settings.hub_config()?;
        Ok(settings)
    }

    /// The hub configuration these settings describe: the one place settings become a
    /// [`HubConfig`], so every check of the combination belongs here.
    ///
    /// # Errors
    /// A message naming the setting that makes the configuration invalid.
    pub fn hub_config(&self) -> Result<HubConfig, String> {
        let origin = match self.allowed_origins.as_deref() {
            Some([all]) if all == ALLOW_ALL => OriginPolicy::AllowAllExplicit,
            Some(list) if list.iter().any(|o| o == ALLOW_ALL) => {
                return Err("ALLOWED_ORIGINS: '*' cannot be part of a list".into());
            }
            Some(list) => OriginPolicy::allow_list(list.iter().cloned()),
            None => OriginPolicy::AllowAll,
        };
        let mut config = HubConfig::default()
            .ping_interval(self.ping_interval)
            .pong_wait(self.pong_wait)
            .origin(origin);
        if let Some(rate) = self.rate_limit_per_s {
            config = config.rate_limit(RateLimit::per_second(rate));
        }
        if let Some(clients) = self.max_connections {
            config = config.max_connections(clients);
        }
        config.validate().map_err(|error| match error {
            hub_core::ConfigError::PingNotBeforePongWait { .. } => format!(
                "PING_INTERVAL_MS ({}) must be below PONG_WAIT_MS ({}): a client is pinged \
                 before the hub gives up on it (Kashvi: 54000 and 60000)",
                self.ping_interval.as_millis(),
                self.pong_wait.as_millis()
            ),
            other => other.to_string(),
        })?;
        Ok(config)
    }
}

/// A variable that is unset, empty, or a positive integer (`what` names its unit in the
/// error).
fn positive<T: std::str::FromStr + Default + PartialEq>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    what: &str,
) -> Result<Option<T>, String> {
    match var(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<T>() {
            Ok(n) if n != T::default() => Ok(Some(n)),
            _ => Err(format!("{name}: not a positive number of {what}: {v:?}")),
        },
    }
}

/// The example's hubs, stream settings and metrics.
#[derive(Clone, Debug)]
pub struct App {
    /// `/ws/chat` and `/events/chat`: every message to everyone, or to a room's members.
    pub chat: Hub,
    /// `/ws/echo`: every message back to its sender.
    pub echo: Hub,
    /// Settings of the event streams.
    pub sse: SseConfig,
    /// The authorization step of `/ws/chat`, `/ws/echo` and `/events/chat` (`AUTH_TOKEN`);
    /// `None`: open to all.
    pub auth: Option<Authorizer>,
    /// What `GET /metrics` encodes: both hubs, labelled `chat` and `echo`.
    pub metrics: Arc<Registry>,
}

impl App {
    /// Builds the hubs from a base configuration.
    ///
    /// # Errors
    /// The configuration is invalid ([`HubConfig::validate`]).
    pub fn new(config: HubConfig) -> Result<Self, hub_core::ConfigError> {
        Self::with_sse(config, SseConfig::default())
    }

    /// Builds the hubs from a base configuration and event-stream settings. The chat keeps
    /// the configuration's history, or [`CHAT_HISTORY`] messages if it has none.
    ///
    /// # Errors
    /// The configuration is invalid ([`HubConfig::validate`]).
    pub fn with_sse(config: HubConfig, sse: SseConfig) -> Result<Self, hub_core::ConfigError> {
        let chat_config = match config.history {
            0 => config.clone().history(CHAT_HISTORY),
            _ => config.clone(),
        };
        let chat = Hub::with_config(chat_config.name(CHAT))?;
        chat.on_message(rooms::on_chat_message);
        let echo = Hub::with_config(config.max_message_size(ECHO_MAX_MESSAGE).name(ECHO))?;
        echo.on_message(|_hub, msg| {
            // A client too slow to take its own echoes is evicted; nothing to do here.
            let _ = msg.client.send(msg.message);
        });
        let mut registry = Registry::default();
        let metrics = HubMetrics::register(&mut registry);
        for (name, hub) in [(CHAT, &chat), (ECHO, &echo)] {
            // a fresh registry has no hub of either name: this cannot fail
            if let Err(error) = metrics.add(name, hub) {
                tracing::error!(%error, "the {name} hub is not in /metrics");
            }
        }
        Ok(Self {
            chat,
            echo,
            sse,
            auth: None,
            metrics: Arc::new(registry),
        })
    }

    /// `GET /healthz`: 200 `ok` while serving, 503 `draining` once shutdown has begun.
    pub fn healthz(&self) -> (u16, &'static str) {
        if self.chat.is_shutting_down() || self.echo.is_shutting_down() {
            (503, "draining\n")
        } else {
            (200, "ok\n")
        }
    }

    /// `GET /metrics`: the status, the body and its `Content-Type` (OpenMetrics text, or a
    /// plain-text 500 in the unexpected case that encoding fails).
    pub fn metrics(&self) -> (u16, String, &'static str) {
        match hub_metrics::encode(&self.metrics) {
            Ok(text) => (200, text, hub_metrics::CONTENT_TYPE),
            Err(error) => {
                tracing::error!(%error, "encoding the metrics failed");
                (500, "metrics unavailable\n".into(), PLAIN)
            }
        }
    }

    /// With `token` (`Some`), the protected routes require it ([`token_authorizer`]).
    pub fn with_auth_token(mut self, token: Option<&str>) -> Self {
        self.auth = token.map(token_authorizer);
        self
    }

    /// Joins the chat hub to every server on the Redis at `url` (`hub_redis`, channel
    /// `hub:chat`). Call it inside the tokio runtime.
    ///
    /// # Errors
    /// A URL that does not parse.
    pub fn join_cluster(
        &self,
        url: &str,
    ) -> Result<std::sync::Arc<hub_redis::RedisBackplane>, String> {
        hub_redis::attach(&self.chat, url, hub_redis::RedisConfig::new("chat"))
            .map_err(|e| e.to_string())
    }

    /// Starts the hubs' graceful shutdown: 1001 to every client, event streams end, later
    /// upgrades get 503. Call it before the server drains its in-flight requests.
    pub fn begin_shutdown(&self) {
        self.chat.shutdown();
        self.echo.shutdown();
    }

    /// [`App::begin_shutdown`], then waits (bounded by the shutdown timeout plus a margin)
    /// for every connection to end.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let limit = self.chat.config().shutdown_timeout + Duration::from_secs(2);
        let _ = tokio::time::timeout(limit, async {
            self.chat.closed().await;
            self.echo.closed().await;
        })
        .await;
    }

    /// Writes the seed's feed to `stream`: a `tick` every second with the time and the chat's
    /// client count, until the client leaves or the chat shuts down.
    pub async fn feed(&self, stream: SseStream) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                    let data = serde_json::json!({
                        "time": time.to_string(),
                        "count": self.chat.client_count(),
                    });
                    if let Err(error) = stream.send("tick", &data) {
                        tracing::debug!(%error, "feed ended");
                        break;
                    }
                }
                () = stream.closed() => break,
                () = shut_down(&self.chat) => {
                    stream.close();
                    break;
                }
            }
        }
    }
}

/// The examples' authorization step for `AUTH_TOKEN`: the token from
/// [`AuthRequest::bearer_token`] (`Authorization: Bearer`, or the subprotocols
/// `bearer, <token>`), else the `token` query parameter, compared with `token` in constant
/// time. Admitted: the subprotocol `bearer` when the client offered it. Refused: 401 with
/// `WWW-Authenticate: Bearer`.
pub fn token_authorizer(token: &str) -> Authorizer {
    let expected: std::sync::Arc<[u8]> = token.as_bytes().into();
    Authorizer::new(move |req: AuthRequest| {
        let given = req.bearer_token().or_else(|| req.query_param("token"));
        let answer = if given.is_some_and(|given| same_token(given.as_bytes(), &expected)) {
            let admission = Admission::new();
            // the keyword as the client spelled it: the 101 must echo one of its values
            // verbatim, and bearer_token takes `Bearer` as well as `bearer`
            let keyword = req
                .protocols
                .iter()
                .find(|p| p.eq_ignore_ascii_case("bearer"));
            Ok(match keyword {
                Some(keyword) => admission.protocol(keyword),
                None => admission,
            })
        } else {
            Err(Refusal::new(401)
                .header("www-authenticate", "Bearer")
                .body("missing or invalid token\n"))
        };
        std::future::ready(answer)
    })
}

/// Whether `given` is `expected`, in a time that depends on `expected`'s length only: every
/// byte of it is compared, whatever `given` holds.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = usize::from(given.len() != expected.len());
    for (i, byte) in expected.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ byte);
    }
    std::hint::black_box(diff) == 0
}

/// Resolves once `hub` starts shutting down.
pub async fn shut_down(hub: &Hub) {
    loop {
        // notification first, then the check: a shutdown in between is not missed
        let changed = hub.changed();
        if hub.is_shutting_down() {
            return;
        }
        changed.await;
    }
}

/// How long [`startup`] waits for the chat to join the cluster before serving anyway.
pub const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What every example's `main` does first, inside its runtime: logging, settings from the
/// environment, the listening socket, the hubs, and with `REDIS_URL` the chat's backplane. On
/// failure it prints why and returns the exit code to end with.
///
/// # Errors
/// The exit code: 2 for a configuration error, 1 if the address cannot be bound.
pub async fn startup(name: &str) -> Result<(std::net::TcpListener, App), std::process::ExitCode> {
    init_tracing();
    let settings = Settings::from_env().map_err(|error| {
        eprintln!("configuration error: {error}");
        std::process::ExitCode::from(2)
    })?;
    let config = settings.hub_config().map_err(|error| {
        eprintln!("configuration error: {error}");
        std::process::ExitCode::from(2)
    })?;
    let listener = std::net::TcpListener::bind(settings.addr).map_err(|error| {
        eprintln!("cannot listen on {}: {error}", settings.addr);
        std::process::ExitCode::FAILURE
    })?;
    let app = App::new(config)
        .map_err(|error| {
            eprintln!("configuration error: {error}");
            std::process::ExitCode::from(2)
        })?
        .with_auth_token(settings.auth_token.as_deref());
    if let Some(url) = &settings.redis_url {
        let backplane = app.join_cluster(url).map_err(|error| {
            eprintln!("REDIS_URL: {error}");
            std::process::ExitCode::from(2)
        })?;
        // join before taking clients, so the first broadcasts already cross nodes; a Redis
        // that is not there yet does not keep the server from starting
        let up = backplane.until(hub_redis::BackplaneState::Up);
        match tokio::time::timeout(JOIN_WAIT, up).await {
            Ok(()) => {
                // never the password: it would be in every log line shipped anywhere
                let url = hub_redis::redact_url(url);
                tracing::info!("the chat is shared with every server on the same Redis ({url})");
            }
            Err(_) => {
                let url = hub_redis::redact_url(url);
                tracing::warn!(
                    "Redis at {url} not reachable yet: the chat is local until it is (retrying)"
                );
            }
        }
    }
    let addr = listener.local_addr().unwrap_or(settings.addr);
    tracing::info!("{name} listening on http://{addr}/");
    Ok((listener, app))
}

/// [`startup`] for a server that takes a tokio listener (hyper, warp).
///
/// # Errors
/// As [`startup`]; 1 also if the listener cannot be registered with the runtime.
pub async fn startup_tokio(
    name: &str,
) -> Result<(tokio::net::TcpListener, App), std::process::ExitCode> {
    let (listener, app) = startup(name).await?;
    let listener = tokio_listener(listener).map_err(|error| {
        eprintln!("cannot use the listener: {error}");
        std::process::ExitCode::FAILURE
    })?;
    Ok((listener, app))
}

/// A std listener as a tokio one.
///
/// # Errors
/// If the socket cannot be switched to non-blocking or registered with the runtime.
pub fn tokio_listener(listener: std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Logging as the examples do it (`RUST_LOG` overrides `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
}
