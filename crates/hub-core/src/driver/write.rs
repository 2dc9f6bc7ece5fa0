//! The connection driver's write side: the queue, the replay, pings, flushes and the stall
//! clock, in the order a client is owed them.

use super::{after, Connection, State, IDLE_QUEUE_CAPACITY, WRITE_BUDGET};
use crate::codec::Deflated;
use crate::message::Message;
use crate::state::CloseRequest;
use crate::stats::{Counters, DisconnectReason};
use crate::transport::{Outgoing, Timer, Transport, TransportError};
use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

impl<T: Transport, R: Timer> Connection<T, R> {
    /// Before failing the connection, hands the transport what the client is owed, as far as
    /// it takes without waiting, ahead of the close frame and in the usual order (a missed
    /// notice, the replay, then the live queue): replies to the peer's earlier, valid messages
    /// are not lost to its later error. The rest is discarded (and counted) by `begin_close`.
    pub(super) fn salvage_queue(&mut self, cx: &mut Context<'_>) {
        if !matches!(self.state, State::Open | State::Draining { .. }) {
            return;
        }
        let evicted = self.evicted();
        while let Ok(true) = self.ready(cx) {
            let sent = if evicted {
                return;
            } else if let Some(missed) = self.missed.take() {
                self.start(Outgoing::Missed(missed))
            } else if let Some((id, message)) = self.replay.pop_front() {
                self.start_message(Some(id), message)
            } else {
                let next = self.client.shared.lock().data.pop_front();
                let Some((id, message, deflated)) = next else {
                    return;
                };
                self.start_shared(id, message, deflated)
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// A graceful close (Client::close, shutdown) first writes what is queued, until a deadline
    /// that runs from the moment the request is seen, whether or not the socket is writable.
    fn start_draining(&mut self, request: CloseRequest, now: Instant) {
        let timeout = match request.reason {
            DisconnectReason::Shutdown => self.hub.inner.config.shutdown_timeout,
            _ => self.hub.inner.config.write_wait,
        };
        self.state = State::Draining {
            request,
            deadline: after(now, timeout),
        };
    }

    pub(super) fn write(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Result<(), DisconnectReason> {
        if let State::Open = self.state {
            let graceful = self.client.shared.lock().close.clone().filter(|r| r.drain);
            if let Some(request) = graceful {
                self.start_draining(request, now);
            }
        }
        if matches!(self.state, State::Open | State::Draining { .. }) {
            self.client.shared.waker.register(cx.waker());
            if self.ping_due && self.ready(cx)? {
                self.start(Outgoing::Ping(Bytes::new()))?;
                self.ping_due = false;
            }
            self.write_queue(cx, now)?;
        }
        if self.unflushed {
            match Pin::new(&mut self.transport).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    self.keepalive.on_write_done();
                }
                Poll::Ready(Err(error)) => return Err(self.write_failed(error)),
                Poll::Pending => self.keepalive.on_write_blocked(now),
            }
        }
        self.check_progress(now);
        if !self.unflushed {
            match self.state {
                State::PeerClosed => return Err(DisconnectReason::PeerClosed),
                State::Closing {
                    reason,
                    read_done: true,
                    ..
                } => match Pin::new(&mut self.transport).poll_close(cx) {
                    Poll::Pending => {}
                    Poll::Ready(_) => return Err(reason),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// Moves queued messages into the transport until it pushes back, the queue is empty or the
    /// budget is spent; acts on a pending close request.
    fn write_queue(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), DisconnectReason> {
        for _ in 0..WRITE_BUDGET {
            if !self.ready(cx)? {
                return Ok(());
            }
            let owed = self.missed.is_some() || !self.replay.is_empty();
            if owed && !self.evicted() {
                if let Some(missed) = self.missed.take() {
                    self.start(Outgoing::Missed(missed))?;
                    continue;
                }
                if let Some((id, message)) = self.replay.pop_front() {
                    self.start_message(Some(id), message)?;
                    continue;
                }
            }
            let (next, request) = {
                let mut q = self.client.shared.lock();
                if let Some(missed) = q.missed.take() {
                    drop(q);
                    self.start(Outgoing::Missed(missed))?;
                    continue;
                }
                let turn_pending = match q.close.as_ref() {
                    Some(r) if !r.delay.is_zero() && !self.turn_came => {
                        // a spread shutdown: this client's close waits for its turn
                        let at = *self
                            .close_at
                            .get_or_insert_with(|| super::after(now, r.delay).unwrap_or(now));
                        self.turn_came = now >= at;
                        !self.turn_came
                    }
                    _ => false,
                };
                let close = q.close.as_ref().filter(|_| !turn_pending);
                match close.map(|r| r.drain) {
                    Some(false) => (None, q.close.take()),
                    Some(true) if q.data.is_empty() => (None, q.close.take()),
                    Some(true) => (q.data.pop_front(), q.close.clone()),
                    None => {
                        let next = q.data.pop_front();
                        if next.is_none() && q.data.capacity() > IDLE_QUEUE_CAPACITY {
                            q.data.shrink_to(IDLE_QUEUE_CAPACITY);
                        }
                        (next, None)
                    }
                }
            };
            let Some((id, message, deflated)) = next else {
                if let Some(request) = request {
                    self.begin_close(request.frame, request.reason);
                }
                return Ok(());
            };
            if let (Some(request), State::Open) = (request, &self.state) {
                self.start_draining(request, now);
            }
            self.start_shared(id, message, deflated)?;
        }
        cx.waker().wake_by_ref();
        Ok(())
    }

    /// Whether the client was evicted: what it is still owed is discarded (and counted), not
    /// written ahead of the 1008.
    fn evicted(&self) -> bool {
        matches!(
            self.client.shared.lock().close,
            Some(CloseRequest { drain: false, .. })
        )
    }

    /// Whether the socket took bytes since the last look; if so, a stall is timed from `now`.
    /// Only asked while a stall is timed: the common, unblocked write pays nothing for it.
    pub(super) fn check_progress(&mut self, now: Instant) -> bool {
        if !self.keepalive.write_blocked() {
            return false;
        }
        let written = self.transport.bytes_written();
        if written > self.written {
            self.written = written;
            self.keepalive.on_write_progress(now);
            true
        } else {
            false
        }
    }

    pub(super) fn ready(&mut self, cx: &mut Context<'_>) -> Result<bool, DisconnectReason> {
        match Pin::new(&mut self.transport).poll_ready(cx) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(error)) => Err(self.write_failed(error)),
            Poll::Pending => {
                self.keepalive.on_write_blocked(self.timer.now());
                Ok(false)
            }
        }
    }

    pub(super) fn start_message(
        &mut self,
        id: Option<u64>,
        message: Message,
    ) -> Result<(), DisconnectReason> {
        self.start_shared(id, message, None)
    }

    /// [`Self::start_message`], with the compressed form the message's broadcast shares.
    fn start_shared(
        &mut self,
        id: Option<u64>,
        message: Message,
        deflated: Option<Arc<Deflated>>,
    ) -> Result<(), DisconnectReason> {
        let len = message.len() as u64;
        self.start(Outgoing::Message {
            message,
            id,
            deflated,
        })?;
        Counters::add(&self.counters().messages_out, 1);
        Counters::add(&self.counters().bytes_out, len);
        Ok(())
    }

    pub(super) fn start(&mut self, frame: Outgoing) -> Result<(), DisconnectReason> {
        self.unflushed = true;
        Pin::new(&mut self.transport)
            .start_send(frame)
            .map_err(|error| self.write_failed(error))
    }

    pub(super) fn write_failed(&self, error: TransportError) -> DisconnectReason {
        tracing::debug!(client = %self.client.id(), %error, "write failed");
        let fallback = match self.state {
            State::PeerClosed => DisconnectReason::PeerClosed,
            _ => DisconnectReason::TransportError,
        };
        self.reason_now(fallback)
    }
}
