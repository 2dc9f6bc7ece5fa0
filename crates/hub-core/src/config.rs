//! Hub configuration and its validation.

use crate::origin::OriginPolicy;
use crate::rate::RateLimit;
use std::time::Duration;

/// Why a [`HubConfig`] was refused by [`HubConfig::validate`] (and so by
/// [`Hub::with_config`](crate::Hub::with_config)). Fix the setting named; nothing was created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting that must be at least 1 (or longer than zero) was zero.
    #[error("HubConfig::{0} must not be zero")]
    Zero(&'static str),
    /// The ping interval is not shorter than the pong wait: the silence deadline would come
    /// before the first ping, and every healthy idle client would be dropped.
    #[error(
        "HubConfig::ping_interval ({ping_interval:?}) must be shorter than \
         HubConfig::pong_wait ({pong_wait:?}), as Kashvi's 54 s / 60 s"
    )]
    PingNotBeforePongWait {
        /// The ping interval given.
        ping_interval: Duration,
        /// The pong wait given.
        pong_wait: Duration,
    },
}

/// Configuration of a [`Hub`](crate::Hub). Every default matches Kashvi's `pkg/ws`.
///
/// The setters take any value; [`HubConfig::validate`] checks the whole, and
/// [`Hub::with_config`](crate::Hub::with_config) refuses a configuration it rejects:
/// `queue_capacity`, `max_message_size`, `max_topics_per_client`, `topic_history_total`,
/// `topic_history_bytes`, `max_connections`, a rate limit's rates and bursts, `ping_interval`,
/// `pong_wait` and `write_wait` must not be zero, and `ping_interval` must be shorter than `pong_wait`. `shutdown_timeout` may be
/// zero (close at once, without flushing). Durations too long to add to a clock reading
/// (`Duration::MAX`, say) mean "never": the deadline is simply not armed.
///
/// ```
/// use hub_core::{HubConfig, OriginPolicy};
/// use std::time::Duration;
///
/// let config = HubConfig::default()
///     .queue_capacity(1024)
///     .ping_interval(Duration::from_secs(20))
///     .pong_wait(Duration::from_secs(25))
///     .origin(OriginPolicy::allow_list(["https://myapp.com"]));
/// assert_eq!(config.max_message_size, 512 * 1024);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubConfig {
    /// Messages that may wait in one client's outbound queue. A `send` or `broadcast` that finds
    /// the queue full evicts the client (close 1008). At least 1. Default: 256.
    pub queue_capacity: usize,
    /// Largest inbound message (after reassembly of fragments), in bytes. Larger → close 1009.
    /// At least 1. Default: 512 KiB.
    pub max_message_size: usize,
    /// How often an idle connection is pinged. Not zero, and shorter than
    /// [`Self::pong_wait`]. Default: 54 s.
    pub ping_interval: Duration,
    /// How long the hub waits for any frame (a pong or anything else) before it gives up on the
    /// peer. Default: 60 s.
    pub pong_wait: Duration,
    /// How long the socket may accept no byte at all, while writes are pending, before the
    /// connection is dropped (gorilla's per-write deadline): a slow link that keeps moving is
    /// governed by the queue and eviction instead. Not zero. Default: 10 s.
    pub write_wait: Duration,
    /// How long [`Hub::shutdown`](crate::Hub::shutdown) lets each client flush its queue before
    /// closing it. Default: 10 s.
    pub shutdown_timeout: Duration,
    /// Which `Origin`s may upgrade. Default: allow all (as Kashvi does), with a one-time warning
    /// on the first cross-origin upgrade.
    pub origin: OriginPolicy,
    /// How many recent broadcasts the hub keeps for clients that resume after a reconnect
    /// (SSE `Last-Event-ID`). With a history, every broadcast gets an id, one more than the
    /// last. Default: 0 (no history, no ids).
    pub history: usize,
    /// How many topics one client may be subscribed to; the next
    /// [`Client::subscribe`](crate::Client::subscribe) is refused. At least 1. Default: 1,024.
    pub max_topics_per_client: usize,
    /// With a [`Self::history`], how many recent messages each topic keeps for resume.
    /// `None`: as many as [`Self::history`]. `Some(0)`: none (topic publishes still get ids).
    /// Default: `None`.
    pub topic_history: Option<usize>,
    /// With a [`Self::history`], the most messages kept across all topics' histories; past
    /// it the least recently published topic's history is dropped first. At least 1.
    /// Default: 100,000.
    pub topic_history_total: usize,
    /// With a [`Self::history`], the most payload bytes kept across all topics' histories;
    /// past it, as past [`Self::topic_history_total`], the least recently published topic's
    /// history is dropped first (and a single message larger than this is not kept). At
    /// least 1. Default: 64 MiB.
    pub topic_history_bytes: usize,
    /// With a [`Self::history`], how long a topic's history outlives its last subscriber
    /// (dropped lazily, on a later publish, [`Client::subscribe_from`](crate::Client::subscribe_from)
    /// or connect with a `Last-Event-ID` and initial topics: no timer). Default: 5 min.
    pub topic_idle: Duration,
    /// Most clients connected at once (WebSocket and SSE alike); an upgrade or subscription
    /// over it is answered 503 with `Retry-After`
    /// ([`Rejection::TooManyConnections`](crate::Rejection::TooManyConnections)), counted, and
    /// nothing already connected is disturbed. `None` (the default): no limit.
    pub max_connections: Option<usize>,
    /// A per-client limit on inbound messages (and bytes), with what happens past it. `None`
    /// (the default): no limit.
    pub rate_limit: Option<RateLimit>,
    /// The window over which [`Hub::shutdown`](crate::Hub::shutdown) spreads its 1001 closes,
    /// so N clients do not all reconnect in the same instant: closes are spaced by the window
    /// divided by N, at most 1 ms apart (a few clients close at once; 10,000 take the whole
    /// window). Each close still flushes its queue first, within
    /// [`Self::shutdown_timeout`] from its own turn. Default: 3 s.
    pub shutdown_spread: Duration,
    /// The hub's name, in every connection's tracing span (and the metrics' `hub` label, by
    /// convention). Default: `"hub"`.
    pub name: std::sync::Arc<str>,
    /// permessage-deflate (RFC 7692): negotiated with every WebSocket client that offers it
    /// (browsers all do), every message compressed (from
    /// [`DeflateConfig::threshold`](crate::codec::DeflateConfig::threshold) bytes
    /// up), once per broadcast. Default: on, threshold 0, level 6.
    pub deflate: crate::codec::DeflateConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_message_size: 512 * 1024,
            ping_interval: Duration::from_secs(54),
            pong_wait: Duration::from_secs(60),
            write_wait: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            origin: OriginPolicy::default(),
            history: 0,
            max_topics_per_client: 1024,
            topic_history: None,
            topic_history_total: 100_000,
            topic_history_bytes: 64 * 1024 * 1024,
            topic_idle: Duration::from_secs(300),
            max_connections: None,
            rate_limit: None,
            shutdown_spread: Duration::from_secs(3),
            name: std::sync::Arc::from("hub"),
            deflate: crate::codec::DeflateConfig::default(),
        }
    }
}

impl HubConfig {
    /// Set [`Self::queue_capacity`].
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Set [`Self::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Set [`Self::ping_interval`].
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Set [`Self::pong_wait`].
    pub fn pong_wait(mut self, wait: Duration) -> Self {
        self.pong_wait = wait;
        self
    }

    /// Set [`Self::write_wait`].
    pub fn write_wait(mut self, wait: Duration) -> Self {
        self.write_wait = wait;
        self
    }

    /// Set [`Self::shutdown_timeout`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Set [`Self::history`].
    pub fn history(mut self, messages: usize) -> Self {
        self.history = messages;
        self
    }

    /// Set [`Self::max_topics_per_client`].
    pub fn max_topics_per_client(mut self, topics: usize) -> Self {
        self.max_topics_per_client = topics;
        self
    }

    /// Set [`Self::topic_history`].
    pub fn topic_history(mut self, messages: usize) -> Self {
        self.topic_history = Some(messages);
        self
    }

    /// Set [`Self::topic_history_total`].
    pub fn topic_history_total(mut self, messages: usize) -> Self {
        self.topic_history_total = messages;
        self
    }

    /// Set [`Self::topic_history_bytes`].
    pub fn topic_history_bytes(mut self, bytes: usize) -> Self {
        self.topic_history_bytes = bytes;
        self
    }

    /// Set [`Self::topic_idle`].
    pub fn topic_idle(mut self, idle: Duration) -> Self {
        self.topic_idle = idle;
        self
    }

    /// Set [`Self::max_connections`].
    pub fn max_connections(mut self, clients: usize) -> Self {
        self.max_connections = Some(clients);
        self
    }

    /// Set [`Self::rate_limit`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Set [`Self::shutdown_spread`].
    pub fn shutdown_spread(mut self, window: Duration) -> Self {
        self.shutdown_spread = window;
        self
    }

    /// Set [`Self::deflate`]; [`DeflateConfig::disabled`](crate::codec::DeflateConfig::disabled)
    /// turns permessage-deflate off.
    pub fn deflate(mut self, deflate: crate::codec::DeflateConfig) -> Self {
        self.deflate = deflate;
        self
    }

    /// Set [`Self::name`].
    pub fn name(mut self, name: &str) -> Self {
        self.name = std::sync::Arc::from(name);
        self
    }

    /// Set [`Self::origin`].
    pub fn origin(mut self, policy: OriginPolicy) -> Self {
        self.origin = policy;
        self
    }

    /// Checks the configuration as a whole.
    ///
    /// ```
    /// use hub_core::{ConfigError, HubConfig};
    /// use std::time::Duration;
    ///
    /// assert!(HubConfig::default().validate().is_ok());
    /// let late_ping = HubConfig::default()
    ///     .ping_interval(Duration::from_secs(3))
    ///     .pong_wait(Duration::from_secs(2));
    /// assert!(matches!(
    ///     late_ping.validate(),
    ///     Err(ConfigError::PingNotBeforePongWait { .. })
    /// ));
    /// assert_eq!(
    ///     HubConfig::default().queue_capacity(0).validate(),
    ///     Err(ConfigError::Zero("queue_capacity"))
    /// );
    /// ```
    ///
    /// # Errors
    /// The first setting found wrong, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_capacity == 0 {
            return Err(ConfigError::Zero("queue_capacity"));
        }
        if self.max_message_size == 0 {
            return Err(ConfigError::Zero("max_message_size"));
        }
        if self.max_topics_per_client == 0 {
            return Err(ConfigError::Zero("max_topics_per_client"));
        }
        if self.topic_history_total == 0 {
            return Err(ConfigError::Zero("topic_history_total"));
        }
        if self.topic_history_bytes == 0 {
            return Err(ConfigError::Zero("topic_history_bytes"));
        }
        if self.max_connections == Some(0) {
            return Err(ConfigError::Zero("max_connections"));
        }
        if let Some(field) = self.rate_limit.as_ref().and_then(RateLimit::zero_field) {
            return Err(ConfigError::Zero(field));
        }
        for (name, value) in [
            ("ping_interval", self.ping_interval),
            ("pong_wait", self.pong_wait),
            ("write_wait", self.write_wait),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.ping_interval >= self.pong_wait {
            return Err(ConfigError::PingNotBeforePongWait {
                ping_interval: self.ping_interval,
                pong_wait: self.pong_wait,
            });
        }
        Ok(())
    }
}
