//! This node's own broadcasts on their way through Redis: which came back, and which the
//! publisher gave up on and delivered here itself. A publish whose reply timed out may still
//! run in Redis later (a reply timeout does not drop the connection, and a frozen Redis
//! executes what it already received): when it comes back it is recorded in the history but
//! not delivered to this node's clients a second time.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Most ranges of given-up sequence numbers kept (consecutive ones merge into one).
const MAX_RANGES: usize = 256;

/// Shared by the publisher and the subscriber. Both deliver to this node's clients while
/// holding its lock, so neither can overtake the other.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    inner: Mutex<Own>,
    came_back: Notify,
}

/// See [`Ledger`].
#[derive(Debug, Default)]
pub(crate) struct Own {
    /// The newest sequence number that came back from the cluster.
    pub(crate) back: u64,
    /// Sequence numbers given up on and delivered here already, as inclusive ranges.
    given_up: VecDeque<(u64, u64)>,
}

impl Ledger {
    /// The ledger, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Own> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes a publisher waiting in [`Self::settle`]; call after [`Own::came_back`] with the
    /// lock released.
    pub(crate) fn notify(&self) {
        self.came_back.notify_waiters();
    }

    /// Waits until every broadcast up to `seq` came back (its push may still be on its way to
    /// the subscriber), at most `limit`: what this node delivers itself must not overtake
    /// what it published before.
    pub(crate) async fn settle(&self, seq: u64, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.came_back.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.lock().back >= seq {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

impl Own {
    /// Broadcast `seq` came back from the cluster.
    pub(crate) fn came_back(&mut self, seq: u64) {
        self.back = self.back.max(seq);
    }

    /// Whether `seq` was given up on (and delivered here already).
    pub(crate) fn given_up(&self, seq: u64) -> bool {
        self.given_up.iter().any(|&(lo, hi)| lo <= seq && seq <= hi)
    }

    /// Records that `seq` was given up on.
    pub(crate) fn give_up(&mut self, seq: u64) {
        if let Some(last) = self.given_up.back_mut() {
            if last.1.checked_add(1) == Some(seq) {
                last.1 = seq;
                return;
            }
        }
        if self.given_up.len() == MAX_RANGES {
            self.given_up.pop_front();
        }
        self.given_up.push_back((seq, seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_up_ranges_merge_and_stay_bounded() {
        let mut own = Own::default();
        for seq in [3, 4, 5, 9] {
            own.give_up(seq);
        }
        assert_eq!(own.given_up.len(), 2);
        assert!(own.given_up(4) && own.given_up(9));
        assert!(!own.given_up(6) && !own.given_up(2));
        for seq in (100..100 + 2 * MAX_RANGES as u64).step_by(2) {
            own.give_up(seq);
        }
        assert_eq!(own.given_up.len(), MAX_RANGES);
        own.give_up(u64::MAX);
        own.came_back(7);
        own.came_back(5);
        assert_eq!(own.back, 7);
    }

    #[tokio::test]
    async fn settle_waits_for_what_came_back_at_most_the_limit() {
        let ledger = std::sync::Arc::new(Ledger::default());
        let waiter = ledger.clone();
        let settled = tokio::spawn(async move { waiter.settle(2, Duration::from_secs(30)).await });
        tokio::task::yield_now().await;
        ledger.lock().came_back(1);
        ledger.notify();
        tokio::task::yield_now().await;
        assert!(!settled.is_finished());
        ledger.lock().came_back(2);
        ledger.notify();
        settled.await.expect("settle");
    }
}
