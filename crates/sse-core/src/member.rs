//! SSE subscribers as hub members: the same queue, eviction, stats and history as WebSocket
//! clients, driven by the same connection driver.

use crate::encode::{put_data, put_field};
use crate::stream::{SseConfig, HEARTBEAT};
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use hub_core::{
    ClientKind, ConnectOptions, Connection, Hub, Incoming, Liveness, Message, Missed, Outgoing,
    Rejection, RequestHead, Timer, TransportError,
};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Encoded bytes above which the driver waits for the body to be taken before writing more.
const OUTBOX_HIGH_WATER: usize = 64 * 1024;

#[derive(Default)]
struct Outbox {
    bytes: BytesMut,
    /// The driver sent its close: the stream ends once the bytes are out.
    ended: bool,
    /// Bytes the body has handed to the server so far.
    taken: u64,
    reader: Option<Waker>,
}

/// The hub-core transport of an SSE subscriber: it encodes frames into an outbox that the
/// response body hands to the server.
struct SseTransport {
    outbox: Arc<Mutex<Outbox>>,
}

impl SseTransport {
    fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Encodes one hub message as an event. Text is the data as is (line breaks become `data:`
/// lines, so an `event:` line inside a message stays data); binary is base64 under the event
/// name `binary`. With a hub history the event carries `id:`.
pub fn encode_message(buf: &mut BytesMut, id: Option<u64>, message: &Message) {
    if let Some(id) = id {
        put_field(buf, "id", &id.to_string());
    }
    match message {
        Message::Text(text) => put_data(buf, text),
        Message::Binary(bytes) => {
            put_field(buf, "event", "binary");
            put_field(
                buf,
                "data",
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
    }
    buf.put_u8(b'\n');
}

/// Encodes the notice a resuming subscriber gets when the history no longer reaches back to
/// its `Last-Event-ID`: an event named `missed` with
/// `{"last_event_id":N,"first_available":M|null}`.
pub fn encode_missed(buf: &mut BytesMut, missed: Missed) {
    put_field(buf, "event", "missed");
    let first = missed
        .first_available
        .map_or_else(|| "null".to_string(), |id| id.to_string());
    put_field(
        buf,
        "data",
        &format!(
            r#"{{"last_event_id":{},"first_available":{first}}}"#,
            missed.last_event_id
        ),
    );
    buf.put_u8(b'\n');
}

impl Stream for SseTransport {
    type Item = Result<Incoming, TransportError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // An SSE client never sends; the stream ends when the driver has closed it.
        let mut outbox = self.lock();
        if outbox.ended {
            Poll::Ready(None)
        } else {
            outbox.reader = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl hub_core::Transport for SseTransport {
    fn bytes_written(&self) -> u64 {
        self.lock().taken
    }
}

impl Sink<Outgoing> for SseTransport {
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Past the high-water mark the body has bytes to return; the server polls it again
        // once they are written, and that poll drives the connection further.
        if self.lock().bytes.len() < OUTBOX_HIGH_WATER {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
        let mut outbox = self.lock();
        match item {
            Outgoing::Message { message, id, .. } => {
                crate::cache::encode_message_cached(&mut outbox.bytes, id, &message)
            }
            Outgoing::Missed(missed) => encode_missed(&mut outbox.bytes, missed),
            Outgoing::Ping(_) => outbox.bytes.put_slice(HEARTBEAT),
            Outgoing::Close(_) => {
                outbox.ended = true;
                if let Some(reader) = outbox.reader.take() {
                    reader.wake();
                }
            }
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Flushed once the body has handed everything to the server.
        if self.lock().bytes.is_empty() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_flush(cx)
    }
}

/// The response body of a hub subscription: polling it drives the subscriber's connection
/// (queue, heartbeats, eviction), so no task is spawned. Dropping it (the client went away)
/// removes the subscriber from the hub.
pub struct SseMember<R: Timer> {
    connection: Option<Connection<SseTransport, R>>,
    outbox: Arc<Mutex<Outbox>>,
    preamble: Option<Bytes>,
}

/// Subscribes to `hub` as an SSE client and returns the response body.
///
/// `options` gives the subscriber's metadata ([`ConnectOptions::data`], read with
/// [`Client::data`](hub_core::Client::data)) and its resume point
/// ([`ConnectOptions::last_event_id`], the request's `Last-Event-ID`): missed messages come
/// first, in order, then live ones, with no gap and no duplicate. Its liveness and kind are an
/// SSE subscriber's, whatever they were: a heartbeat every `config.heartbeat`.
pub fn subscribe<R: Timer>(
    hub: &Hub,
    timer: R,
    config: SseConfig,
    mut options: ConnectOptions,
) -> SseMember<R> {
    let outbox = Arc::new(Mutex::new(Outbox::default()));
    let transport = SseTransport {
        outbox: outbox.clone(),
    };
    options.liveness = Liveness::OneWay(config.heartbeat);
    options.kind = ClientKind::Sse;
    SseMember {
        connection: Some(hub.connect(transport, timer, options)),
        outbox,
        preamble: Some(config.preamble()),
    }
}

/// The subscription flow every adapter follows, once: the request must be able to take an
/// event stream ([`acceptable`], else [`Rejection::NotAcceptable`]), the hub must admit it
/// (its origin policy and state: [`Hub::admit`]), and then it joins with `options`, whose
/// resume point defaults to the request's ([`ConnectOptions::resume_from`]).
///
/// # Errors
/// [`Rejection::NotAcceptable`], [`Rejection::OriginDenied`] or [`Rejection::ShuttingDown`]:
/// answer with its status, headers and body. Nothing joined the hub.
pub fn subscribe_request<R: Timer>(
    hub: &Hub,
    head: &dyn RequestHead,
    timer: R,
    config: SseConfig,
    options: ConnectOptions,
) -> Result<SseMember<R>, Rejection> {
    admit_request(hub, head)?;
    Ok(subscribe(hub, timer, config, options.resume_from(head)))
}

/// The checks of [`subscribe_request`] alone, for an adapter that runs the application's
/// authorization step between them and [`subscribe`]: the request can take an event stream
/// ([`acceptable`]) and the hub admits it ([`Hub::admit`]).
///
/// # Errors
/// As [`subscribe_request`].
pub fn admit_request(hub: &Hub, head: &dyn RequestHead) -> Result<(), Rejection> {
    if !acceptable(head) {
        // counted like every other refusal of a subscription
        hub.count_rejection(Rejection::NotAcceptable);
        return Err(Rejection::NotAcceptable);
    }
    hub.admit(head)
}

/// Whether a request can take an event stream: a `GET` whose first `Accept` header admits it
/// ([`accepts_event_stream`](crate::accepts_event_stream)).
pub fn acceptable(head: &dyn RequestHead) -> bool {
    crate::accepts_event_stream(head.method(), head.header_str("accept"))
}

impl<R: Timer> SseMember<R> {
    /// The subscriber's client handle (its id, `send`, `close`).
    pub fn client(&self) -> Option<&hub_core::Client> {
        self.connection.as_ref().map(Connection::client)
    }
}

impl<R: Timer> Stream for SseMember<R> {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if let Some(preamble) = this.preamble.take() {
            return Poll::Ready(Some(preamble));
        }
        if let Some(connection) = this.connection.as_mut() {
            if Pin::new(connection).poll(cx).is_ready() {
                this.connection = None;
            }
        }
        let mut outbox = this.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        if !outbox.bytes.is_empty() {
            let chunk = outbox.bytes.split().freeze();
            outbox.taken += chunk.len() as u64;
            drop(outbox);
            // The driver may be waiting for this flush: let it see the empty outbox.
            cx.waker().wake_by_ref();
            return Poll::Ready(Some(chunk));
        }
        if this.connection.is_none() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl<R: Timer> fmt::Debug for SseMember<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseMember")
            .field("client", &self.client().map(hub_core::Client::id))
            .finish()
    }
}
