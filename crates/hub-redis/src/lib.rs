#![doc = include_str!("../README.md")]
//!
//! # Channels, streams and ids
//! Each hub maps to a Redis channel, `{prefix}{name}`, and a stream, `{prefix}{name}:history`,
//! for its broadcasts to everyone; each topic to a channel `{prefix}{name}:t:{<topic>}` and a
//! stream `{prefix}{name}:t:{<topic>}:history` ([`RedisConfig::topic_channel`],
//! [`RedisConfig::topic_stream`]). The braces are Redis Cluster's hash tag: a topic's channel
//! and stream hash to one slot, so the scripts stay valid on a cluster and sharded pub/sub
//! needs no renaming. Inside them the topic is escaped (`%` → `%25`, `{` → `%7B`, `}` → `%7D`)
//! so the tag is exactly the topic; the prefix and the name may hold no brace ([`attach`]
//! refuses them).
//!
//! A node's broadcasts and topic publishes go from one task, in the order they were made, in
//! batches: each run of consecutive messages for the same audience (everyone, or one topic)
//! is one call of a Lua script that gives each message the next id of its stream
//! (microseconds of Redis's clock, read for each message, or one more than the newest id the
//! stream or the publishing node has seen: ids keep increasing even across a restart of a
//! Redis that kept nothing), appends it to the stream (capped at the history length + 2) and
//! publishes it; the script runs atomically, so ids reach every subscriber in increasing
//! order. Every node, the origin included, delivers what it receives from a channel and
//! records it in its hub's history (the hub's, or the topic's) under that id: the histories
//! are replicas, and a client resuming with an id from another node gets exactly what
//! followed it. A node that joins reads the hub's stream into its history; one that
//! reconnects after an outage delivers from each stream everything it missed that the stream
//! still holds (at most the history length + 2; a longer outage is counted in
//! [`BackplaneStats::catch_up_gaps`]).
//! An id from a channel or a stream more than a minute ahead of Redis's clock and of the
//! newest id is refused and counted in [`BackplaneStats::malformed`] (so is one that went
//! backwards, which is still delivered, without an id).
//!
//! **Ids across topics.** Ids are cluster-wide and strictly increasing per topic (and for
//! the hub's broadcasts): a stream of one topic resumes exactly on any node. A stream over
//! several topics (an SSE stream with several, whose one `Last-Event-ID` resumes each of
//! them) is exact as long as Redis's clock does not step back: one Redis runs the scripts one
//! at a time, each message reads the clock, and publishing a message takes Redis more than a
//! microsecond, so the ids of all topics follow the order Redis ran the publishes in — the
//! order every node receives them in. Two exceptions: a `publish_with`/`broadcast_with`
//! builder puts its id in the payload before Redis runs it, so its id is the node's estimate
//! of Redis's clock (refused and proposed again if not above the topic's newest); and a
//! burst of more than one message per microsecond on one stream takes ids ahead of the
//! clock. Either can place a message of one topic a few microseconds out of order with
//! another topic's.
//!
//! # Topics across the cluster
//! A node subscribes to a topic's channel when the topic gains its first local subscriber,
//! and unsubscribes when it loses its last, on its one Redis connection (no connection per
//! topic): a node without subscribers for a topic receives none of its traffic. The topic's
//! first subscribers wait until the node has read the topic's stream, after its channel went
//! live, so they get what they are owed without a gap: a client resuming the topic with an
//! id from any node gets what followed it (or a `missed` notice when the stream no longer
//! reaches back); a fresh one gets what was published after it subscribed — counted from
//! Redis's clock as this node last read it (the watchdog's probe reads it every
//! [`RedisConfig::probe_interval`]), so it may also get a few messages from up to one probe
//! interval before. Each topic's stream keeps the last history length + 2 messages (a
//! resume from before them gets the `missed` notice) and expires [`RedisConfig::topic_ttl`]
//! after its last publish, so a million short-lived topics do not grow Redis's memory without
//! limit. An expired stream, like a stream a restarted Redis lost, holds nothing to tell what
//! it held: a client resuming a topic from before its stream expired (away for longer than
//! the time to live, on a node where nobody else kept the topic) is not told of the messages
//! published before the expiry. Two cases are conservative: a client that resumes a topic on
//! a node while Redis is away, or while the node is still acting on the topic's last
//! subscriber leaving (a leave and a join within moments), gets a `missed` notice instead of
//! the replay, then the topic's messages.
//!
//! **When Redis is down** local delivery goes on: a broadcast or topic publish reaches this
//! node's clients (everyone, or the topic's subscribers) at once, without an id (none the
//! cluster agrees on can be given), counted in [`BackplaneStats::local_only`], and is lost to
//! the other nodes (at-most-once, like socket.io's Redis adapter). Every message passes
//! through one publishing task, so this node's clients get its messages in the order they
//! were made, whatever the state does meanwhile. Messages already waiting to be published
//! when the connection fails, or whose reply does not come within a second (a frozen Redis),
//! are delivered here the same way ([`BackplaneStats::publish_failed`]) and take the state
//! out of `Up`, so later ones do not wait for a timeout each. A publish that timed out may
//! still run when Redis comes back: the other nodes then get it late, and this node,
//! recognising its own sequence number, only records it in its history. More than
//! [`RedisConfig::buffer`] waiting are delivered here at once ([`BackplaneStats::dropped`]).
//! A topic that gains subscribers while Redis is away is live at once, with what this node
//! has; when Redis is back its stream is read and what was published meanwhile delivered.
//! The connection (redis-rs's `ConnectionManager` over RESP3, chosen because it reconnects on
//! its own, with backoff, and resubscribes) comes back by itself; every
//! [`RedisConfig::probe_interval`] a probe reads Redis's clock while `Up` and, while not,
//! subscribes and reads the streams again, until one attempt succeeds.
//!
//! Logs never show the Redis password: errors are scrubbed of it, and [`redact_url`] gives a
//! URL fit to log.
//!
//! Why a stream and a script rather than `INCR` and pub/sub alone: `INCR` ids restart at 1
//! when a Redis that keeps no data restarts, and an `INCR` followed by a `PUBLISH` lets two
//! nodes publish ids out of order; the stream is the history a joining or reconnecting node
//! reads, with ids it can ask for a range after.
#![doc(test(attr(deny(warnings))))]

mod catch_up;
mod envelope;
mod interest;
mod keys;
mod line;
mod own;
mod publish;
mod redact;
mod stats;
mod subscribe;

pub use hub_core::{BackplaneState, BackplaneStats};
pub use redact::redact_url;

use hub_core::{Backplane, Broadcast, Hub, Local};
use interest::Interest;
use redact::Secret;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use stats::Counters;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Settings of one hub's backplane.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The hub's name; with the prefix, its channel. Hubs of the same name on different nodes
    /// share their broadcasts and topics. No braces (see the crate docs).
    pub name: String,
    /// Channel prefix. Default: `hub:`. No braces.
    pub prefix: String,
    /// Messages waiting to be published; more while Redis is slow are delivered to this
    /// node only (and counted). Default: 4096.
    pub buffer: usize,
    /// Messages kept in each Redis history stream (the hub's and each topic's). Default
    /// (`None`): the hub's history length, at least 64.
    pub history: Option<usize>,
    /// How long a topic's stream lives after its last publish. Default: 1 hour.
    pub topic_ttl: Duration,
    /// How often Redis is probed: its clock read while `Up`; while not, a new subscription
    /// and a read of the streams, until one succeeds. Not zero. Default: 500 ms.
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
            topic_ttl: Duration::from_secs(3600),
            probe_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(1),
        }
    }

    /// Set [`Self::prefix`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Set [`Self::topic_ttl`] (at least a millisecond).
    pub fn topic_ttl(mut self, ttl: Duration) -> Self {
        self.topic_ttl = ttl;
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

    /// The Redis channel of `topic`: `{prefix}{name}:t:{<topic>}`, the topic escaped.
    ///
    /// ```
    /// let config = hub_redis::RedisConfig::new("chat");
    /// assert_eq!(config.topic_channel("room:1"), "hub:chat:t:{room:1}");
    /// assert_eq!(config.topic_channel("50%{off}"), "hub:chat:t:{50%25%7Boff%7D}");
    /// ```
    pub fn topic_channel(&self, topic: &str) -> String {
        keys::topic_channel(&self.channel(), topic)
    }

    /// The Redis stream that keeps `topic`'s history: its channel and `:history`, in the same
    /// hash slot.
    pub fn topic_stream(&self, topic: &str) -> String {
        keys::topic_stream(&self.topic_channel(topic))
    }
}

/// A hub's Redis backplane; see the crate documentation.
#[derive(Debug)]
pub struct RedisBackplane {
    node: u64,
    outbox: mpsc::Sender<Broadcast>,
    counters: Arc<Counters>,
    interest: Arc<Interest>,
    /// Hands the hub's handle to the tasks (once, when the hub attaches this backplane).
    start: Mutex<Option<oneshot::Sender<Local>>>,
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

    /// Hands `message` to the publisher, or delivers it here without an id (counted) when
    /// too many wait or the backplane's task is gone.
    fn send(&self, local: &Local, message: Broadcast) -> usize {
        // Up or not, through the publisher: it delivers here what Redis does not take, in
        // the order the messages were made
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
}

impl Backplane for RedisBackplane {
    fn attach(&self, local: Local) {
        let start = self
            .start
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match start {
            Some(start) => {
                let _ = start.send(local);
            }
            None => tracing::error!("a Redis backplane serves one hub: attached to another"),
        }
    }

    fn broadcast(&self, local: &Local, message: Broadcast) -> usize {
        self.send(local, message)
    }

    fn publish(&self, local: &Local, topic: &str, message: Broadcast) -> usize {
        let message = match message.topic() {
            Some(to) if to == topic => message,
            _ => message.to_topic(topic),
        };
        self.send(local, message)
    }

    fn interest(&self, topic: &str, interested: bool) {
        // under the hub's topic lock: only noted here, the subscriber's task acts on it
        self.interest.set(topic, interested, self.counters.since());
    }

    fn catches_up(&self) -> bool {
        true
    }

    fn stats(&self) -> Option<BackplaneStats> {
        Some(self.counters.snapshot())
    }

    fn may_arrive(&self, _topic: Option<&str>, id: u64) -> bool {
        // ids are microseconds of Redis's clock, for every topic as for the hub: one more
        // than a minute ahead of ours is not in flight, it is bogus (or from a clock gone
        // wrong)
        self.counters.state() == BackplaneState::Up
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
/// broadcast and publish path. Returns at once: the connection is made in the background, and
/// local delivery works whether or not Redis is reachable. Must be called inside a tokio
/// runtime. The backplane's task and its connection end when the hub is dropped (within one
/// [`RedisConfig::probe_interval`]); its state is then `Down`.
///
/// # Errors
///
/// A URL that cannot be parsed, or a prefix or name with a brace, or a zero
/// [`RedisConfig::probe_interval`] ([`redis::ErrorKind::InvalidClientConfig`]).
pub fn attach(
    hub: &Hub,
    url: &str,
    config: RedisConfig,
) -> Result<Arc<RedisBackplane>, redis::RedisError> {
    keys::check(&config.prefix, &config.name).map_err(|why| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "invalid hub name",
            why,
        ))
    })?;
    if config.probe_interval.is_zero() {
        // tokio's interval would panic in the backplane's task: no cluster, and no error
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "invalid RedisConfig",
            "probe_interval must not be zero".to_string(),
        )));
    }
    let info: redis::ConnectionInfo = url.parse()?;
    let secret = Secret::new(info.redis_settings().password());
    // Pub/sub messages arrive as RESP3 pushes on the same, self-healing connection as the
    // publishes: a node's own broadcast comes back on it just before the script's reply.
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
    let (start, started) = oneshot::channel();
    let counters = Arc::new(Counters::default());
    let interest = Arc::new(Interest::default());
    let backplane = Arc::new(RedisBackplane {
        node: node_id(),
        outbox,
        counters: counters.clone(),
        interest: interest.clone(),
        start: Mutex::new(Some(start)),
    });
    let target = publish::Target {
        channel: config.channel(),
        stream: config.stream(),
        history: config.history.unwrap_or(hub.config().history).max(64),
        topic_ttl_ms: u64::try_from(config.topic_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    };
    let node = backplane.node;
    let probe_interval = config.probe_interval;
    tokio::spawn(async move {
        // whatever ends the tasks (the hub dropped, or a bug), the state says so
        let _down = DownOnExit(counters.clone());
        // the hub hands its handle over as it takes this backplane, just below
        let Ok(local) = started.await else { return };
        // the topics the hub had before: subscribed to like those that come later
        interest.seed(local.topics(), counters.since());
        let ledger = Arc::new(own::Ledger::default());
        let ctx = line::Ctx {
            local: local.clone(),
            node,
            counters: counters.clone(),
            ledger: ledger.clone(),
        };
        let subscriber = subscribe::Subscriber::new(
            ctx,
            manager.clone(),
            target.clone(),
            push_rx,
            interest.clone(),
            secret.clone(),
            probe_interval,
        );
        let publisher = publish::Publisher::new(
            local.clone(),
            manager.clone(),
            target,
            inbox,
            node,
            counters.clone(),
            ledger,
            interest,
            secret.clone(),
        );
        let watchdog = watchdog(local, manager, counters, probe_interval, secret);
        // the first to end ends the others, and with them the connection
        tokio::select! {
            () = subscriber.run() => {}
            () = publisher.run() => {}
            () = watchdog => {}
        }
    });
    hub.set_backplane(backplane.clone());
    Ok(backplane)
}

/// Sets the state `Down` when the backplane's task ends, however it ends.
struct DownOnExit(Arc<Counters>);

impl Drop for DownOnExit {
    fn drop(&mut self) {
        self.0.set_state(BackplaneState::Down);
    }
}

/// Reads Redis's clock every `interval` while `Up`: a Redis that stopped answering (frozen,
/// or a connection that died silently) takes the state out of `Up` even when nothing is
/// published, and the cluster's time a topic's fresh subscribers count from stays at most
/// one interval old. Ends when the hub is gone.
async fn watchdog(
    local: Local,
    mut manager: ConnectionManager,
    counters: Arc<Counters>,
    interval: Duration,
    secret: Secret,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !local.is_alive() {
            return;
        }
        if counters.state() != BackplaneState::Up {
            continue;
        }
        let reply: Result<(u64, u64), _> = redis::cmd("TIME").query_async(&mut manager).await;
        match reply {
            Ok((seconds, micros)) => {
                let now = seconds.saturating_mul(1_000_000).saturating_add(micros);
                counters.set_cluster_now(now);
            }
            Err(error) if !matches!(error.kind(), redis::ErrorKind::Server(_)) => {
                tracing::debug!(error = %secret.scrub(&error), "Redis does not answer");
                counters.set_state(BackplaneState::Down);
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{attach, RedisConfig};
    use std::time::Duration;

    #[tokio::test]
    async fn a_zero_probe_interval_is_refused_at_attach() {
        let hub = hub_core::Hub::new();
        let mut config = RedisConfig::new("chat");
        config.probe_interval = Duration::ZERO;
        // nothing listens there: attach connects lazily, so only the config is checked
        let Err(error) = attach(&hub, "redis://127.0.0.1:1/", config) else {
            panic!("a zero probe interval was taken");
        };
        assert_eq!(error.kind(), redis::ErrorKind::InvalidClientConfig);
        assert!(error.to_string().contains("probe_interval"), "{error}");
        assert!(
            hub.stats().backplane.is_none(),
            "the hub keeps its local delivery"
        );
    }
}
