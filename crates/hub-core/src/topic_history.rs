//! Per-topic histories, for resuming topics after a reconnect.
//!
//! # Ids: one sequence per hub in one process
//! With a history ([`HubConfig::history`](crate::HubConfig::history) > 0) every broadcast
//! *and* every topic publish takes the hub's next id: in one process there is one id sequence
//! per hub, not one per topic. So a stream over several topics resumes all of them from one
//! `Last-Event-ID`: its replay is the merge, by id, of the broadcast history and its topics'
//! histories after that id, and what follows is live, in id order. Across a cluster, ids come
//! from the backplane and are checked per topic ([`Local::deliver_with_id`](crate::Local::deliver_with_id)):
//! each topic has its own cluster-wide sequence, so a topic's keys can live on one cluster
//! shard; see [`Backplane`](crate::Backplane).
//!
//! # What is kept
//! Each topic keeps its last [`HubConfig::topic_history`](crate::HubConfig::topic_history)
//! messages, with its own watermark of forgotten ids (as the broadcast history has): a resume
//! from an id older than what the topic still holds gets the `missed` notice. The messages
//! kept across all topics are bounded by
//! [`HubConfig::topic_history_total`](crate::HubConfig::topic_history_total) messages and
//! [`HubConfig::topic_history_bytes`](crate::HubConfig::topic_history_bytes) payload bytes:
//! past either, the history of the least recently published topic is dropped first. The history of a topic
//! with no subscriber is dropped once it has had none for
//! [`HubConfig::topic_idle`](crate::HubConfig::topic_idle); lazily, on a later publish, a
//! resume by [`Client::subscribe_from`](crate::Client::subscribe_from), or a connect with a
//! `Last-Event-ID` and initial topics (there is no timer, and an idle topic costs nothing
//! until then; a plain subscribe does not check).
//!
//! # Resuming a topic whose history was dropped
//! A topic without a history does not know which ids were its own, so one watermark serves
//! them all: the newest id ever dropped from *any* topic's history (by the bounds, the idle
//! time or a gap). A resume of such a topic from an id older than that watermark gets the
//! `missed` notice conservatively — even when none of the dropped messages was this topic's.
//! It may be told it missed something it did not; it is never left with a silent gap.

use crate::history::HistoryError;
use crate::history::{Missed, Replay, MAX_ID};
use crate::message::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which topics have a local subscriber now (the hub's topic index): a history whose topic has
/// none is idle.
pub(crate) trait Wanted {
    /// Whether `topic` has a local subscriber.
    fn has(&self, topic: &str) -> bool;
}

struct Ring {
    messages: VecDeque<(u64, Message)>,
    /// Messages up to this id may be gone.
    forgotten: u64,
    /// Its entry in [`TopicHistories::idle`]: when its last subscriber left (or it was
    /// published with none), if it may have none now. At most one per ring.
    idle: Option<IdleKey>,
}

/// When a topic became idle, and a sequence number that makes the key unique.
type IdleKey = (Instant, u64);

impl Ring {
    fn newest(&self) -> Option<u64> {
        self.messages.back().map(|(id, _)| *id)
    }
}

/// Every topic's history; locked after the hub's history and before the registry and the
/// topic index.
pub(crate) struct TopicHistories {
    capacity: usize,
    total_capacity: usize,
    bytes_capacity: usize,
    idle_after: Duration,
    total: usize,
    /// Payload bytes kept across all topics.
    bytes: usize,
    rings: HashMap<Arc<str>, Ring>,
    /// Each topic by its newest id: the first is the least recently published. Keyed by the
    /// topic too: across a cluster ids are per topic, so two topics may share one.
    by_recency: BTreeMap<(u64, Arc<str>), ()>,
    /// Topics that became idle, oldest first: one entry per ring at most (a ring that becomes
    /// idle again replaces its entry; a dropped ring takes its entry with it), so this is
    /// never longer than `rings`.
    idle: BTreeMap<IdleKey, Arc<str>>,
    /// The next [`IdleKey`] sequence number.
    idle_seq: u64,
    /// The newest id dropped from any topic's history: a topic without a history knows
    /// nothing up to it.
    lost: u64,
}

impl TopicHistories {
    pub(crate) fn new(
        capacity: usize,
        total_capacity: usize,
        bytes_capacity: usize,
        idle_after: Duration,
    ) -> Self {
        Self {
            capacity,
            total_capacity,
            bytes_capacity,
            idle_after,
            total: 0,
            bytes: 0,
            rings: HashMap::new(),
            by_recency: BTreeMap::new(),
            idle: BTreeMap::new(),
            idle_seq: 0,
            lost: 0,
        }
    }

    /// Topics with a history, and the messages kept across them.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.rings.len(), self.total)
    }

    /// Records a publish to `topic` under `id` (above every id recorded before).
    pub(crate) fn record(&mut self, topic: &str, id: u64, message: &Message, index: &dyn Wanted) {
        let now = Instant::now();
        self.expire(now, index);
        if self.capacity == 0 {
            self.lost = self.lost.max(id);
            return;
        }
        let lost = self.lost;
        let name: Arc<str> = match self.rings.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => Arc::from(topic),
        };
        let ring = self.rings.entry(name.clone()).or_insert_with(|| Ring {
            messages: VecDeque::new(),
            forgotten: lost,
            idle: None,
        });
        if let Some(previous) = ring.newest() {
            self.by_recency.remove(&(previous, name.clone()));
        }
        if ring.messages.len() == self.capacity {
            if let Some((evicted, old)) = ring.messages.pop_front() {
                ring.forgotten = evicted;
                self.total -= 1;
                self.bytes -= old.len();
            }
        }
        ring.messages.push_back((id, message.clone()));
        self.total += 1;
        self.bytes += message.len();
        let published_idle = ring.idle.is_none() && !index.has(topic);
        self.by_recency.insert((id, name.clone()), ());
        if published_idle {
            // published with nobody subscribed: idle from now on
            self.mark_idle(&name, now);
        }
        self.bound(&name);
    }

    /// Records a message of `topic` under `id`, an id given across a cluster: ids increase
    /// per topic (a cluster's topics each have their own sequence).
    ///
    /// # Errors
    /// `id` not above the topic's newest, or above [`MAX_ID`]; nothing is recorded.
    pub(crate) fn record_at(
        &mut self,
        topic: &str,
        id: u64,
        message: &Message,
        index: &dyn Wanted,
    ) -> Result<(), HistoryError> {
        if id > MAX_ID {
            return Err(HistoryError::OutOfRange { id });
        }
        let newest = self.newest(topic);
        if id <= newest {
            return Err(HistoryError::NotNewer { id, newest });
        }
        self.record(topic, id, message, index);
        Ok(())
    }

    /// The newest id recorded for `topic` (0: none kept).
    pub(crate) fn newest(&self, topic: &str) -> u64 {
        self.rings.get(topic).and_then(Ring::newest).unwrap_or(0)
    }

    /// Drops `topic`'s history at once (it will no longer be kept up to date): a resume of it
    /// from an older id is then told it missed messages, never left with a silent gap.
    pub(crate) fn forget(&mut self, topic: &str) {
        self.drop_ring(topic);
    }

    /// Messages of `topic` with ids below `before` not recorded are lost for good (see
    /// [`crate::Local::record_gap`]).
    pub(crate) fn gap_before_topic(&mut self, topic: &str, before: u64) {
        if before > MAX_ID {
            return;
        }
        let last_lost = before.saturating_sub(1);
        let Some(ring) = self.rings.get_mut(topic) else {
            // no history of it: the shared watermark says what is unknown
            self.lost = self.lost.max(last_lost);
            return;
        };
        if last_lost <= ring.forgotten {
            return;
        }
        let newest = ring.newest();
        ring.forgotten = last_lost;
        while ring
            .messages
            .front()
            .is_some_and(|(id, _)| *id <= last_lost)
        {
            if let Some((_, old)) = ring.messages.pop_front() {
                self.total -= 1;
                self.bytes -= old.len();
            }
        }
        if ring.messages.is_empty() {
            // its recency key is the newest it had; the ring goes (the shared watermark
            // covers what it held)
            if let (Some(newest), Some((name, _))) = (newest, self.rings.get_key_value(topic)) {
                let key = (newest, name.clone());
                self.by_recency.remove(&key);
            }
            self.drop_ring(topic);
            self.lost = self.lost.max(last_lost);
        }
    }

    /// Keeps the totals (messages and bytes) under their bounds: drops the least recently
    /// published topics' histories (never `current`'s, which loses its oldest messages instead
    /// if it alone is too big, and is dropped if its one message is).
    fn bound(&mut self, current: &Arc<str>) {
        while self.total > self.total_capacity || self.bytes > self.bytes_capacity {
            let oldest = self
                .by_recency
                .keys()
                .find(|(_, topic)| topic != current)
                .cloned();
            match oldest {
                Some((newest, topic)) => {
                    let ring_newest = self.rings.get(&topic).and_then(Ring::newest);
                    if ring_newest != Some(newest) {
                        // a stale key (its ring is gone, empty or newer): never retried
                        self.by_recency.remove(&(newest, topic.clone()));
                        if ring_newest.is_none() {
                            self.drop_ring(&topic);
                        }
                        continue;
                    }
                    self.drop_ring(&topic);
                }
                None => {
                    let Some(ring) = self.rings.get_mut(current) else {
                        return;
                    };
                    if ring.messages.len() <= 1 {
                        // its one message alone is over the bound: not kept
                        self.drop_ring(current);
                        return;
                    }
                    let Some((evicted, old)) = ring.messages.pop_front() else {
                        return;
                    };
                    ring.forgotten = evicted;
                    self.total -= 1;
                    self.bytes -= old.len();
                }
            }
        }
    }

    fn drop_ring(&mut self, topic: &str) {
        if let Some((name, ring)) = self.rings.remove_entry(topic) {
            if let Some(newest) = ring.newest() {
                self.by_recency.remove(&(newest, name));
                self.lost = self.lost.max(newest);
            }
            if let Some(key) = ring.idle {
                self.idle.remove(&key);
            }
            self.total -= ring.messages.len();
            self.bytes -= ring.messages.iter().map(|(_, m)| m.len()).sum::<usize>();
        }
    }

    /// `topic` lost its last subscriber.
    pub(crate) fn became_idle(&mut self, topic: &str) {
        let Some((name, _)) = self.rings.get_key_value(topic) else {
            return;
        };
        let name = name.clone();
        self.mark_idle(&name, Instant::now());
    }

    /// Starts `topic`'s idle time at `now`, replacing its pending idle entry if it has one.
    fn mark_idle(&mut self, topic: &Arc<str>, now: Instant) {
        let Some(ring) = self.rings.get_mut(topic) else {
            return;
        };
        if let Some(previous) = ring.idle.take() {
            self.idle.remove(&previous);
        }
        let key = (now, self.idle_seq);
        self.idle_seq = self.idle_seq.wrapping_add(1);
        ring.idle = Some(key);
        self.idle.insert(key, topic.clone());
    }

    /// Pending idle entries (at most one per topic history).
    #[cfg(test)]
    pub(crate) fn idle_len(&self) -> usize {
        self.idle.len()
    }

    /// Drops the histories of topics idle for longer than the idle time.
    pub(crate) fn expire(&mut self, now: Instant, index: &dyn Wanted) {
        while let Some((&key, _)) = self.idle.first_key_value() {
            let due = key
                .0
                .checked_add(self.idle_after)
                .is_some_and(|due| due <= now);
            if !due {
                return;
            }
            let Some((_, topic)) = self.idle.pop_first() else {
                return;
            };
            if !index.has(&topic) {
                self.drop_ring(&topic);
            } else if let Some(ring) = self.rings.get_mut(&topic) {
                // subscribed again: not idle; its next departure starts a new idle time
                ring.idle = None;
            }
        }
    }

    /// What a client that last saw `last` has missed on `topic`.
    pub(crate) fn since(&self, topic: &str, last: u64) -> Replay {
        let (messages, forgotten) = match self.rings.get(topic) {
            Some(ring) => (Some(&ring.messages), ring.forgotten),
            None => (None, self.lost),
        };
        let first_available = messages.and_then(|m| m.front()).map(|(id, _)| *id);
        let all = messages.into_iter().flatten();
        if last < forgotten {
            return Replay {
                messages: all.cloned().collect(),
                missed: Some(Missed {
                    last_event_id: last,
                    first_available,
                }),
            };
        }
        Replay {
            messages: all.filter(|(id, _)| *id > last).cloned().collect(),
            missed: None,
        }
    }
}

/// Merges every replay of `more` into `replay`, by id, sorting once.
pub(crate) fn merge_all(replay: &mut Replay, more: impl IntoIterator<Item = Replay>) {
    let mut all: Vec<(u64, Message)> = std::mem::take(&mut replay.messages).into();
    let mut missed = replay.missed.take();
    let mut merged = false;
    for more in more {
        merged |= !more.messages.is_empty() || more.missed.is_some();
        all.extend(more.messages);
        missed = merge_missed(missed, more.missed);
    }
    if merged {
        all.sort_by_key(|(id, _)| *id);
        all.dedup_by_key(|(id, _)| *id);
    }
    replay.messages = all.into();
    replay.missed = missed;
    if let Some(missed) = replay.missed.as_mut().filter(|_| merged) {
        missed.first_available = replay.messages.front().map(|(id, _)| *id);
    }
}

/// The first `missed` wins (its first available id is set by the caller).
fn merge_missed(a: Option<Missed>, b: Option<Missed>) -> Option<Missed> {
    match (a, b) {
        (None, m) | (m, None) => m,
        (Some(a), Some(_)) => Some(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No topic has a subscriber.
    struct Nobody;

    impl Wanted for Nobody {
        fn has(&self, _: &str) -> bool {
            false
        }
    }

    #[test]
    fn a_topic_keeps_at_most_one_pending_idle_entry() {
        let index = Nobody;
        let mut topics = TopicHistories::new(10, 100, usize::MAX, Duration::MAX);
        topics.record("t", 1, &Message::text("x"), &index);
        assert_eq!(topics.idle_len(), 1);
        for _ in 0..100_000 {
            // each unsubscribe of its last subscriber
            topics.became_idle("t");
        }
        assert_eq!(
            topics.idle_len(),
            1,
            "one pending entry, not one per departure"
        );
        topics.record("u", 2, &Message::text("y"), &index);
        assert_eq!(topics.idle_len(), 2);
        topics.drop_ring("t");
        assert_eq!(
            topics.idle_len(),
            1,
            "a dropped ring takes its entry with it"
        );
    }

    #[test]
    fn a_gap_that_empties_a_ring_drops_it_and_the_bound_still_terminates() {
        let index = Nobody;
        let mut topics = TopicHistories::new(10, 3, usize::MAX, Duration::MAX);
        topics.record("old", 1, &Message::text("a"), &index);
        topics.record("new", 5, &Message::text("b"), &index);
        topics.gap_before_topic("old", 3);
        assert_eq!(topics.size(), (1, 1), "the emptied ring is dropped");
        assert_eq!(topics.by_recency.len(), 1, "and its recency entry with it");
        assert_eq!(topics.idle_len(), 1);
        // past the bound: must drop "new" (never spin on a stale entry)
        for id in 6..9 {
            topics.record("third", id, &Message::text("c"), &index);
        }
        assert_eq!(topics.size(), (1, 3));
        assert!(
            topics.since("old", 0).missed.is_some(),
            "never a silent gap"
        );
    }

    #[test]
    fn the_bound_skips_a_stale_recency_key_instead_of_retrying_it() {
        let index = Nobody;
        let mut topics = TopicHistories::new(10, 1, usize::MAX, Duration::MAX);
        topics.record("a", 1, &Message::text("a"), &index);
        // a key whose ring is gone (what an inconsistent gap used to leave behind)
        topics.by_recency.insert((0, Arc::from("gone")), ());
        topics.record("b", 2, &Message::text("b"), &index);
        assert_eq!(topics.size(), (1, 1));
        assert_eq!(topics.by_recency.len(), 1);
    }

    #[test]
    fn the_byte_bound_drops_the_least_recently_published_topics_first() {
        let index = Nobody;
        let mut topics = TopicHistories::new(10, 100, 25, Duration::MAX);
        let ten = Message::text("0123456789");
        topics.record("a", 1, &ten, &index);
        topics.record("b", 2, &ten, &index);
        assert_eq!((topics.size(), topics.bytes), ((2, 2), 20));
        topics.record("c", 3, &ten, &index);
        assert_eq!((topics.size(), topics.bytes), ((2, 2), 20), "a dropped");
        assert!(topics.since("a", 0).missed.is_some());
        topics.record("c", 4, &Message::text("x".repeat(20)), &index);
        assert_eq!(
            (topics.size(), topics.bytes),
            ((1, 1), 20),
            "b, then c's oldest"
        );
        topics.record("d", 5, &Message::text("y".repeat(30)), &index);
        assert_eq!(
            (topics.size(), topics.bytes),
            ((0, 0), 0),
            "too big alone: not kept"
        );
        assert!(topics.by_recency.is_empty() && topics.idle_len() == 0);
        assert!(topics.since("d", 4).missed.is_some(), "never a silent gap");
    }

    #[test]
    fn a_gap_beyond_the_largest_id_is_ignored() {
        let index = Nobody;
        let mut topics = TopicHistories::new(10, 100, usize::MAX, Duration::MAX);
        topics.record("t", 1, &Message::text("a"), &index);
        topics.gap_before_topic("t", MAX_ID + 2);
        assert_eq!(topics.size(), (1, 1));
        assert!(topics.since("t", 1).missed.is_none());
        assert!(topics.since("other", 1).missed.is_none());
    }
}
