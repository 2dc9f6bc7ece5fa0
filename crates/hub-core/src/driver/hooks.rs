//! The connection's side of the lifecycle hooks: the connect hook before the first message is
//! handled, the disconnect hook once the client has left.

use super::Connection;
use crate::message::{CloseCode, CloseFrame};
use crate::state::{OnConnect, OnDisconnect};
use crate::stats::{Counters, DisconnectReason};
use crate::transport::{Timer, Transport};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::{Context, Poll};

impl<T: Transport, R: Timer> Connection<T, R> {
    /// Runs the connect hook, first thing on the client's own task. An async one runs as a
    /// handler does: nothing is read until it completes, while writes and pings go on.
    pub(super) fn greet_hook(&mut self, cx: &mut Context<'_>) -> Result<(), DisconnectReason> {
        self.greeted = true;
        let Some(hook) = self.hub.hooks().connect else {
            return Ok(());
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| match hook {
            OnConnect::Sync(f) => {
                f(&self.hub, &self.client);
                None
            }
            OnConnect::Async(f) => Some(f(self.hub.clone(), self.client.clone())),
        }));
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(fut)) => {
                self.handler = Some(fut);
                self.in_hook = true;
                self.keepalive.hold_silence();
                self.poll_handler(cx)
            }
            Err(_) => {
                Counters::add(&self.counters().hook_panics, 1);
                tracing::error!(client = %self.client.id(), "connect hook panicked; closing with 1011");
                self.begin_close(
                    CloseFrame::from_static(CloseCode::INTERNAL, "internal error"),
                    DisconnectReason::ClosedByServer,
                );
                Err(DisconnectReason::ClosedByServer)
            }
        }
    }

    /// Starts the disconnect hook of a client whose connect hook ran: a sync one runs now, an
    /// async one is polled to completion before the connection's future completes.
    pub(super) fn farewell_hook(&mut self, reason: DisconnectReason) {
        if !std::mem::take(&mut self.greeted) {
            return;
        }
        let Some(hook) = self.hub.hooks().disconnect else {
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| match hook {
            OnDisconnect::Sync(f) => {
                f(&self.hub, &self.client, reason);
                None
            }
            OnDisconnect::Async(f) => Some(f(self.hub.clone(), self.client.clone(), reason)),
        }));
        match outcome {
            Ok(fut) => self.farewell = fut,
            Err(_) => self.farewell_panicked(),
        }
    }

    pub(super) fn poll_farewell(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(fut) = self.farewell.as_mut() else {
            return Poll::Ready(());
        };
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(())) => {}
            Err(_) => self.farewell_panicked(),
        }
        self.farewell = None;
        Poll::Ready(())
    }

    fn farewell_panicked(&mut self) {
        self.farewell = None;
        Counters::add(&self.counters().hook_panics, 1);
        tracing::error!(client = %self.client.id(), "disconnect hook panicked");
    }

    /// Dropped with an async disconnect hook still running: the hub's spawner takes it (or,
    /// without one, it is polled once and dropped if not done).
    pub(super) fn hand_over_farewell(&mut self) {
        let Some(fut) = self.farewell.take() else {
            return;
        };
        match self.hub.hooks().spawner {
            Some(spawn) => spawn(fut),
            None => {
                self.farewell = Some(fut);
                let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
                if self.poll_farewell(&mut cx).is_pending() {
                    self.farewell = None;
                    tracing::warn!(
                        client = %self.client.id(),
                        "async disconnect hook dropped unfinished: no spawner (Hub::set_spawner)"
                    );
                }
            }
        }
    }
}
