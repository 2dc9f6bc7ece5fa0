//! What the driver tests share: a virtual clock, an in-memory transport whose peer side the
//! test holds, and a transport that never moves, for tests that only need a connection.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use futures_util::{Sink, Stream};
use hub_core::{ConnectOptions, DisconnectReason, Hub, Incoming, Outgoing, Timer, TransportError};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub struct VirtualTimer;

impl Timer for VirtualTimer {
    type Sleep = Pin<Box<tokio::time::Sleep>>;
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// The peer's side of a fake transport.
#[derive(Clone, Default)]
pub struct Peer {
    pub written: Arc<Mutex<Vec<(Duration, Outgoing)>>>,
    pub blocked: Arc<AtomicBool>,
    pub waker: Arc<Mutex<Option<Waker>>>,
    /// What the transport reports as bytes accepted by the socket.
    pub progress: Arc<AtomicU64>,
}

impl Peer {
    pub fn written(&self) -> Vec<Outgoing> {
        self.written
            .lock()
            .unwrap()
            .iter()
            .map(|(_, o)| o.clone())
            .collect()
    }
    pub fn pings(&self) -> usize {
        self.written()
            .iter()
            .filter(|o| matches!(o, Outgoing::Ping(_)))
            .count()
    }
    pub fn unblock(&self) {
        self.blocked.store(false, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }
}

pub struct FakeTransport {
    incoming: mpsc::UnboundedReceiver<Result<Incoming, TransportError>>,
    peer: Peer,
    start: tokio::time::Instant,
}

impl Stream for FakeTransport {
    type Item = Result<Incoming, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_recv(cx)
    }
}

impl FakeTransport {
    fn gate(&self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.peer.blocked.load(Ordering::SeqCst) {
            *self.peer.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

impl Sink<Outgoing> for FakeTransport {
    type Error = TransportError;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.gate(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Outgoing) -> Result<(), TransportError> {
        let at = self.start.elapsed();
        self.peer.written.lock().unwrap().push((at, item));
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.gate(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.gate(cx)
    }
}

impl hub_core::Transport for FakeTransport {
    fn bytes_written(&self) -> u64 {
        self.peer.progress.load(Ordering::SeqCst)
    }
}

pub type Inject = mpsc::UnboundedSender<Result<Incoming, TransportError>>;

pub fn connect(hub: &Hub) -> (Inject, Peer, tokio::task::JoinHandle<DisconnectReason>) {
    connect_with(hub, ConnectOptions::default())
}

pub fn connect_with(
    hub: &Hub,
    options: ConnectOptions,
) -> (Inject, Peer, tokio::task::JoinHandle<DisconnectReason>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let peer = Peer::default();
    let transport = FakeTransport {
        incoming: rx,
        peer: peer.clone(),
        start: tokio::time::Instant::now(),
    };
    let task = tokio::spawn(hub.connect(transport, VirtualTimer, options));
    (tx, peer, task)
}

pub fn close_code(o: &Outgoing) -> Option<u16> {
    match o {
        Outgoing::Close(f) => Some(f.code.0),
        _ => None,
    }
}

impl Peer {
    /// The socket took some bytes but is still not ready for more: wakes the driver.
    pub fn trickle(&self, bytes: u64) {
        self.progress.fetch_add(bytes, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }

    /// The text of every data message written, in order.
    pub fn texts(&self) -> Vec<String> {
        self.written()
            .iter()
            .filter_map(|o| match o {
                Outgoing::Message { message, .. } => message.as_text().map(String::from),
                _ => None,
            })
            .collect()
    }
}

/// A clock that does not need a runtime, and sleeps that never end.
pub struct StdTimer;

impl Timer for StdTimer {
    type Sleep = std::future::Pending<()>;
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, _deadline: Instant) -> Self::Sleep {
        std::future::pending()
    }
}

/// A transport that never reads, never takes a write, and never ends.
pub struct StillTransport;

impl Stream for StillTransport {
    type Item = Result<Incoming, TransportError>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

impl Sink<Outgoing> for StillTransport {
    type Error = TransportError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Pending
    }
    fn start_send(self: Pin<&mut Self>, _: Outgoing) -> Result<(), TransportError> {
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Pending
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Pending
    }
}

impl hub_core::Transport for StillTransport {}

/// A transport whose socket takes every write at once (recorded in the shared vector) and
/// never reads nor ends: polling its connection once writes everything queued, without a
/// runtime.
pub struct RecordingTransport(pub Arc<Mutex<Vec<Outgoing>>>);

impl Stream for RecordingTransport {
    type Item = Result<Incoming, TransportError>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

impl Sink<Outgoing> for RecordingTransport {
    type Error = TransportError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: Outgoing) -> Result<(), TransportError> {
        self.0.lock().unwrap().push(item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }
}

impl hub_core::Transport for RecordingTransport {}

/// Polls a future once with a waker that does nothing.
pub fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(fut).poll(&mut cx)
}

/// The texts of the data messages in `written`, in order.
pub fn texts_of(written: &[Outgoing]) -> Vec<String> {
    written
        .iter()
        .filter_map(|o| match o {
            Outgoing::Message { message, .. } => message.as_text().map(String::from),
            _ => None,
        })
        .collect()
}

/// A backplane that delivers locally, as `LocalOnly` does, and keeps the `Local` handle the
/// hub gave it: tests deliver with cluster ids through it.
#[allow(dead_code)]
pub struct Capture(pub std::sync::OnceLock<hub_core::Local>);

impl hub_core::Backplane for Capture {
    fn attach(&self, local: hub_core::Local) {
        let _ = self.0.set(local);
    }

    fn broadcast(&self, local: &hub_core::Local, message: hub_core::Broadcast) -> usize {
        local.deliver(message)
    }
}

/// The hub's `Local` handle, through a [`Capture`] backplane set on it.
#[allow(dead_code)]
pub fn local_of(hub: &Hub) -> hub_core::Local {
    let capture = Arc::new(Capture(std::sync::OnceLock::new()));
    hub.set_backplane(capture.clone());
    capture.0.get().cloned().expect("attach gives the handle")
}

/// A request head: a name/value list.
pub struct Head(pub Vec<(&'static str, &'static str)>);

impl hub_core::RequestHead for Head {
    fn version(&self) -> hub_core::HttpVersion {
        hub_core::HttpVersion::Http11
    }
    fn method(&self) -> &str {
        "GET"
    }
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
        let name = name.to_ascii_lowercase();
        Box::new(
            self.0
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, v)| v.as_bytes()),
        )
    }
}

/// A valid WebSocket upgrade request head.
pub fn upgrade_head() -> Head {
    Head(vec![
        ("host", "example.com"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("accept", "text/event-stream"),
    ])
}
