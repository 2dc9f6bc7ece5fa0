//! Client handles and the per-client bounded outbound queue.

use crate::error::SendError;
use crate::hub::HubInner;
use crate::message::{CloseCode, CloseFrame, Message};
use crate::options::ClientKind;
use crate::stats::DisconnectReason;
use futures_util::task::AtomicWaker;
use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// A client's id, unique within its hub and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub(crate) u64);

impl ClientId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A request to end the connection, decided by the hub or the application.
#[derive(Clone, Debug)]
pub(crate) struct CloseRequest {
    pub(crate) frame: CloseFrame,
    pub(crate) reason: DisconnectReason,
    /// Write what is already queued first (graceful), or discard it (eviction).
    pub(crate) drain: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) data: VecDeque<(Option<u64>, Message)>,
    /// `true` once the client has left (closed, evicted, gone): nothing more is accepted.
    /// Whoever sets it counts the departure, so each client is counted exactly once.
    pub(crate) closed: bool,
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
        let mut q = self.lock();
        if q.closed {
            return Push::Closed;
        }
        if q.data.len() >= self.capacity {
            q.closed = true;
            q.close = Some(CloseRequest {
                frame: CloseFrame::from_static(CloseCode::POLICY, "slow consumer"),
                reason: DisconnectReason::SlowConsumer,
                drain: false,
            });
            // the queued messages and the one that found the queue full
            let dropped = q.discard() + 1;
            drop(q);
            self.count_departure(DisconnectReason::SlowConsumer, dropped);
            self.waker.wake();
            return Push::Evicted;
        }
        let was_empty = q.data.is_empty();
        q.data.push_back((id, message));
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
        q.close = Some(request);
        drop(q);
        self.count_departure(reason, dropped);
        self.waker.wake();
        true
    }

    /// The driver leaves: closes the queue if nobody did yet (then counts the departure under
    /// `reason`), discards what is left in it, and leaves the registry.
    pub(crate) fn leave(&self, reason: DisconnectReason) {
        let (first, dropped) = {
            let mut q = self.lock();
            let first = !q.closed;
            q.closed = true;
            (first, q.discard())
        };
        if let Some(hub) = self.hub.upgrade() {
            hub.count_dropped(dropped);
            if first {
                hub.departed(self.id, reason);
            }
            hub.unregister(self.id);
        }
    }
}

/// A handle to one connected client: cheap to clone, usable from any thread, and safe to keep
/// after the client left (every call then reports it instead of panicking).
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

impl Client {
    /// The client's id, unique within its hub.
    pub fn id(&self) -> ClientId {
        self.shared.id
    }

    /// Queues a message for this client only. Never blocks.
    ///
    /// # Errors
    /// - [`SendError::Closed`] if the client has left; the message is handed back.
    /// - [`SendError::Evicted`] if its queue was full: the same policy as
    ///   [`Hub::broadcast`](crate::Hub::broadcast), the client is evicted with close code 1008,
    ///   counted in [`Stats::evicted`](crate::Stats::evicted), and this message and the queued
    ///   ones in [`Stats::dropped`](crate::Stats::dropped).
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        match self.shared.push(None, message.clone()) {
            Push::Queued => Ok(()),
            Push::Closed => Err(SendError::Closed(message)),
            Push::Evicted => {
                if let Some(hub) = self.shared.hub.upgrade() {
                    hub.unregister(self.shared.id);
                }
                Err(SendError::Evicted)
            }
        }
    }

    /// Closes the connection with `code` and `reason` after the messages already queued for it
    /// are written. The client leaves the registry at once. Returns `false` if it had already
    /// left.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> bool {
        let requested = self.shared.request_close(CloseRequest {
            frame: CloseFrame::new(code, reason),
            reason: DisconnectReason::ClosedByServer,
            drain: true,
        });
        if requested {
            if let Some(hub) = self.shared.hub.upgrade() {
                hub.unregister(self.shared.id);
            }
        }
        requested
    }

    /// Whether this is a WebSocket client or an SSE subscriber.
    pub fn kind(&self) -> ClientKind {
        self.shared.kind
    }

    /// Whether the client is still in its hub's registry.
    pub fn is_connected(&self) -> bool {
        !self.shared.lock().closed
    }

    /// Messages waiting in this client's outbound queue.
    pub fn queued(&self) -> usize {
        self.shared.lock().data.len()
    }

    /// The metadata attached at upgrade, if it is a `T`.
    ///
    /// ```
    /// # #[allow(dead_code)]
    /// # fn demo(client: &hub_core::Client) {
    /// struct User { name: String }
    /// if let Some(user) = client.data::<User>() {
    ///     println!("{} says hi", user.name);
    /// }
    /// # }
    /// ```
    pub fn data<T: Any>(&self) -> Option<&T> {
        self.shared.data.as_deref().and_then(|d| d.downcast_ref())
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.shared.id)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl PartialEq for Client {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for Client {}
