//! Hub configuration.

use crate::origin::OriginPolicy;
use std::time::Duration;

/// Configuration of a [`Hub`](crate::Hub). Every default matches Kashvi's `pkg/ws`.
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
    /// the queue full evicts the client (close 1008). Default: 256.
    pub queue_capacity: usize,
    /// Largest inbound message (after reassembly of fragments), in bytes. Larger → close 1009.
    /// Default: 512 KiB.
    pub max_message_size: usize,
    /// How often an idle connection is pinged. Default: 54 s.
    pub ping_interval: Duration,
    /// How long the hub waits for any frame (a pong or anything else) before it gives up on the
    /// peer. Default: 60 s.
    pub pong_wait: Duration,
    /// How long one write may stay blocked before the connection is dropped. Default: 10 s.
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
        }
    }
}

impl HubConfig {
    /// Set [`Self::queue_capacity`] (at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
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

    /// Set [`Self::origin`].
    pub fn origin(mut self, policy: OriginPolicy) -> Self {
        self.origin = policy;
        self
    }
}
