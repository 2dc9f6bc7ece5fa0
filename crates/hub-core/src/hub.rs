//! The hub: registry, broadcast, handler, upgrade acceptance, shutdown.

use crate::backplane::LocalOnly;
use crate::config::{ConfigError, HubConfig};
use crate::driver::Connection;
use crate::handshake::{self, Accept, Rejection, RequestHead};
use crate::history::{History, Replay};
use crate::message::{CloseCode, CloseFrame};
use crate::notify::{Changed, Notify};
use crate::options::ConnectOptions;
use crate::origin::{is_same_origin, OriginPolicy};
use crate::state::TopicIndex;
use crate::state::{
    AsyncHandler, Client, ClientId, CloseRequest, Handler, Hub, HubInner, Inbound, Shared, WeakHub,
};
use crate::stats::{Counters, DisconnectReason, Stats};
use crate::topic_history::{self, TopicHistories};
use crate::transport::{Timer, Transport};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with Kashvi's defaults (Kashvi's `NewHub`).
    pub fn new() -> Self {
        Self::build(HubConfig::default())
    }

    /// A hub with `config`, once [`HubConfig::validate`] accepts it.
    ///
    /// ```
    /// use hub_core::{Hub, HubConfig};
    /// use std::time::Duration;
    ///
    /// let hub = Hub::with_config(HubConfig::default().ping_interval(Duration::from_secs(20)))?;
    /// assert_eq!(hub.config().ping_interval, Duration::from_secs(20));
    /// assert!(Hub::with_config(HubConfig::default().queue_capacity(0)).is_err());
    /// # Ok::<(), hub_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// The [`ConfigError`] that names the setting to fix.
    pub fn with_config(config: HubConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::build(config))
    }

    fn build(config: HubConfig) -> Self {
        let history = (config.history > 0).then(|| Mutex::new(History::new(config.history)));
        let topic_history = (config.history > 0).then(|| {
            Mutex::new(TopicHistories::new(
                config.topic_history.unwrap_or(config.history),
                config.topic_history_total,
                config.topic_history_bytes,
                config.topic_idle,
            ))
        });
        Self {
            inner: Arc::new(HubInner {
                config,
                history,
                topic_history,
                registry: RwLock::new(HashMap::new()),
                topics: RwLock::new(TopicIndex::default()),
                count: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                handler: RwLock::new(None),
                hooks: RwLock::default(),
                backplane: RwLock::new(Arc::new(LocalOnly)),
                counters: Counters::default(),
                shutting_down: AtomicBool::new(false),
                live: AtomicUsize::new(0),
                changed: Notify::default(),
                warned_cross_origin: AtomicBool::new(false),
            }),
        }
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Sets the inbound message handler (Kashvi's `OnMessage`), replacing any previous one.
    /// It runs on the sender's connection task and must not block; see the
    /// [concurrency contract](Hub#concurrency-contract).
    pub fn on_message(&self, handler: impl Fn(&Hub, Inbound) + Send + Sync + 'static) {
        *self
            .inner
            .handler
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Handler::Sync(Arc::new(handler)));
    }

    /// Sets an async inbound message handler, replacing any previous one. The connection keeps
    /// writing and pinging while the future runs; its next message is read when it completes.
    pub fn on_message_async<F, Fut>(&self, handler: F)
    where
        F: Fn(Hub, Inbound) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let boxed: Arc<AsyncHandler> = Arc::new(move |hub, msg| Box::pin(handler(hub, msg)));
        *self
            .inner
            .handler
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Handler::Async(boxed));
    }

    /// Clients connected now. Exact: it changes only under the registry's lock.
    pub fn client_count(&self) -> usize {
        self.inner.count.load(Ordering::SeqCst)
    }

    /// A handle to a connected client.
    pub fn client(&self, id: ClientId) -> Option<Client> {
        let registry = self
            .inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        registry.get(&id).map(|shared| Client {
            shared: shared.clone(),
        })
    }

    /// Handles to every connected client (a snapshot).
    pub fn clients(&self) -> Vec<Client> {
        let registry = self
            .inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        registry
            .values()
            .map(|shared| Client {
                shared: shared.clone(),
            })
            .collect()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::read(&self.inner.counters, self.client_count());
        stats.backplane = self.backplane().stats();
        stats
    }

    /// A handle that does not keep the hub alive.
    pub fn downgrade(&self) -> WeakHub {
        WeakHub {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Resolves at the first change of the registry (a client joined or left) or of the hub's
    /// state after this call. To wait for a condition without polling, take the notification
    /// *before* checking, so a change between the check and the wait is not missed:
    ///
    /// ```
    /// # #[allow(dead_code)]
    /// # async fn demo(hub: hub_core::Hub) {
    /// loop {
    ///     let changed = hub.changed(); // first...
    ///     if hub.client_count() >= 3 {
    ///         break; // ...then check
    ///     }
    ///     changed.await;
    /// }
    /// # }
    /// ```
    pub fn changed(&self) -> Changed<'_> {
        self.inner.changed.changed()
    }

    /// Validates an upgrade request: method, headers, key, the hub's origin policy and its
    /// state. Adapters answer 101 with the [`Accept`] or the [`Rejection`]'s status.
    ///
    /// # Errors
    /// The [`Rejection`] to answer with; each is counted in [`Stats::rejected`].
    pub fn accept(&self, head: &dyn RequestHead) -> Result<Accept, Rejection> {
        let result = self.check(head);
        if let Err(rejection) = result {
            self.inner.counters.reject(rejection);
            tracing::debug!(%rejection, "upgrade refused");
        }
        result
    }

    /// Admits a subscription that is not a WebSocket upgrade (Server-Sent Events): checks the
    /// hub's state and its origin policy.
    ///
    /// # Errors
    /// [`Rejection::ShuttingDown`], [`Rejection::TooManyConnections`] or
    /// [`Rejection::OriginDenied`], counted in
    /// [`Stats::rejected`].
    pub fn admit(&self, head: &dyn RequestHead) -> Result<(), Rejection> {
        let result = self.check_admission(head);
        if let Err(rejection) = result {
            self.inner.counters.reject(rejection);
            tracing::debug!(%rejection, "subscription refused");
        }
        result
    }

    /// Counts an upgrade or subscription that the application's authorization step refused
    /// (adapters call it with the [`Refusal`](crate::Refusal) they answer).
    pub fn refused(&self, refusal: &crate::Refusal) {
        self.inner.counters.reject(Rejection::Refused);
        tracing::debug!(
            status = refusal.status,
            "upgrade refused by the application"
        );
    }

    /// Counts a refusal that an adapter or a subscription flow decided before the hub saw the
    /// request: [`Rejection::NotAcceptable`], for an event-stream endpoint asked for something
    /// else (`sse-core`'s subscription flow calls it). [`Hub::accept`], [`Hub::admit`] and the
    /// authorization step count their own.
    pub fn count_rejection(&self, rejection: Rejection) {
        self.inner.counters.reject(rejection);
        tracing::debug!(%rejection, "request refused");
    }

    fn check(&self, head: &dyn RequestHead) -> Result<Accept, Rejection> {
        if self.is_shutting_down() {
            return Err(Rejection::ShuttingDown);
        }
        let mut accept = handshake::validate(head)?;
        self.check_admission(head)?;
        accept.negotiate(head, &self.inner.config.deflate);
        Ok(accept)
    }

    fn check_admission(&self, head: &dyn RequestHead) -> Result<(), Rejection> {
        if self.is_shutting_down() {
            return Err(Rejection::ShuttingDown);
        }
        if let Some(max) = self.inner.config.max_connections {
            if self.client_count() >= max {
                return Err(Rejection::TooManyConnections);
            }
        }
        let policy = &self.inner.config.origin;
        if !policy.check(head) {
            return Err(Rejection::OriginDenied);
        }
        if matches!(policy, OriginPolicy::AllowAll) {
            if let Some(origin) = head.header_str("origin") {
                if !is_same_origin(origin, head.header_str("host"))
                    && !self.inner.warned_cross_origin.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(
                        origin,
                        "accepted a cross-origin WebSocket upgrade under the default allow-all \
                         origin policy; set HubConfig::origin to OriginPolicy::SameOrigin or an \
                         allow-list (or AllowAllExplicit to silence this warning)"
                    );
                }
            }
        }
        Ok(())
    }

    /// Registers a client on an upgraded transport and returns the future that drives it.
    /// The adapter spawns it (or, for SSE, polls it from the response body).
    ///
    /// With [`ConnectOptions::last_event_id`] and a hub history, the client is registered and
    /// its replay taken under the history lock: it gets every later message exactly once.
    /// With [`ConnectOptions::topics`], it is subscribed under the same lock that registers
    /// it (beyond [`HubConfig::max_topics_per_client`] initial topics, the rest are refused
    /// and logged).
    /// If the hub is shutting down, the connection is closed at once with 1001.
    pub fn connect<T: Transport, R: Timer>(
        &self,
        transport: T,
        timer: R,
        options: ConnectOptions,
    ) -> Connection<T, R> {
        let ConnectOptions {
            data,
            last_event_id,
            liveness,
            kind,
            mut topics,
            peer,
            route,
            ..
        } = options;
        let limit = self.inner.config.max_topics_per_client;
        if topics.len() > limit {
            // capped before any lock: one line for all the refused ones
            tracing::warn!(
                given = topics.len(),
                limit,
                "initial topics beyond the per-client limit refused"
            );
            topics.truncate(limit);
        }
        let id = ClientId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let shared = Arc::new(Shared {
            id,
            hub: Arc::downgrade(&self.inner),
            queue: Mutex::default(),
            waker: Default::default(),
            capacity: self.inner.config.queue_capacity,
            data,
            kind,
            resume_after: AtomicU64::new(0),
        });
        // The connection exists before the client is registered or counted: nothing that
        // building it could do leaves a client behind.
        // every event of the connection carries these (a debug span: no line per connect)
        let span = tracing::debug_span!(
            "connection",
            hub = %self.inner.config.name,
            client = id.0,
            kind = ?kind,
            peer = ?peer,
            route = route.as_deref().unwrap_or(""),
        );
        let mut connection = Connection::new(
            span,
            self.clone(),
            Client {
                shared: shared.clone(),
            },
            transport,
            timer,
            liveness,
        );
        self.inner.live.fetch_add(1, Ordering::SeqCst);
        let mut replay = Replay::default();
        // topics whose messages up to `last` are on their way from another node
        let mut wait_on: Vec<&str> = Vec::new();
        let registered = {
            let history = self
                .inner
                .history
                .as_ref()
                .map(|h| h.lock().unwrap_or_else(PoisonError::into_inner));
            if let (Some(history), Some(last)) = (&history, last_event_id) {
                let backplane = self.backplane();
                replay = history.since(last);
                if last > history.newest() && backplane.may_arrive(None, last) {
                    // issued by another node and not here yet: wait for what follows it
                    replay = Replay::default();
                    shared.resume_after.store(last, Ordering::Relaxed);
                }
                if !topics.is_empty() {
                    if let Some(mut topic_history) = self.inner.topic_history() {
                        // as a resume by subscribe_from does: an idle topic past its time
                        // has no history to give
                        topic_history.expire(std::time::Instant::now(), &*self.inner.topics());
                        // the replay is the merge, by id, of the broadcasts' and the topics'
                        // histories after `last` (one id sequence per hub in one process)
                        let mut more = Vec::with_capacity(topics.len());
                        for topic in &topics {
                            let newest = topic_history.newest(topic).max(history.newest());
                            if last > newest && backplane.may_arrive(Some(topic), last) {
                                wait_on.push(topic);
                            } else {
                                more.push(topic_history.since(topic, last));
                            }
                        }
                        topic_history::merge_all(&mut replay, more);
                    }
                }
            }
            let mut registry = self
                .inner
                .registry
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let full = self
                .inner
                .config
                .max_connections
                .is_some_and(|max| registry.len() >= max);
            if self.is_shutting_down() {
                Err(shutdown_request())
            } else if full {
                // upgrades that raced past `accept`'s check: the limit holds all the same
                self.inner.counters.reject(Rejection::TooManyConnections);
                Err(CloseRequest {
                    frame: CloseFrame::from_static(
                        CloseCode::TRY_AGAIN_LATER,
                        "too many connections",
                    ),
                    reason: DisconnectReason::Shutdown,
                    drain: false,
                    delay: Duration::ZERO,
                })
            } else {
                registry.insert(id, shared.clone());
                self.inner.count.store(registry.len(), Ordering::SeqCst);
                if !topics.is_empty() {
                    // under the registry's lock: subscribed from the moment it is connected
                    let mut index = self.inner.topics_mut();
                    for topic in &topics {
                        // a new client with at most `limit` distinct valid topics: never refused
                        let joined =
                            self.inner
                                .join_topic(&mut index, &shared, topic, last_event_id);
                        if joined.is_ok_and(|j| !j.waiting)
                            && wait_on.iter().any(|t| **t == **topic)
                        {
                            if let (Some(last), Some(entry)) =
                                (last_event_id, index.topic_mut(topic))
                            {
                                entry.set_after(id, last);
                            }
                        }
                    }
                }
                // counted before anyone can see it leave: total >= departures at all times
                Counters::add(&self.inner.counters.connections_total, 1);
                Ok(())
            }
        };
        match registered {
            Ok(()) => {
                tracing::debug!(client = %id, "client joined");
                self.inner.changed.notify();
                connection.set_replay(replay);
                connection.joined();
            }
            Err(close) => {
                // Never joined, so never counted as leaving (nor greeted by the hooks): closed
                // at once, with 1001 (shutting down) or 1013 (over the connection limit).
                let mut q = shared.lock();
                q.closed = true;
                q.close = Some(close);
            }
        }
        connection
    }

    /// Starts a graceful shutdown: later upgrades get 503, every client leaves the registry
    /// and is closed with 1001 Going Away after its queue is flushed (each flush bounded by
    /// [`HubConfig::shutdown_timeout`]). Await [`Hub::closed`] for the connections to end.
    pub fn shutdown(&self) {
        let drained = self.drain_for_shutdown();
        self.close_drained(&drained);
    }

    /// Shutdown's first half: marks the hub shutting down and empties the registry and the
    /// topic index (a subscribe from now on is refused under the topic lock).
    pub(crate) fn drain_for_shutdown(&self) -> Vec<Arc<Shared>> {
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let all = registry.drain().map(|(_, shared)| shared).collect();
        self.inner.count.store(0, Ordering::SeqCst);
        let mut index = self.inner.topics_mut();
        let emptied = index.clear();
        self.inner.lost_interest(&emptied);
        all
    }

    /// Shutdown's second half: closes the drained clients.
    pub(crate) fn close_drained(&self, drained: &[Arc<Shared>]) {
        // spread over the window, at most 1 ms apart: a few clients close at once
        let n = u32::try_from(drained.len()).unwrap_or(u32::MAX).max(1);
        let gap = (self.inner.config.shutdown_spread / n).min(Duration::from_millis(1));
        let mut delay = Duration::ZERO;
        for shared in drained {
            // counted as a shutdown departure unless the client left some other way first
            shared.request_close(CloseRequest {
                delay,
                ..shutdown_request()
            });
            delay = delay.saturating_add(gap);
        }
        tracing::debug!(clients = drained.len(), "hub shutting down");
        self.inner.changed.notify();
    }

    /// Whether [`Hub::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.is_shutting_down()
    }

    /// Connection drivers still running (registered clients plus connections still closing).
    pub fn live_connections(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// Resolves once the hub is shutting down and every connection has ended.
    pub async fn closed(&self) {
        // The notification is taken before each check: a connection that ends in between
        // still wakes this wait.
        self.inner
            .changed
            .until(|| self.is_shutting_down() && self.live_connections() == 0)
            .await;
    }
}

fn shutdown_request() -> CloseRequest {
    CloseRequest {
        delay: Duration::ZERO,
        frame: CloseFrame::from_static(CloseCode::GOING_AWAY, "server shutting down"),
        reason: DisconnectReason::Shutdown,
        drain: true,
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("clients", &self.client_count())
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}
