//! # hub-redis
//!
//! A Redis pub/sub backplane for a [`hub_core::Hub`]: a `broadcast` on any node reaches the
//! clients of every node, exactly once, in order per publishing node.
//!
//! Each hub maps to one Redis channel, `{prefix}{name}`. A broadcast is delivered to this
//! node's clients at once (as without a backplane), then published, tagged with this node's
//! id; every node's subscriber delivers what other nodes published and skips its own, so the
//! origin's clients never get a message twice. Messages are published from one task over one
//! connection, which Redis keeps in order.
//!
//! **When Redis is down** local delivery goes on unchanged. Cross-node delivery is
//! at-most-once, in order, like socket.io's Redis adapter with a bounded buffer: broadcasts wait
//! in an outbox of [`RedisConfig::buffer`] messages while the publisher retries; one whose
//! attempt fails (connection refused, or no answer within a second) is counted in
//! [`BackplaneStats::publish_failed`] and lost to the other nodes, one that finds the outbox
//! full in [`BackplaneStats::dropped`]. What is still waiting when Redis returns goes out
//! first, then the rest. The connection (redis-rs's `ConnectionManager` over RESP3, chosen because it
//! reconnects on its own, with backoff, and resubscribes) comes back by itself; a probe every
//! [`RedisConfig::probe_interval`] makes sure it tries even when nothing is being published.
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() -> Result<(), redis::RedisError> {
//! let hub = hub_core::Hub::new();
//! let config = hub_redis::RedisConfig::new("chat");
//! let backplane = hub_redis::attach(&hub, "redis://127.0.0.1:6379", config)?;
//! hub.broadcast("reaches every node");
//! println!("{:?}", backplane.stats());
//! # Ok(()) }
//! ```
#![doc(test(attr(deny(warnings))))]

mod envelope;
mod stats;

pub use stats::{BackplaneState, BackplaneStats};

use bytes::Bytes;
use hub_core::{Backplane, Hub, Message};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushKind, Value};
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
    /// Broadcasts waiting to be published; more while Redis is slow or down are dropped (and
    /// counted). Default: 4096.
    pub buffer: usize,
    /// How often a lost connection is probed. Default: 500 ms.
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
}

/// A hub's Redis backplane; see the crate documentation.
#[derive(Debug)]
pub struct RedisBackplane {
    node: u64,
    outbox: mpsc::Sender<Bytes>,
    counters: Arc<Counters>,
}

impl RedisBackplane {
    /// This node's id, as it tags what it publishes.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// The backplane's state and counters.
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
    fn broadcast(&self, hub: &Hub, build: &mut dyn FnMut(Option<u64>) -> Message) -> usize {
        let mut built = None;
        let delivered = hub.deliver_local_with(&mut |id| {
            let message = build(id);
            built = Some(message.clone());
            message
        });
        if let Some(message) = built {
            match self.outbox.try_send(envelope::encode(self.node, &message)) {
                Ok(()) => {}
                Err(_) => Counters::bump(&self.counters.dropped),
            }
        }
        delivered
    }
}

/// A node id: random enough that two processes never share one.
fn node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Connects `hub` to Redis at `url` (`redis://host:port/db`) and makes the backplane its
/// broadcast path. Returns at once: the connection is made in the background, and local
/// delivery works whether or not Redis is reachable. Must be called inside a tokio runtime.
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
    // Pub/sub messages arrive as RESP3 pushes on the same, self-healing connection.
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let info = info.set_redis_settings(settings);
    let client = redis::Client::open(info)?;
    let (push_tx, push_rx) = tokio::sync::mpsc::unbounded_channel();
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
        outbox,
        counters: counters.clone(),
    });
    let channel = config.channel();
    tokio::spawn(subscribe(
        hub.clone(),
        manager.clone(),
        channel.clone(),
        push_rx,
        backplane.node,
        counters.clone(),
        config.probe_interval,
    ));
    tokio::spawn(publish(manager, channel, inbox, counters));
    hub.set_backplane(backplane.clone());
    Ok(backplane)
}

/// Publishes what the hub broadcast, in order, from one task.
async fn publish(
    mut manager: ConnectionManager,
    channel: String,
    mut inbox: mpsc::Receiver<Bytes>,
    counters: Arc<Counters>,
) {
    while let Some(envelope) = inbox.recv().await {
        match manager
            .publish::<_, _, ()>(&channel, envelope.as_ref())
            .await
        {
            Ok(()) => Counters::bump(&counters.published),
            Err(error) => {
                tracing::debug!(%error, "publish failed");
                Counters::bump(&counters.publish_failed);
            }
        }
    }
}

/// Subscribes, delivers other nodes' broadcasts to this node's clients, and keeps the
/// connection state; probes while it is down so the manager reconnects.
async fn subscribe(
    hub: Hub,
    mut manager: ConnectionManager,
    channel: String,
    mut pushes: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    node: u64,
    counters: Arc<Counters>,
    probe_interval: Duration,
) {
    let mut subscribed = false;
    let mut probe = tokio::time::interval(probe_interval);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return };
                match push.kind {
                    PushKind::Message => {
                        let payload = push.data.into_iter().nth(1);
                        let Some(Value::BulkString(bytes)) = payload else {
                            Counters::bump(&counters.malformed);
                            continue;
                        };
                        match envelope::decode(&bytes) {
                            Some((from, _)) if from == node => {}
                            Some((_, message)) => {
                                Counters::bump(&counters.received);
                                hub.deliver_local(message);
                            }
                            None => Counters::bump(&counters.malformed),
                        }
                    }
                    PushKind::Subscribe => counters.set_state(BackplaneState::Up),
                    PushKind::Disconnection => {
                        counters.set_state(BackplaneState::Down);
                        Counters::bump(&counters.disconnects);
                    }
                    _ => {}
                }
            }
            _ = probe.tick() => {
                if !subscribed {
                    match manager.subscribe(&channel).await {
                        Ok(()) => subscribed = true,
                        Err(error) => {
                            tracing::debug!(%error, "subscribe failed");
                            counters.set_state(BackplaneState::Down);
                        }
                    }
                } else if counters.state() != BackplaneState::Up {
                    // any command makes the manager reconnect (and resubscribe)
                    let _: Result<(), _> = redis::cmd("PING").query_async(&mut manager).await;
                }
            }
        }
    }
}
