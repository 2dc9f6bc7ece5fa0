//! Which topics have local subscribers: the hub says so under its topic lock
//! ([`Backplane::interest`](hub_core::Backplane::interest)), which must not block, so the
//! changes wait here, one per topic (the last), until the subscriber's task acts on them. A
//! quick join, leave and join coalesces into one join: the topic ends subscribed and is caught
//! up once more (the hub waits for that after every join). The pending changes are bounded by
//! the number of topics, whatever the rate of subscribes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// A topic's change not yet acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// It gained its first local subscriber; `since`: the cluster's time then (conservative).
    Join {
        /// Redis's clock as last read before the join, in microseconds.
        since: u64,
    },
    /// It lost its last local subscriber.
    Leave,
}

/// Shared by the backplane (which the hub tells), the subscriber (which acts) and the
/// publisher (which asks whether a topic's publishes come back here).
#[derive(Debug, Default)]
pub(crate) struct Interest {
    inner: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Topics with local subscribers, as the hub last said.
    current: HashSet<Arc<str>>,
    /// The last change of each topic, not yet acted on.
    pending: HashMap<Arc<str>, Change>,
}

impl Interest {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub says `topic` gained (`true`) or lost its local subscribers. Never blocks.
    pub(crate) fn set(&self, topic: &str, interested: bool, since: u64) {
        let mut state = self.lock();
        let name: Arc<str> = match state.current.get(topic) {
            Some(name) => name.clone(),
            None => Arc::from(topic),
        };
        if interested {
            state.current.insert(name.clone());
            state.pending.insert(name, Change::Join { since });
        } else {
            state.current.remove(topic);
            state.pending.insert(name, Change::Leave);
        }
        drop(state);
        self.changed.notify_one();
    }

    /// The topics that had local subscribers when the backplane was attached (the hub reports
    /// only later changes): joins, unless a change of theirs came since.
    pub(crate) fn seed(&self, topics: Vec<String>, since: u64) {
        let mut state = self.lock();
        for topic in topics {
            let name: Arc<str> = Arc::from(topic);
            if !state.pending.contains_key(&name) && !state.current.contains(&name) {
                state.current.insert(name.clone());
                state.pending.insert(name, Change::Join { since });
            }
        }
        drop(state);
        self.changed.notify_one();
    }

    /// Whether `topic` has local subscribers now (so its publishes come back here).
    pub(crate) fn has(&self, topic: &str) -> bool {
        self.lock().current.contains(topic)
    }

    /// The changes not yet acted on; empties them.
    pub(crate) fn take(&self) -> HashMap<Arc<str>, Change> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Waits until a change is pending (at once if one came since the last wait).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_change_of_each_topic_wins_and_a_rejoin_is_a_join() {
        let interest = Interest::default();
        interest.set("a", true, 1);
        interest.set("a", false, 2);
        interest.set("a", true, 3);
        interest.set("b", true, 4);
        interest.set("b", false, 5);
        assert!(interest.has("a") && !interest.has("b"));
        let changes = interest.take();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes.get("a"), Some(&Change::Join { since: 3 }));
        assert_eq!(changes.get("b"), Some(&Change::Leave));
        assert!(interest.take().is_empty());
        assert!(interest.has("a"), "taking the changes keeps the interest");
        // at attach: what the hub already had, unless it changed since
        interest.set("c", false, 6);
        interest.seed(vec!["a".into(), "c".into(), "d".into()], 7);
        let changes = interest.take();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes.get("c"), Some(&Change::Leave));
        assert_eq!(changes.get("d"), Some(&Change::Join { since: 7 }));
    }

    #[tokio::test]
    async fn a_change_made_before_the_wait_is_not_missed() {
        let interest = Interest::default();
        interest.set("a", true, 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), interest.changed())
            .await
            .expect("the change was lost");
    }
}
