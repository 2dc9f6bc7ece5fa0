//! Test harness: start the example server on port 0, connect real clients, and speak raw
//! WebSocket frames when a test needs to misbehave.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

pub mod authed;
pub mod bare;
pub mod deflate;
pub mod raw;
pub mod redis;
pub mod sse;

pub use example_common::{App, Settings};
use futures_util::{SinkExt, StreamExt};
use hub_core::{Hub, HubConfig};
use hub_hyper::sse::SseConfig;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Guard against hangs: every wait in a test is bounded by this.
pub const GUARD: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`GUARD`].
pub async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The adapters every behavioural test runs against: hyper, warp, and actix-web with its
/// WebSocket upgrades on the lean path (`Actix`) and on the handler path (`ActixNative`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    Hyper,
    Actix,
    ActixNative,
    Warp,
}

/// Runs each listed `async fn name(adapter: Adapter)` once per adapter, as
/// `on_hyper::name`, `on_actix::name`, `on_actix_native::name` and `on_warp::name`.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_hyper {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Adapter::Hyper).await })*
        }
        mod on_actix {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Adapter::Actix).await })*
        }
        mod on_actix_native {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Adapter::ActixNative).await })*
        }
        mod on_warp {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Adapter::Warp).await })*
        }
    };
}

/// A server's shutdown trigger and completion signal.
#[derive(Debug)]
struct Running {
    stop: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<()>,
    task: Option<JoinHandle<()>>,
}

/// Runs `make(listener)` for `adapter`: on this runtime for hyper and warp, on a thread of
/// its own with an actix system for actix.
fn launch(adapter: Adapter, app: App, listener: std::net::TcpListener) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let (done_tx, done) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let task = match adapter {
        Adapter::Hyper | Adapter::Warp => {
            listener.set_nonblocking(true).unwrap();
            let listener = TcpListener::from_std(listener).unwrap();
            Some(tokio::spawn(async move {
                match adapter {
                    Adapter::Hyper => example_hyper::run(listener, app, stopped).await,
                    _ => example_warp::run(listener, app, stopped).await,
                }
                let _ = done_tx.send(());
            }))
        }
        Adapter::Actix | Adapter::ActixNative => {
            let upgrades = match adapter {
                Adapter::Actix => example_actix::Upgrades::Lean,
                _ => example_actix::Upgrades::Native,
            };
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    example_actix::run_with(listener, app, stopped, upgrades)
                        .await
                        .unwrap();
                });
                let _ = done_tx.send(());
            });
            None
        }
    };
    Running {
        stop: Some(stop),
        done,
        task,
    }
}

/// The example server of one adapter, running on an ephemeral port.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    pub adapter: Adapter,
    running: Running,
}

impl Server {
    /// Starts the example with default settings.
    pub async fn start(adapter: Adapter) -> Self {
        Self::with(adapter, Settings::default(), |c| c).await
    }

    /// Starts the example from `settings`, with `tweak` applied to the hub configuration.
    pub async fn with(
        adapter: Adapter,
        settings: Settings,
        tweak: impl FnOnce(HubConfig) -> HubConfig,
    ) -> Self {
        Self::with_sse(adapter, settings, tweak, SseConfig::default()).await
    }

    /// As [`Server::with`], with event-stream settings.
    pub async fn with_sse(
        adapter: Adapter,
        settings: Settings,
        tweak: impl FnOnce(HubConfig) -> HubConfig,
        sse: SseConfig,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = settings.hub_config().expect("valid test settings");
        let app = App::with_sse(tweak(config), sse)
            .unwrap()
            .with_auth_token(settings.auth_token.as_deref());
        let running = launch(adapter, app.clone(), listener);
        Self {
            addr,
            app,
            adapter,
            running,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Stops accepting and shuts the hubs down, as Ctrl-C does; waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.running.stop.take() {
            let _ = stop.send(());
        }
        let done = &mut self.running.done;
        guard("server shutdown", done).await.unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.running.task {
            task.abort();
        }
    }
}

/// Connects a tokio-tungstenite client.
pub async fn connect(url: &str) -> Ws {
    guard("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
        .0
}

/// Connects a client whose socket has a tiny receive buffer (for slow-reader tests).
pub async fn connect_small_rcvbuf(
    addr: SocketAddr,
    path: &str,
    rcvbuf: usize,
) -> WebSocketStream<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(rcvbuf).unwrap();
    socket.set_nonblocking(true).unwrap();
    let _ = socket.connect(&addr.into());
    let std: std::net::TcpStream = socket.into();
    let stream = TcpStream::from_std(std).unwrap();
    stream.writable().await.unwrap();
    let url = format!("ws://{addr}{path}");
    guard("connect", tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
        .0
}

/// Waits until `cond(hub)` holds, woken by registry changes (no polling, no sleeps).
pub async fn wait_hub(hub: &Hub, what: &str, cond: impl Fn(&Hub) -> bool) {
    guard(what, async {
        loop {
            let changed = hub.changed();
            if cond(hub) {
                return;
            }
            changed.await;
        }
    })
    .await;
}

/// The next data message, skipping pings and pongs.
pub async fn next_data<S>(ws: &mut S) -> Message
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    guard("a message", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => return m,
                Some(Err(e)) => panic!("read error: {e}"),
                None => panic!("stream ended"),
            }
        }
    })
    .await
}

/// The next text message.
pub async fn next_text<S>(ws: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    match next_data(ws).await {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Reads until a close frame arrives and returns its code and reason; then keeps reading, so
/// the client's reply goes out, until the server ends the connection.
pub async fn close_code<S>(ws: &mut S) -> (u16, String)
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    guard("a close frame and the end of the connection", async {
        let frame = loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    break (u16::from(frame.code), frame.reason.to_string())
                }
                Some(Ok(Message::Close(None))) => break (1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("read error before close frame: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        };
        while let Some(Ok(_)) = ws.next().await {}
        frame
    })
    .await
}

/// Sends `text` to `topic` (`None`: everyone); returns the id it took.
pub fn send_with_id(hub: &Hub, topic: Option<&str>, text: &str) -> (u64, String) {
    let taken = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = taken.clone();
    let body = text.to_string();
    let build = move |id: Option<u64>| {
        *slot.lock().unwrap() = id;
        hub_core::Message::text(body.clone())
    };
    match topic {
        Some(topic) => hub.publish_with(topic, build),
        None => hub.broadcast_with(build),
    };
    let id = taken.lock().unwrap().expect("an id: the hub keeps history");
    (id, text.to_string())
}

/// Sends a text message.
pub async fn send_text<S>(ws: &mut S, text: &str)
where
    S: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    ws.send(Message::text(text)).await.unwrap();
}

/// The README's examples, compiled as doc tests here, where every adapter is a dependency.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
