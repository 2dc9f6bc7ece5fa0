//! The backplane's state and counters.

use hub_core::{BackplaneState, BackplaneStats};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};

#[derive(Debug)]
pub(crate) struct Counters {
    state: AtomicU8,
    /// Every state change, for [`crate::RedisBackplane::until`].
    pub(crate) changes: tokio::sync::watch::Sender<BackplaneState>,
    pub(crate) published: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) local_only: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) caught_up: AtomicU64,
    pub(crate) catch_up_gaps: AtomicU64,
    /// The newest id this node has delivered.
    pub(crate) newest: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    /// Redis's clock minus ours, in microseconds, as last measured.
    pub(crate) skew: AtomicI64,
    /// Redis's clock when last read, in microseconds: at or before Redis's clock now.
    seen: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(0),
            changes: tokio::sync::watch::Sender::new(BackplaneState::Connecting),
            published: AtomicU64::new(0),
            publish_failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            local_only: AtomicU64::new(0),
            received: AtomicU64::new(0),
            caught_up: AtomicU64::new(0),
            catch_up_gaps: AtomicU64::new(0),
            newest: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            skew: AtomicI64::new(0),
            seen: AtomicU64::new(0),
        }
    }
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    /// Microseconds of Redis's clock now, as far as this node knows it.
    pub(crate) fn cluster_now(&self) -> u64 {
        crate::now_micros().saturating_add_signed(self.skew.load(Relaxed))
    }

    /// Redis's clock when it was last read (by a publish, a catch-up or the watchdog's
    /// probe), in microseconds: a conservative "now" of the cluster.
    pub(crate) fn seen(&self) -> u64 {
        self.seen.load(Relaxed)
    }

    /// The cluster's time a topic's fresh subscribers are owed the messages after: Redis's
    /// clock as last read (before Redis was ever read: this node's clock, the best there is).
    pub(crate) fn since(&self) -> u64 {
        match self.seen() {
            0 => crate::now_micros(),
            seen => seen,
        }
    }

    /// Records Redis's clock, `redis_now` microseconds, read just now.
    pub(crate) fn set_cluster_now(&self, redis_now: u64) {
        self.seen.store(redis_now, Relaxed);
        let ours = crate::now_micros();
        let skew = i64::try_from(i128::from(redis_now) - i128::from(ours)).unwrap_or(0);
        self.skew.store(skew, Relaxed);
    }

    pub(crate) fn set_state(&self, state: BackplaneState) {
        let v = match state {
            BackplaneState::Connecting => 0,
            BackplaneState::Up => 1,
            BackplaneState::Down => 2,
            // a state this backplane never enters (the enum is non-exhaustive)
            _ => 0,
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
        let mut stats = BackplaneStats::new(self.state());
        stats.published = self.published.load(Relaxed);
        stats.publish_failed = self.publish_failed.load(Relaxed);
        stats.dropped = self.dropped.load(Relaxed);
        stats.local_only = self.local_only.load(Relaxed);
        stats.received = self.received.load(Relaxed);
        stats.caught_up = self.caught_up.load(Relaxed);
        stats.catch_up_gaps = self.catch_up_gaps.load(Relaxed);
        stats.malformed = self.malformed.load(Relaxed);
        stats.disconnects = self.disconnects.load(Relaxed);
        stats
    }
}
