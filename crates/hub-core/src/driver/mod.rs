//! The connection driver: the one read/write/keepalive/eviction loop every adapter runs.

use crate::history::{Missed, Replay};
use crate::keepalive::{Keepalive, Timeout};
use crate::message::{CloseCode, CloseFrame, Message};
use crate::options::Liveness;
use crate::rate::{Limiter, RateLimitPolicy};
use crate::state::{Client, CloseRequest};
use crate::state::{Handler, Hub, Inbound};
use crate::stats::{Counters, DisconnectReason};
use crate::transport::{Incoming, Outgoing, Timer, Transport, TransportError};
use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

mod hooks;
mod write;

/// Messages read per poll before yielding to other tasks.
const READ_BUDGET: usize = 64;
/// Frames started per poll before flushing and yielding.
const WRITE_BUDGET: usize = 512;
/// A drained queue keeps at most this much capacity, so idle clients stay small.
const IDLE_QUEUE_CAPACITY: usize = 4;

#[derive(Debug)]
enum State {
    Open,
    /// Writing the queue out before a graceful close, until `deadline`.
    Draining {
        request: CloseRequest,
        deadline: Option<Instant>,
    },
    /// Our close frame is sent (or being flushed); waiting for the peer's reply until `deadline`.
    /// Once reading is over (`read_done`), the transport's `poll_close` lingers: it flushes,
    /// shuts down the write side and discards unread input, so the peer gets our close frame
    /// instead of a reset.
    Closing {
        reason: DisconnectReason,
        deadline: Option<Instant>,
        read_done: bool,
    },
    /// The peer closed; flushing our reply, then done.
    PeerClosed,
}

/// Drives one client's connection: reads and dispatches inbound messages, writes its queue in
/// batches, pings, enforces the pong and write waits, evicts, and closes with the right code.
///
/// Created by [`Hub::connect`]; the adapter spawns it on its runtime. It completes when the
/// connection is over, and the client has then left the registry. Dropping it (e.g. when its
/// task is aborted) also removes the client.
#[must_use = "a Connection does nothing unless it is spawned or awaited"]
pub struct Connection<T: Transport, R: Timer> {
    /// Entered on every poll: the hub, client, peer and route on every event.
    span: tracing::Span,
    hub: Hub,
    client: Client,
    transport: T,
    timer: R,
    keepalive: Keepalive,
    sleep: Option<Pin<Box<R::Sleep>>>,
    sleep_at: Option<Instant>,
    handler: Option<BoxFuture<'static, ()>>,
    state: State,
    ping_due: bool,
    unflushed: bool,
    finished: bool,
    /// Written before anything else: a resuming client's notice of lost messages...
    missed: Option<Missed>,
    /// ...then the history it missed, then the live queue.
    replay: VecDeque<(u64, Message)>,
    /// The transport's [`Transport::bytes_written`] when last looked at.
    written: u64,
    /// The client joined the hub: the connect hook is due at the first poll.
    greet: bool,
    /// The connect hook ran (or was due with none set): the disconnect hook is owed.
    greeted: bool,
    /// The async hook in `handler` is the connect hook (a panic in it is a hook's).
    in_hook: bool,
    /// The connection is over, for this reason; an async disconnect hook may still run.
    ended: Option<DisconnectReason>,
    /// An async disconnect hook's future, run to completion before the connection ends.
    farewell: Option<BoxFuture<'static, ()>>,
    /// Whether `live` was decremented (the connection is entirely done).
    retired: bool,
    /// The client's inbound rate limit, if the hub has one.
    limiter: Option<Limiter>,
    /// When a spread shutdown's close may start (see `HubConfig::shutdown_spread`)...
    close_at: Option<Instant>,
    /// ...and whether that time has come.
    turn_came: bool,
}

/// `now + d`, or `None` (never) when that is past what an `Instant` can hold.
fn after(now: Instant, d: std::time::Duration) -> Option<Instant> {
    now.checked_add(d)
}

impl<T: Transport, R: Timer> Connection<T, R> {
    pub(crate) fn new(
        span: tracing::Span,
        hub: Hub,
        client: Client,
        transport: T,
        timer: R,
        liveness: Liveness,
    ) -> Self {
        let c = &hub.inner.config;
        let limiter = c.rate_limit.as_ref().map(Limiter::new);
        let now = timer.now();
        let keepalive = match liveness {
            Liveness::PingPong => Keepalive::new(c.ping_interval, c.pong_wait, c.write_wait, now),
            Liveness::OneWay(heartbeat) => Keepalive::one_way(heartbeat, c.write_wait, now),
        };
        Self {
            span,
            hub,
            client,
            transport,
            timer,
            keepalive,
            sleep: None,
            sleep_at: None,
            handler: None,
            state: State::Open,
            ping_due: false,
            unflushed: false,
            finished: false,
            missed: None,
            replay: VecDeque::new(),
            written: 0,
            greet: false,
            greeted: false,
            in_hook: false,
            ended: None,
            farewell: None,
            retired: false,
            limiter,
            close_at: None,
            turn_came: false,
        }
    }

    /// The client is in the registry: its connect hook runs at the first poll, and its
    /// disconnect hook when it ends.
    pub(crate) fn joined(&mut self) {
        self.greet = true;
    }

    /// What a resuming client is owed, written before its live queue.
    pub(crate) fn set_replay(&mut self, replay: Replay) {
        self.missed = replay.missed;
        self.replay = replay.messages;
    }

    /// The client this connection serves.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn counters(&self) -> &Counters {
        &self.hub.inner.counters
    }

    fn reading(&self) -> bool {
        self.handler.is_none()
            && !matches!(
                self.state,
                State::PeerClosed
                    | State::Closing {
                        read_done: true,
                        ..
                    }
            )
    }

    /// Runs the handler for one inbound message.
    fn dispatch(&mut self, message: Message, cx: &mut Context<'_>) -> Result<(), DisconnectReason> {
        let Some(handler) = self.hub.inner.handler() else {
            return Ok(());
        };
        let inbound = Inbound {
            client: self.client.clone(),
            message,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| match handler {
            Handler::Sync(f) => {
                f(&self.hub, inbound);
                None
            }
            Handler::Async(f) => Some(f(self.hub.clone(), inbound)),
        }));
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(fut)) => {
                self.handler = Some(fut);
                // Nothing is read while the handler runs, so the peer's pongs cannot be seen:
                // silence is not counted until it is done (pings go on).
                self.keepalive.hold_silence();
                self.poll_handler(cx)
            }
            Err(_) => Err(self.handler_panicked()),
        }
    }

    fn poll_handler(&mut self, cx: &mut Context<'_>) -> Result<(), DisconnectReason> {
        let Some(fut) = self.handler.as_mut() else {
            return Ok(());
        };
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Ok(()),
            Ok(Poll::Ready(())) => {
                self.handler = None;
                self.in_hook = false;
                // Reads resume: the pong wait starts again from now.
                self.keepalive.release_silence(self.timer.now());
                Ok(())
            }
            Err(_) => Err(self.handler_panicked()),
        }
    }

    fn handler_panicked(&mut self) -> DisconnectReason {
        self.handler = None;
        self.keepalive.release_silence(self.timer.now());
        if std::mem::take(&mut self.in_hook) {
            Counters::add(&self.counters().hook_panics, 1);
            tracing::error!(client = %self.client.id(), "connect hook panicked; closing with 1011");
        } else {
            tracing::error!(client = %self.client.id(), "message handler panicked; closing with 1011");
        }
        self.begin_close(
            CloseFrame::from_static(CloseCode::INTERNAL, "internal error"),
            DisconnectReason::ClosedByServer,
        );
        DisconnectReason::ClosedByServer
    }

    /// Leaves the registry, discards the queue, and starts our side of the close handshake.
    /// Idempotent: a connection that is already closing keeps its first reason.
    fn begin_close(&mut self, frame: CloseFrame, reason: DisconnectReason) {
        if matches!(self.state, State::Closing { .. } | State::PeerClosed) {
            return;
        }
        self.leave(reason);
        let deadline = after(self.timer.now(), self.hub.inner.config.write_wait);
        // The close frame bypasses the data queue; a transport that cannot take it fails the
        // write and the deadline ends the connection.
        self.unflushed |= Pin::new(&mut self.transport)
            .start_send(Outgoing::Close(frame))
            .is_ok();
        self.state = State::Closing {
            reason,
            deadline,
            read_done: false,
        };
    }

    /// Leaves the hub (counted once, under `reason` unless the client was closed otherwise
    /// first); everything still unsent, the replay included, is discarded and counted.
    /// Returns the reason the departure was counted under.
    fn leave(&mut self, reason: DisconnectReason) -> DisconnectReason {
        let unsent = self.replay.len() + usize::from(self.missed.is_some());
        self.replay = VecDeque::new();
        self.missed = None;
        self.hub.inner.count_dropped(unsent);
        self.client.shared.leave(reason)
    }

    fn reason_now(&self, otherwise: DisconnectReason) -> DisconnectReason {
        match &self.state {
            State::Closing { reason, .. } => *reason,
            State::Draining { request, .. } => request.reason,
            _ => otherwise,
        }
    }

    fn read(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), DisconnectReason> {
        for _ in 0..READ_BUDGET {
            if !self.reading() {
                return Ok(());
            }
            let frame = match Pin::new(&mut self.transport).poll_next(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(None) => return Err(self.reason_now(DisconnectReason::PeerClosed)),
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(error))) => return self.read_failed(error, cx),
            };
            self.keepalive.on_receive(now);
            match frame {
                Incoming::Message(message) => {
                    if matches!(self.state, State::Open | State::Draining { .. }) {
                        Counters::add(&self.counters().messages_in, 1);
                        Counters::add(&self.counters().bytes_in, message.len() as u64);
                        if self.over_limit(now, message.len()) {
                            continue;
                        }
                        self.dispatch(message, cx)?;
                    }
                }
                // The transport queued the pong; make sure it is flushed.
                Incoming::Ping(_) => self.unflushed = true,
                Incoming::Pong(_) => {}
                Incoming::Close(_) => match self.state {
                    // The peer answered our close: the handshake is complete.
                    State::Closing { reason, .. } => return Err(reason),
                    _ => {
                        self.leave(DisconnectReason::PeerClosed);
                        self.state = State::PeerClosed;
                        self.unflushed = true;
                    }
                },
            }
        }
        cx.waker().wake_by_ref();
        Ok(())
    }

    /// Whether a message of `len` bytes arriving `now` is over the client's rate limit: it
    /// is then counted, and dropped or the client closed with 1008, by the limit's policy.
    fn over_limit(&mut self, now: Instant, len: usize) -> bool {
        let Some(limiter) = self.limiter.as_mut() else {
            return false;
        };
        if limiter.admit(now, len) {
            return false;
        }
        let policy = limiter.policy;
        Counters::add(&self.counters().rate_limited, 1);
        if policy == RateLimitPolicy::Close {
            tracing::debug!(client = %self.client.id(), "over its rate limit: closing");
            self.begin_close(
                CloseFrame::from_static(CloseCode::POLICY, "rate limit"),
                DisconnectReason::RateLimited,
            );
        }
        true
    }

    fn read_failed(
        &mut self,
        error: TransportError,
        cx: &mut Context<'_>,
    ) -> Result<(), DisconnectReason> {
        if let State::Closing { reason, .. } = self.state {
            return Err(reason);
        }
        let reason = match &error {
            TransportError::TooBig => DisconnectReason::TooBig,
            TransportError::InvalidUtf8 => DisconnectReason::InvalidUtf8,
            TransportError::Protocol(_) => DisconnectReason::ProtocolError,
            TransportError::Closed => DisconnectReason::PeerClosed,
            TransportError::Io(_) => DisconnectReason::TransportError,
        };
        tracing::debug!(client = %self.client.id(), %error, "read failed");
        match error.close_frame() {
            // Fail the connection: send the close frame, then linger until it is out.
            Some(frame) => {
                self.salvage_queue(cx);
                self.begin_close(frame, reason);
                if let State::Closing { read_done, .. } = &mut self.state {
                    *read_done = true;
                }
                Ok(())
            }
            None => Err(reason),
        }
    }

    /// One non-blocking flush attempt, for frames sent just before giving up on a peer.
    fn flush_best_effort(&mut self) {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let _ = Pin::new(&mut self.transport).poll_flush(&mut cx);
    }

    fn on_timers(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), DisconnectReason> {
        match &self.state {
            State::Closing {
                reason,
                deadline: Some(deadline),
                ..
            } if now >= *deadline => return Err(*reason),
            State::Draining {
                request,
                deadline: Some(deadline),
            } if now >= *deadline => {
                // The flush budget is spent: close best effort, and do not wait any longer.
                let request = request.clone();
                self.begin_close(request.frame, request.reason);
                self.flush_best_effort();
                return Err(request.reason);
            }
            _ => {}
        }
        // Bounded: each pass settles one deadline, and there are three kinds.
        for _ in 0..8 {
            let Some(timeout) = self.keepalive.handle_timeout(now) else {
                break;
            };
            match timeout {
                Timeout::Ping => self.ping_due = true,
                Timeout::WriteStalled => {
                    // One last try: a socket that takes anything now is still moving.
                    let moving = if self.unflushed {
                        let flushed = matches!(
                            Pin::new(&mut self.transport).poll_flush(cx),
                            Poll::Ready(Ok(()))
                        );
                        self.unflushed &= !flushed;
                        flushed
                    } else {
                        matches!(
                            Pin::new(&mut self.transport).poll_ready(cx),
                            Poll::Ready(Ok(()))
                        )
                    };
                    if moving {
                        self.keepalive.on_write_done();
                        continue;
                    }
                    if self.check_progress(now) {
                        continue;
                    }
                    return Err(self.reason_now(DisconnectReason::WriteStalled));
                }
                Timeout::PeerSilent => {
                    if let State::Closing { reason, .. } = self.state {
                        return Err(reason);
                    }
                    // the reason already counted, if a close was under way (draining)
                    let reason = self.reason_now(DisconnectReason::PeerSilent);
                    self.begin_close(
                        CloseFrame::from_static(CloseCode::GOING_AWAY, "keepalive timeout"),
                        reason,
                    );
                    self.flush_best_effort();
                    return Err(reason);
                }
            }
        }
        Ok(())
    }

    /// Arms the timer for the next deadline; `true` if that deadline has already passed.
    fn arm_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let mut deadline = self.keepalive.poll_timeout();
        if let (Some(at), false) = (self.close_at, self.turn_came) {
            deadline = Some(deadline.map_or(at, |k| k.min(at)));
        }
        if let State::Closing {
            deadline: Some(d), ..
        }
        | State::Draining {
            deadline: Some(d), ..
        } = self.state
        {
            deadline = Some(deadline.map_or(d, |k| k.min(d)));
        }
        let Some(deadline) = deadline else {
            self.sleep = None;
            self.sleep_at = None;
            return false;
        };
        if self.sleep_at != Some(deadline) {
            self.sleep = Some(Box::pin(self.timer.sleep_until(deadline)));
            self.sleep_at = Some(deadline);
        }
        match self.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => {
                self.sleep = None;
                self.sleep_at = None;
                true
            }
            _ => false,
        }
    }

    fn drive(&mut self, cx: &mut Context<'_>) -> Result<(), DisconnectReason> {
        // A few rounds at most: a timer that fired while we worked gets handled at once.
        if std::mem::take(&mut self.greet) {
            self.greet_hook(cx)?;
        }
        for _ in 0..4 {
            let now = self.timer.now();
            self.poll_handler(cx)?;
            self.read(cx, now)?;
            self.on_timers(cx, now)?;
            self.write(cx, now)?;
            if !self.arm_timer(cx) {
                return Ok(());
            }
        }
        cx.waker().wake_by_ref();
        Ok(())
    }

    /// The connection is over: the client leaves (counted once), and its disconnect hook is
    /// started.
    /// The reason is the one the departure was counted under (an eviction or a shutdown that
    /// came first, say, though the connection ended otherwise before acting on it): the hook,
    /// the stats and the connection's output agree.
    fn finish(&mut self, reason: DisconnectReason) -> DisconnectReason {
        if self.finished {
            return self.ended.unwrap_or(reason);
        }
        self.finished = true;
        self.handler = None;
        let reason = self.leave(reason);
        self.ended = Some(reason);
        self.farewell_hook(reason);
        reason
    }

    /// Entirely done, its disconnect hook included: one connection fewer for
    /// [`Hub::closed`](crate::Hub::closed).
    fn retire(&mut self) {
        if std::mem::replace(&mut self.retired, true) {
            return;
        }
        self.hub.inner.live.fetch_sub(1, Ordering::SeqCst);
        self.hub.inner.changed.notify();
    }
}

impl<T: Transport, R: Timer> Future for Connection<T, R> {
    type Output = DisconnectReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DisconnectReason> {
        let this = &mut *self;
        let span = this.span.clone();
        let _entered = span.enter();
        let reason = match this.ended {
            Some(reason) => reason,
            None => match this.drive(cx) {
                Ok(()) => return Poll::Pending,
                Err(reason) => this.finish(reason),
            },
        };
        if this.poll_farewell(cx).is_pending() {
            return Poll::Pending;
        }
        this.retire();
        Poll::Ready(reason)
    }
}

impl<T: Transport, R: Timer> Unpin for Connection<T, R> {}

impl<T: Transport, R: Timer> Drop for Connection<T, R> {
    fn drop(&mut self) {
        // Dropped unfinished: the body of an SSE response whose client went away, or an aborted
        // task. An async disconnect hook still owed goes to the hub's spawner.
        let span = self.span.clone();
        let _entered = span.enter();
        let reason = self.reason_now(DisconnectReason::PeerClosed);
        let _ = self.finish(reason);
        self.hand_over_farewell();
        self.retire();
    }
}

impl<T: Transport, R: Timer> fmt::Debug for Connection<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("client", &self.client.id())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
