#![doc = include_str!("../README.md")]
//!
//! Each hub maps to a Redis channel, `{prefix}{name}`, and a stream, `{prefix}{name}:history`.
//! A node's broadcasts go from one task, in batches, to a Lua script that gives each one the
//! cluster's next id (microseconds of Redis's clock, or one more than the newest id the stream
//! or the publishing node has seen: ids keep increasing even across a restart of a Redis that
//! kept nothing), appends it to the stream (capped at the history length + 2) and publishes
//! it; the script runs atomically, so ids reach every subscriber in increasing order. Every
//! node, the origin included, delivers what it receives from the channel and records it in
//! its hub's history under that id: the histories are replicas, and a client resuming with an
//! id from another node gets exactly what followed it. A node that joins reads the stream
//! into its history; one that reconnects after an outage delivers from the stream everything
//! it missed that the stream still holds (at most the history length + 2; a longer outage is
//! counted in [`BackplaneStats::catch_up_gaps`]).
//! An id from the channel or the stream more than a minute ahead of Redis's clock and of the
//! newest id is refused and counted in [`BackplaneStats::malformed`] (so is one that went
//! backwards, which is still delivered, without an id).
//!
//! **When Redis is down** local delivery goes on: a broadcast reaches this node's clients at
//! once, without an id (none the cluster agrees on can be given), counted in
//! [`BackplaneStats::local_only`], and is lost to the other nodes (at-most-once, like
//! socket.io's Redis adapter). Every broadcast passes through one publishing task, so this
//! node's clients get its broadcasts in the order they were made, whatever the state does
//! meanwhile. Broadcasts already waiting to be published when the connection fails, or whose
//! reply does not come within a second (a frozen Redis), are delivered here the same way
//! ([`BackplaneStats::publish_failed`]) and take the state out of `Up`, so later ones do not
//! wait for a timeout each. A publish that timed out may still run when Redis comes back: the
//! other nodes then get it late, and this node, recognising its own sequence number, only
//! records it in its history. More than [`RedisConfig::buffer`] waiting are delivered here at
//! once ([`BackplaneStats::dropped`]). The connection (redis-rs's `ConnectionManager` over
//! RESP3, chosen because it reconnects on its own, with backoff, and resubscribes) comes back
//! by itself; every [`RedisConfig::probe_interval`] a probe pings Redis while `Up` and, while
//! not, subscribes and reads the stream again, until one attempt succeeds.
//!
//! Logs never show the Redis password: errors are scrubbed of it, and [`redact_url`] gives a
//! URL fit to log.
//!
//! Why a stream and a script rather than `INCR` and pub/sub alone: `INCR` ids restart at 1
//! when a Redis that keeps no data restarts, and an `INCR` followed by a `PUBLISH` lets two
//! nodes publish ids out of order; the stream is the history a joining or reconnecting node
//! reads, with ids it can ask for a range after.
//!
//! **Topics are not carried across the cluster yet.** A [`Hub::publish`] to a topic is
//! delivered to this node's subscribers of the topic only, at once and without an id (an id
//! of this node's own would collide with the cluster's ids); the other nodes do not get it,
//! and a topic publish is not in the Redis stream, so it cannot be resumed. Broadcasts to
//! everyone work as described above. Per-topic channels are the next step.
#![doc(test(attr(deny(warnings))))]

mod envelope;
mod own;
mod publish;
mod redact;
mod stats;
mod subscribe;

pub use hub_core::{BackplaneState, BackplaneStats};
pub use redact::redact_url;

use hub_core::{Backplane, Broadcast, Hub, Local};
use redact::Secret;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use stats::Counters;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Settings of one hub's backplane.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The hub's name; with the prefix, its channel. Hubs of the same name on different nodes
    /// share their broadcasts.
    pub name: String,
    /// Channel prefix. Default: `hub:`.
    pub prefix: String,
    /// Broadcasts waiting to be published; more while Redis is slow are delivered to this
    /// node only (and counted). Default: 4096.
    pub buffer: usize,
    /// Messages kept in the Redis history stream. Default (`None`): the hub's history
    /// length, at least 64.
    pub history: Option<usize>,
    /// How often Redis is probed: a `PING` while `Up`; while not, a new subscription and a
    /// read of the stream, until one succeeds. Default: 500 ms.
    pub probe_interval: Duration,
    /// Longest wait between reconnect attempts. Default: 1 s.
    pub max_backoff: Duration,
}

impl RedisConfig {
    /// Defaults for the hub called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            prefix: "hub:".into(),
            buffer: 4096,
            history: None,
            probe_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(1),
        }
    }

    /// Set [`Self::prefix`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The Redis channel of this hub.
    pub fn channel(&self) -> String {
        format!("{}{}", self.prefix, self.name)
    }

    /// The Redis stream that keeps this hub's history.
    pub fn stream(&self) -> String {
        format!("{}{}:history", self.prefix, self.name)
    }
}

/// A hub's Redis backplane; see the crate documentation.
#[derive(Debug)]
pub struct RedisBackplane {
    node: u64,
    /// The hub's handle, from [`Backplane::attach`].
    local: std::sync::OnceLock<Local>,
    outbox: mpsc::Sender<Broadcast>,
    counters: Arc<Counters>,
}

impl RedisBackplane {
    /// This node's id, as it tags what it publishes.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// The backplane's state and counters (also in the hub's [`Hub::stats`]).
    pub fn stats(&self) -> BackplaneStats {
        self.counters.snapshot()
    }

    /// Waits until the backplane is in `state` (at once if it is).
    pub async fn until(&self, state: BackplaneState) {
        let mut changes = self.counters.changes.subscribe();
        let _ = changes.wait_for(|s| *s == state).await;
    }
}

impl Backplane for RedisBackplane {
    fn attach(&self, local: Local) {
        let _ = self.local.set(local);
    }

    fn broadcast(&self, local: &Local, message: Broadcast) -> usize {
        // Up or not, through the publisher: it delivers here what Redis does not take, in
        // the order the broadcasts were made
        match self.outbox.try_send(message) {
            Ok(()) => 0,
            Err(mpsc::error::TrySendError::Full(message)) => {
                Counters::bump(&self.counters.dropped);
                local.deliver_without_id(message)
            }
            Err(mpsc::error::TrySendError::Closed(message)) => {
                Counters::bump(&self.counters.local_only);
                local.deliver_without_id(message)
            }
        }
    }

    fn publish(&self, local: &Local, topic: &str, message: Broadcast) -> usize {
        // Not carried across the cluster yet: a topic publish reaches this node's subscribers
        // only, without an id (an id of this node's own would collide with the cluster's).
        // See the crate docs, "Topics".
        local.deliver_without_id(message.to_topic(topic))
    }

    fn stats(&self) -> Option<BackplaneStats> {
        Some(self.counters.snapshot())
    }

    fn may_arrive(&self, topic: Option<&str>, id: u64) -> bool {
        // ids are microseconds of Redis's clock: one more than a minute ahead of ours is not
        // in flight, it is bogus (or from a clock gone wrong); topics do not cross nodes yet
        topic.is_none()
            && self.counters.state() == BackplaneState::Up
            && id <= self.counters.cluster_now().saturating_add(MAX_AHEAD)
    }
}

/// How far ahead of Redis's clock an id may be (a minute, in microseconds): a client's
/// `Last-Event-ID` beyond it is not waited for, a message from the channel beyond it (and
/// beyond the newest id) is refused as malformed.
pub(crate) const MAX_AHEAD: u64 = 60_000_000;

/// Microseconds since the Unix epoch.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A node id: random enough that two processes never share one.
fn node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_micros());
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Connects `hub` to Redis at `url` (`redis://host:port/db`) and makes the backplane its
/// broadcast path. Returns at once: the connection is made in the background, and local
/// delivery works whether or not Redis is reachable. Must be called inside a tokio runtime.
/// The backplane's task and its connection end when the hub is dropped (within one
/// [`RedisConfig::probe_interval`]); its state is then `Down`.
///
/// # Errors
///
/// Only for a URL that cannot be parsed.
pub fn attach(
    hub: &Hub,
    url: &str,
    config: RedisConfig,
) -> Result<Arc<RedisBackplane>, redis::RedisError> {
    let info: redis::ConnectionInfo = url.parse()?;
    let secret = Secret::new(info.redis_settings().password());
    // Pub/sub messages arrive as RESP3 pushes on the same, self-healing connection as the
    // publishes: a node's own broadcast is back in its push channel before the script's reply.
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let info = info.set_redis_settings(settings);
    let client = redis::Client::open(info)?;
    let (push_tx, push_rx) = mpsc::unbounded_channel();
    let manager_config = ConnectionManagerConfig::new()
        .set_push_sender(push_tx)
        .set_automatic_resubscription()
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(config.max_backoff)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    let manager = ConnectionManager::new_lazy_with_config(client, manager_config)?;
    let (outbox, inbox) = mpsc::channel(config.buffer.max(1));
    let counters = Arc::new(Counters::default());
    let backplane = Arc::new(RedisBackplane {
        node: node_id(),
        local: std::sync::OnceLock::new(),
        outbox,
        counters: counters.clone(),
    });
    let target = publish::Target {
        channel: config.channel(),
        stream: config.stream(),
        history: config.history.unwrap_or(hub.config().history).max(64),
    };
    // the hub hands the backplane its delivery handle; broadcasts wait in the outbox until
    // the publisher starts
    hub.set_backplane(backplane.clone());
    let local = match backplane.local.get() {
        Some(local) => local.clone(),
        None => unreachable!("Hub::set_backplane attaches the backplane"),
    };
    let ledger = Arc::new(own::Ledger::default());
    let subscriber = subscribe::Subscriber::new(
        local.clone(),
        manager.clone(),
        target.clone(),
        push_rx,
        backplane.node,
        counters.clone(),
        ledger.clone(),
        secret.clone(),
        config.probe_interval,
    );
    let publisher = publish::Publisher::new(
        local.clone(),
        manager.clone(),
        target,
        inbox,
        backplane.node,
        counters.clone(),
        ledger,
        secret.clone(),
    );
    let watchdog = watchdog(
        local.clone(),
        manager,
        counters.clone(),
        config.probe_interval,
        secret,
    );
    tokio::spawn(async move {
        // whatever ends the tasks (the hub dropped, or a bug), the state says so
        let _down = DownOnExit(counters);
        // the first to end ends the others, and with them the connection
        tokio::select! {
            () = subscriber.run() => {}
            () = publisher.run() => {}
            () = watchdog => {}
        }
    });
    Ok(backplane)
}

/// Sets the state `Down` when the backplane's task ends, however it ends.
struct DownOnExit(Arc<Counters>);

impl Drop for DownOnExit {
    fn drop(&mut self) {
        self.0.set_state(BackplaneState::Down);
    }
}

/// Pings Redis every `interval` while `Up`: a Redis that stopped answering (frozen, or a
/// connection that died silently) takes the state out of `Up` even when nothing is
/// published. Ends when the hub is gone.
async fn watchdog(
    hub: Local,
    mut manager: ConnectionManager,
    counters: Arc<Counters>,
    interval: Duration,
    secret: Secret,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !hub.is_alive() {
            return;
        }
        if counters.state() != BackplaneState::Up {
            continue;
        }
        let reply: Result<(), _> = redis::cmd("PING").query_async(&mut manager).await;
        if let Err(error) = reply {
            if !matches!(error.kind(), redis::ErrorKind::Server(_)) {
                tracing::debug!(error = %secret.scrub(&error), "Redis does not answer");
                counters.set_state(BackplaneState::Down);
            }
        }
    }
}
