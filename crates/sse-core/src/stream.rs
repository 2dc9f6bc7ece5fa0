//! The seed's stream API: one event stream, written from any number of tasks.

use crate::encode::{encode_comment, encode_retry, EncodeError, Event};
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::task::AtomicWaker;
use hub_core::Timer;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The comment written as a heartbeat.
pub(crate) const HEARTBEAT: &[u8] = b":\n\n";

/// Settings of an event stream.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SseConfig {
    /// A comment is written this often, so proxies keep the connection open and a client that
    /// went away is noticed (the write fails). `None` or zero: no heartbeat. Default: 15 s.
    pub heartbeat: Option<Duration>,
    /// The `retry:` sent first: the browser's delay before it reconnects. Default: none (the
    /// browser's own, about 3 s).
    pub retry: Option<Duration>,
    /// Events that may wait unsent. A `send` that finds the buffer full closes the stream and
    /// fails with [`SseError::Lagged`], as the hub evicts a slow client. Default: 256.
    pub buffer: usize,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            heartbeat: Some(Duration::from_secs(15)),
            retry: None,
            buffer: 256,
        }
    }
}

impl SseConfig {
    /// Set [`Self::heartbeat`].
    pub fn heartbeat(mut self, every: Option<Duration>) -> Self {
        self.heartbeat = every;
        self
    }

    /// Set [`Self::retry`].
    pub fn retry(mut self, retry: Option<Duration>) -> Self {
        self.retry = retry;
        self
    }

    /// Set [`Self::buffer`] (at least 1).
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// What the stream starts with: the `retry:` field, or a comment, so that the response
    /// head and a first chunk go out at once and the browser's `open` fires.
    pub(crate) fn preamble(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self.retry {
            Some(retry) => encode_retry(&mut buf, retry),
            None => encode_comment(&mut buf, "ok"),
        }
        buf.freeze()
    }
}

/// Why a stream operation failed. Every failure is returned; nothing is swallowed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// The client has gone away (or the stream was closed). Fatal for this stream.
    #[error("the event stream is closed")]
    Closed,
    /// The client could not keep up: the buffer was full, so the stream was closed. Fatal for
    /// this stream; the browser reconnects.
    #[error("the client could not keep up; the event stream was closed")]
    Lagged,
    /// The event name or id would forge fields. Nothing was sent; the stream is still open.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The data could not be serialized. Nothing was sent; the stream is still open.
    #[error("cannot serialize event data: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Default)]
struct State {
    pending: BytesMut,
    events: usize,
    closed: Option<bool>, // Some(lagged?)
    closed_waiters: Vec<Waker>,
}

struct Shared {
    state: Mutex<State>,
    waker: AtomicWaker,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self, lagged: bool) {
        let waiters = {
            let mut state = self.lock();
            if state.closed.is_none() {
                state.closed = Some(lagged);
            }
            if lagged {
                state.pending = BytesMut::new();
            }
            std::mem::take(&mut state.closed_waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
        self.waker.wake();
    }
}

/// The writing side of one event stream (Kashvi's `sse.Stream`). Clone it into as many tasks
/// as you like: a ticker and a heartbeat, say. Every call is non-blocking.
///
/// ```
/// use sse_core::{SseConfig, SseStream};
/// # use std::time::Instant;
/// # struct NoTimer;
/// # impl hub_core::Timer for NoTimer {
/// #     type Sleep = std::future::Pending<()>;
/// #     fn now(&self) -> Instant { Instant::now() }
/// #     fn sleep_until(&self, _: Instant) -> Self::Sleep { std::future::pending() }
/// # }
/// let (stream, _body) = SseStream::new(SseConfig::default(), NoTimer);
/// stream.send("update", &serde_json::json!({"id": 1, "status": "done"})).unwrap();
/// stream.send_raw("hello world").unwrap();
/// stream.comment("heartbeat").unwrap();
/// assert!(!stream.is_closed());
/// ```
#[derive(Clone)]
pub struct SseStream {
    shared: Arc<Shared>,
}

impl SseStream {
    /// A stream and the response body that carries it. The adapter puts the body in a
    /// response with [`RESPONSE_HEADERS`](crate::RESPONSE_HEADERS); `timer` drives heartbeats.
    pub fn new<R: Timer>(config: SseConfig, timer: R) -> (SseStream, SseBody<R>) {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            waker: AtomicWaker::new(),
            capacity: config.buffer.max(1),
        });
        // zero means none; a period too long to add to the clock never comes
        let heartbeat = config.heartbeat.filter(|h| !h.is_zero());
        let next_beat = heartbeat.and_then(|h| timer.now().checked_add(h));
        let body = SseBody {
            shared: shared.clone(),
            preamble: Some(config.preamble()),
            heartbeat,
            next_beat,
            sleep: None,
            timer,
        };
        (SseStream { shared }, body)
    }

    fn push(&self, write: impl FnOnce(&mut BytesMut)) -> Result<(), SseError> {
        let lagged = {
            let mut state = self.shared.lock();
            match state.closed {
                Some(true) => return Err(SseError::Lagged),
                Some(false) => return Err(SseError::Closed),
                None => {}
            }
            if state.events >= self.shared.capacity {
                true
            } else {
                write(&mut state.pending);
                state.events += 1;
                false
            }
        };
        if lagged {
            self.shared.close(true);
            return Err(SseError::Lagged);
        }
        self.shared.waker.wake();
        Ok(())
    }

    /// Sends a named event with `data` as JSON (Kashvi's `Send(event, data)`).
    ///
    /// # Errors
    /// [`SseError::Closed`] or [`SseError::Lagged`] if the stream is over;
    /// [`SseError::Encode`] for a name with CR, LF or NUL; [`SseError::Json`].
    pub fn send(&self, event: &str, data: &impl Serialize) -> Result<(), SseError> {
        let event = Event::new().event(event)?.json_data(data)?;
        self.send_event(&event)
    }

    /// Sends `text` as the data of an unnamed event (Kashvi's `SendRaw`).
    ///
    /// # Errors
    /// [`SseError::Closed`] or [`SseError::Lagged`] if the stream is over.
    pub fn send_raw(&self, text: &str) -> Result<(), SseError> {
        self.send_event(&Event::new().data(text))
    }

    /// Sends a fully built event.
    ///
    /// # Errors
    /// [`SseError::Closed`] or [`SseError::Lagged`] if the stream is over.
    pub fn send_event(&self, event: &Event) -> Result<(), SseError> {
        self.push(|buf| event.encode(buf))
    }

    /// Sends a comment (Kashvi's `Comment`); browsers ignore it.
    ///
    /// # Errors
    /// [`SseError::Closed`] or [`SseError::Lagged`] if the stream is over.
    pub fn comment(&self, text: &str) -> Result<(), SseError> {
        self.push(|buf| encode_comment(buf, text))
    }

    /// Whether the client has gone away or the stream was closed (Kashvi's `IsClosed`).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Ends the stream after what is already queued.
    pub fn close(&self) {
        self.shared.close(false);
    }

    /// Resolves when the stream is over: the client went away, it lagged, or it was closed.
    pub fn closed(&self) -> Closed {
        Closed {
            shared: self.shared.clone(),
        }
    }
}

impl fmt::Debug for SseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseStream")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Future returned by [`SseStream::closed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Closed {
    shared: Arc<Shared>,
}

impl Future for Closed {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.closed.is_some() {
            return Poll::Ready(());
        }
        if !state.closed_waiters.iter().any(|w| w.will_wake(cx.waker())) {
            state.closed_waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl fmt::Debug for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed")
    }
}

/// The response body of an [`SseStream`]: a `Stream` of byte chunks. Queued events go out
/// together in one chunk. Dropping it (the server noticed the client is gone) closes the
/// stream, so [`SseStream::is_closed`] turns true and senders get [`SseError::Closed`].
pub struct SseBody<R: Timer> {
    shared: Arc<Shared>,
    preamble: Option<Bytes>,
    heartbeat: Option<Duration>,
    next_beat: Option<Instant>,
    sleep: Option<Pin<Box<R::Sleep>>>,
    timer: R,
}

impl<R: Timer> Stream for SseBody<R> {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if let Some(preamble) = this.preamble.take() {
            return Poll::Ready(Some(preamble));
        }
        this.shared.waker.register(cx.waker());
        {
            let mut state = this.shared.lock();
            if !state.pending.is_empty() {
                state.events = 0;
                return Poll::Ready(Some(state.pending.split().freeze()));
            }
            if state.closed.is_some() {
                return Poll::Ready(None);
            }
        }
        let (Some(every), Some(at)) = (this.heartbeat, this.next_beat) else {
            return Poll::Pending;
        };
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(this.timer.sleep_until(at)));
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                // the next beat after now, on the same schedule: computed, never looped
                let now = this.timer.now();
                let periods = now.saturating_duration_since(at).as_nanos() / every.as_nanos() + 1;
                let step = every.as_nanos().saturating_mul(periods);
                let step = Duration::from_nanos(u64::try_from(step).unwrap_or(u64::MAX));
                this.next_beat = at.checked_add(step);
                this.sleep = None;
                Poll::Ready(Some(Bytes::from_static(HEARTBEAT)))
            }
        }
    }
}

impl<R: Timer> Unpin for SseBody<R> {}

impl<R: Timer> Drop for SseBody<R> {
    fn drop(&mut self) {
        self.shared.close(false);
    }
}

impl<R: Timer> fmt::Debug for SseBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}
