//! Each client's bounded outbound queue, shared by its handles, its connection driver and the
//! hub's registry.

use super::{ClientId, HubInner};
use crate::codec::Deflated;
use crate::message::{CloseCode, CloseFrame, Message};
use crate::options::ClientKind;
use crate::stats::DisconnectReason;
use futures_util::task::AtomicWaker;
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// A request to end the connection, decided by the hub or the application.
#[derive(Clone, Debug)]
pub(crate) struct CloseRequest {
    pub(crate) frame: CloseFrame,
    pub(crate) reason: DisconnectReason,
    /// Write what is already queued first (graceful), or discard it (eviction).
    pub(crate) drain: bool,
    /// Wait this long (from when the connection sees the request) before acting on it: a
    /// shutdown spreads its closes.
    pub(crate) delay: std::time::Duration,
}

/// A queued message: its history id, and the compressed form its broadcast shares (when the
/// hub compresses and the message is long enough).
pub(crate) type Entry = (Option<u64>, Message, Option<Arc<Deflated>>);

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) data: VecDeque<Entry>,
    /// `true` once the client has left (closed, evicted, gone): nothing more is accepted.
    /// Whoever sets it counts the departure, so each client is counted exactly once...
    pub(crate) closed: bool,
    /// ...under this reason: the one its disconnect hook is told too.
    pub(crate) left_as: Option<DisconnectReason>,
    pub(crate) close: Option<CloseRequest>,
    /// A `missed` notice owed ahead of `data` (a topic's late catch-up found a gap).
    pub(crate) missed: Option<crate::history::Missed>,
}

impl Queue {
    /// Discards every queued message and returns how many there were.
    pub(crate) fn discard(&mut self) -> usize {
        let n = self.data.len() + usize::from(self.missed.take().is_some());
        self.data = VecDeque::new();
        n
    }
}

pub(crate) enum Push {
    Queued,
    /// The queue was full: the client is now evicted (counted, with the discarded messages and
    /// the refused one); the caller takes it out of the registry.
    Evicted,
    Closed,
}

/// State shared by a client's handles, its connection driver and the hub's registry.
pub(crate) struct Shared {
    pub(crate) id: ClientId,
    pub(crate) hub: Weak<HubInner>,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) waker: AtomicWaker,
    pub(crate) capacity: usize,
    pub(crate) data: Option<Box<dyn Any + Send + Sync>>,
    pub(crate) kind: ClientKind,
    /// Broadcasts with ids up to this one are not for this client: it resumed from an id
    /// issued by another node before this node had it.
    pub(crate) resume_after: AtomicU64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a departure and `dropped` messages; the caller has just closed the queue.
    fn count_departure(&self, reason: DisconnectReason, dropped: usize) {
        if let Some(hub) = self.hub.upgrade() {
            hub.count_dropped(dropped);
            hub.departed(self.id, reason);
        }
    }

    /// Queues a message, or evicts the client when its queue is full. Never blocks on the peer.
    pub(crate) fn push(&self, id: Option<u64>, message: Message) -> Push {
        self.push_shared(id, message, None)
    }

    /// [`Self::push`], with the compressed form the message's other recipients share.
    pub(crate) fn push_shared(
        &self,
        id: Option<u64>,
        message: Message,
        deflated: Option<Arc<Deflated>>,
    ) -> Push {
        let mut q = self.lock();
        if q.closed {
            return Push::Closed;
        }
        if q.data.len() >= self.capacity {
            q.closed = true;
            q.left_as = Some(DisconnectReason::SlowConsumer);
            q.close = Some(CloseRequest {
                frame: CloseFrame::from_static(CloseCode::POLICY, "slow consumer"),
                reason: DisconnectReason::SlowConsumer,
                drain: false,
                delay: std::time::Duration::ZERO,
            });
            // the queued messages and the one that found the queue full
            let dropped = q.discard() + 1;
            drop(q);
            self.count_departure(DisconnectReason::SlowConsumer, dropped);
            self.waker.wake();
            return Push::Evicted;
        }
        let was_empty = q.data.is_empty();
        q.data.push_back((id, message, deflated));
        drop(q);
        if was_empty {
            self.waker.wake();
        }
        Push::Queued
    }

    /// Asks the driver to close; counts the departure under the request's reason. Returns
    /// `false` (and counts nothing) if the client had already left.
    pub(crate) fn request_close(&self, request: CloseRequest) -> bool {
        let mut q = self.lock();
        if q.closed {
            return false;
        }
        q.closed = true;
        let dropped = if request.drain { 0 } else { q.discard() };
        let reason = request.reason;
        q.left_as = Some(reason);
        q.close = Some(request);
        drop(q);
        self.count_departure(reason, dropped);
        self.waker.wake();
        true
    }

    /// The driver leaves: closes the queue if nobody did yet (then counts the departure under
    /// `reason`), discards what is left in it, and leaves the registry. Returns the reason the
    /// departure was counted under (`reason`, unless the client was closed otherwise first).
    pub(crate) fn leave(&self, reason: DisconnectReason) -> DisconnectReason {
        let (first, dropped, counted) = {
            let mut q = self.lock();
            let first = !q.closed;
            q.closed = true;
            if first {
                q.left_as = Some(reason);
            }
            (first, q.discard(), q.left_as.unwrap_or(reason))
        };
        if let Some(hub) = self.hub.upgrade() {
            hub.count_dropped(dropped);
            if first {
                hub.departed(self.id, reason);
            }
            hub.unregister(self.id);
        }
        counted
    }
}
