//! The state every handle shares, below the modules that act on it: the hub's registry,
//! topic index, histories, backplane and counters ([`HubInner`]), each client's queue
//! ([`Shared`]), and the handle types the application holds ([`Hub`], [`Client`]). Their
//! methods live with what they do: `hub` (setup, upgrades, connect, shutdown), `client`,
//! `topics`, `fanout` (broadcast), `local` (delivery) and `driver` (the connection).

mod hooks;
mod queue;
mod topic_index;

pub(crate) use hooks::{AsyncConnect, AsyncDisconnect, Hooks, OnConnect, OnDisconnect};
pub(crate) use queue::{CloseRequest, Push, Shared};
pub(crate) use topic_index::{Joined, TopicIndex};

use crate::backplane::Backplane;
use crate::config::HubConfig;
use crate::history::History;
use crate::message::Message;
use crate::notify::Notify;
use crate::stats::{Counters, DisconnectReason};
use crate::topic_history::TopicHistories;
use crate::topic_name::TopicError;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};

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

/// A handle to one connected client: cheap to clone, usable from any thread, and safe to keep
/// after the client left (every call then reports it instead of panicking).
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
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

/// An inbound message and the client that sent it (Kashvi's `ws.Message`).
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The sender; `inbound.client.send(..)` replies to it alone.
    pub client: Client,
    /// The message, text or binary.
    pub message: Message,
}

pub(crate) type SyncHandler = dyn Fn(&Hub, Inbound) + Send + Sync;
pub(crate) type AsyncHandler = dyn Fn(Hub, Inbound) -> BoxFuture<'static, ()> + Send + Sync;

#[derive(Clone)]
pub(crate) enum Handler {
    Sync(Arc<SyncHandler>),
    Async(Arc<AsyncHandler>),
}

/// The state every handle shares: registry, topic index, histories, backplane, counters.
pub(crate) struct HubInner {
    pub(crate) config: HubConfig,
    pub(crate) registry: RwLock<HashMap<ClientId, Arc<Shared>>>,
    /// Topic subscriptions; locked after `history` and `registry` when held with them.
    pub(crate) topics: RwLock<TopicIndex>,
    /// Locked before `registry` whenever both are held: broadcasts are totally ordered with
    /// respect to joins, so a resuming client gets neither a gap nor a duplicate.
    pub(crate) history: Option<Mutex<History>>,
    /// The topics' histories (with `history`); locked after it, before `registry`.
    pub(crate) topic_history: Option<Mutex<TopicHistories>>,
    pub(crate) count: AtomicUsize,
    pub(crate) next_id: AtomicU64,
    pub(crate) handler: RwLock<Option<Handler>>,
    pub(crate) hooks: RwLock<Hooks>,
    pub(crate) backplane: RwLock<Arc<dyn Backplane>>,
    pub(crate) counters: Counters,
    pub(crate) shutting_down: AtomicBool,
    /// Connection drivers alive (registered or still closing).
    pub(crate) live: AtomicUsize,
    pub(crate) changed: Notify,
    pub(crate) warned_cross_origin: AtomicBool,
}

impl HubInner {
    /// Takes a client that has left (its queue is closed, its departure counted by whoever
    /// closed it) out of the registry. Counts nothing: departures are counted where a client's
    /// queue is closed (`Shared::push`, `Shared::request_close`, `Shared::leave`).
    pub(crate) fn unregister(&self, id: ClientId) {
        let removed = {
            let mut registry = self
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let removed = registry.remove(&id).is_some();
            if removed {
                self.count.store(registry.len(), Ordering::SeqCst);
            }
            removed
        };
        // Leaves all its topics at once, wherever the departure came from; even when it was
        // no longer in the registry (a shutdown drained it), it may still be in the index.
        let emptied = {
            let mut index = self.topics_mut();
            let emptied = index.leave_all(id);
            self.lost_interest(&emptied);
            emptied
        };
        self.became_idle(&emptied);
        if removed {
            self.changed.notify();
        }
    }

    /// Whether [`Hub::shutdown`] was called.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Counts one departure: called once per client, by whoever moved it from open to closed.
    pub(crate) fn departed(&self, id: ClientId, reason: DisconnectReason) {
        self.counters.disconnect(reason);
        tracing::debug!(client = %id, reason = reason.as_str(), "client left");
    }

    pub(crate) fn count_dropped(&self, n: usize) {
        if n > 0 {
            Counters::add(&self.counters.dropped, n as u64);
        }
    }

    pub(crate) fn handler(&self) -> Option<Handler> {
        self.handler
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A hub of WebSocket and Server-Sent Events clients: Kashvi's `ws.Hub`, without its event
/// loop.
///
/// A `Hub` is a cheap handle (an `Arc`); clone it into handlers, tasks and threads. There is no
/// `Run` to forget: every connection is driven by its own [`Connection`](crate::Connection) future, which the
/// adapter spawns, so creating a hub is all the setup there is.
///
/// # Concurrency contract
/// - **Broadcast and send never wait for a client.** They lock the registry for reading and
///   each recipient's queue for a push, and return. They may be called from any thread, from
///   plain sync code and from inside the message handler.
/// - **Handlers run on the sender's own connection task.** Calls for one client are sequential
///   and in arrival order: the next message is not read until the handler call (or its future)
///   for the previous one has finished. Handlers of different clients run concurrently. A slow
///   handler delays only its own client's reads; writes and pings to that client continue.
/// - A sync handler ([`Hub::on_message`]) must not block: it runs on a runtime worker. Use
///   [`Hub::on_message_async`] for anything that waits.
///
/// # Slow clients
/// Each client has a bounded queue ([`HubConfig::queue_capacity`], 256 by default). When a
/// [`Hub::broadcast`] or a [`Client::send`] finds it full, the client is **evicted**: removed
/// from the registry at once, its queued messages discarded and counted in [`Stats::dropped`](crate::Stats::dropped),
/// and its connection closed with code **1008** and reason `"slow consumer"`, counted in
/// [`Stats::evicted`](crate::Stats::evicted). The message that found the queue full is counted in
/// [`Stats::dropped`](crate::Stats::dropped) too, from `broadcast` and `send` alike. Other clients are not affected
/// and the publisher is never blocked.
///
/// # Departures
/// Every client that joined leaves exactly once, and [`Stats::disconnected`](crate::Stats::disconnected) counts it once,
/// under the reason of whoever closed it first: the peer, an eviction, the keepalive,
/// [`Client::close`] or [`Hub::shutdown`], even when several race.
/// Pings and close frames do not go through the queue, so they are never dropped behind data.
///
/// ```
/// use hub_core::{Hub, Message};
///
/// let hub = Hub::new();
/// hub.on_message(|hub, msg| {
///     hub.broadcast(msg.message.clone());                 // to everyone
///     let _ = msg.client.send(r#"{"type":"ack"}"#);       // or to the sender only
/// });
/// assert_eq!(hub.broadcast(Message::text("nobody here yet")), 0);
/// assert_eq!(hub.client_count(), 0);
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

/// A handle that does not keep its hub alive, for tasks the hub itself owns (a backplane's).
#[derive(Clone)]
pub struct WeakHub {
    pub(crate) inner: Weak<HubInner>,
}

impl WeakHub {
    /// The hub, if it still exists.
    pub fn upgrade(&self) -> Option<Hub> {
        self.inner.upgrade().map(|inner| Hub { inner })
    }
}

impl fmt::Debug for WeakHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakHub")
    }
}

impl HubInner {
    pub(crate) fn topics(&self) -> std::sync::RwLockReadGuard<'_, TopicIndex> {
        self.topics.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn topics_mut(&self) -> std::sync::RwLockWriteGuard<'_, TopicIndex> {
        self.topics.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn topic_history(&self) -> Option<MutexGuard<'_, TopicHistories>> {
        self.topic_history
            .as_ref()
            .map(|h| h.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Subscribes `shared` to `topic` in `index` (the topic lock held) and tells the
    /// backplane when the topic is new here. `resume`: the id a resuming subscriber last saw,
    /// for a topic that waits for the backplane's catch-up.
    pub(crate) fn join_topic(
        &self,
        index: &mut TopicIndex,
        shared: &Arc<Shared>,
        topic: &str,
        resume: Option<u64>,
    ) -> Result<Joined, TopicError> {
        let backplane = self.backplane();
        let joined = index.join(
            shared,
            topic,
            self.config.max_topics_per_client,
            backplane.catches_up(),
            resume,
        )?;
        if joined.first {
            backplane.interest(topic, true);
        }
        Ok(joined)
    }

    /// Tells the backplane that `topics` lost their last local subscriber (the topic lock
    /// held, so it hears of joins and leaves in order).
    pub(crate) fn lost_interest(&self, topics: &[Arc<str>]) {
        if topics.is_empty() {
            return;
        }
        let backplane = self.backplane();
        for topic in topics {
            backplane.interest(topic, false);
        }
    }

    /// Topics that lost their last subscriber start their idle time (their history is
    /// dropped once it is over; at once under a backplane that catches topics up, since it
    /// stops receiving them). Called with no topic lock held.
    pub(crate) fn became_idle(&self, topics: &[Arc<str>]) {
        if topics.is_empty() {
            return;
        }
        let forget = self.backplane().catches_up();
        if let Some(mut histories) = self.topic_history() {
            let index = self.topics();
            for topic in topics {
                if forget && !index.has(topic) {
                    histories.forget(topic);
                } else {
                    histories.became_idle(topic);
                }
            }
        }
    }

    /// The hub's backplane.
    pub(crate) fn backplane(&self) -> Arc<dyn Backplane> {
        self.backplane
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
