//! The backplane's state and counters.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// Whether the backplane is connected to Redis and subscribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackplaneState {
    /// Not yet subscribed.
    Connecting,
    /// Subscribed: cross-node delivery works.
    Up,
    /// Connection lost; reconnecting with backoff. Local delivery goes on.
    Down,
}

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStats {
    /// The connection's state.
    pub state: BackplaneState,
    /// Broadcasts published to Redis.
    pub published: u64,
    /// Broadcasts Redis did not take (it was down or slow): lost to the other nodes.
    pub publish_failed: u64,
    /// Broadcasts dropped because too many were waiting to be published.
    pub dropped: u64,
    /// Broadcasts from other nodes delivered to this node's clients.
    pub received: u64,
    /// Channel messages that were not envelopes of ours.
    pub malformed: u64,
    /// Times the connection was lost.
    pub disconnects: u64,
}

#[derive(Debug)]
pub(crate) struct Counters {
    state: AtomicU8,
    /// Every state change, for [`crate::RedisBackplane::until`].
    pub(crate) changes: tokio::sync::watch::Sender<BackplaneState>,
    pub(crate) published: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) disconnects: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(0),
            changes: tokio::sync::watch::Sender::new(BackplaneState::Connecting),
            published: AtomicU64::new(0),
            publish_failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            received: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
        }
    }
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_state(&self, state: BackplaneState) {
        let v = match state {
            BackplaneState::Connecting => 0,
            BackplaneState::Up => 1,
            BackplaneState::Down => 2,
        };
        self.state.store(v, Relaxed);
        self.changes
            .send_if_modified(|s| std::mem::replace(s, state) != state);
    }

    pub(crate) fn state(&self) -> BackplaneState {
        match self.state.load(Relaxed) {
            1 => BackplaneState::Up,
            2 => BackplaneState::Down,
            _ => BackplaneState::Connecting,
        }
    }

    pub(crate) fn snapshot(&self) -> BackplaneStats {
        BackplaneStats {
            state: self.state(),
            published: self.published.load(Relaxed),
            publish_failed: self.publish_failed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            received: self.received.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            disconnects: self.disconnects.load(Relaxed),
        }
    }
}
