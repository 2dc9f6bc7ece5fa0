//! Per-topic histories, for resuming topics after a reconnect.
//!
//! # Ids: one sequence per hub
//! With a history ([`HubConfig::history`](crate::HubConfig::history) > 0) every broadcast
//! *and* every topic publish takes the hub's next id: there is one id sequence per hub, not
//! one per topic. So a stream over several topics resumes all of them from one
//! `Last-Event-ID`: its replay is the merge, by id, of the broadcast history and its topics'
//! histories after that id, and what follows is live, in id order. Across a cluster the
//! backplane's cluster-wide ids keep working unchanged, since a topic needs no sequence of its
//! own.
//!
//! # What is kept
//! Each topic keeps its last [`HubConfig::topic_history`](crate::HubConfig::topic_history)
//! messages, with its own watermark of forgotten ids (as the broadcast history has): a resume
//! from an id older than what the topic still holds gets the `missed` notice. The messages
//! kept across all topics are bounded by
//! [`HubConfig::topic_history_total`](crate::HubConfig::topic_history_total): past it, the
//! history of the least recently published topic is dropped first. The history of a topic
//! with no subscriber is dropped once it has had none for
//! [`HubConfig::topic_idle`](crate::HubConfig::topic_idle); lazily, on a later publish,
//! subscribe or connect (there is no timer, and an idle topic costs nothing until then).
//! A resume on a topic whose history was dropped, from an id older than the newest id ever
//! dropped from any topic history, gets the `missed` notice: never a silent gap.

use crate::history::{Missed, Replay};
use crate::message::Message;
use crate::topics::TopicIndex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Ring {
    messages: VecDeque<(u64, Message)>,
    /// Messages up to this id may be gone.
    forgotten: u64,
    /// When its last subscriber left (or it was published with none), if it has none now.
    idle_since: Option<Instant>,
}

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
    idle_after: Duration,
    total: usize,
    rings: HashMap<Arc<str>, Ring>,
    /// Each topic by its newest id: the first is the least recently published.
    by_recency: BTreeMap<u64, Arc<str>>,
    /// Topics that became idle, oldest first (entries may be stale: checked when due).
    idle: VecDeque<(Instant, Arc<str>)>,
    /// The newest id dropped from any topic's history: a topic without a history knows
    /// nothing up to it.
    lost: u64,
}

impl TopicHistories {
    pub(crate) fn new(capacity: usize, total_capacity: usize, idle_after: Duration) -> Self {
        Self {
            capacity,
            total_capacity,
            idle_after,
            total: 0,
            rings: HashMap::new(),
            by_recency: BTreeMap::new(),
            idle: VecDeque::new(),
            lost: 0,
        }
    }

    /// Topics with a history, and the messages kept across them.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.rings.len(), self.total)
    }

    /// Records a publish to `topic` under `id` (above every id recorded before).
    pub(crate) fn record(&mut self, topic: &str, id: u64, message: &Message, index: &TopicIndex) {
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
            idle_since: None,
        });
        if let Some(previous) = ring.newest() {
            self.by_recency.remove(&previous);
        }
        if ring.messages.len() == self.capacity {
            if let Some((evicted, _)) = ring.messages.pop_front() {
                ring.forgotten = evicted;
                self.total -= 1;
            }
        }
        ring.messages.push_back((id, message.clone()));
        self.total += 1;
        if ring.idle_since.is_none() && index.members(topic).is_none() {
            // published with nobody subscribed: idle from now on
            ring.idle_since = Some(now);
            self.idle.push_back((now, name.clone()));
        }
        self.by_recency.insert(id, name.clone());
        self.bound(&name);
    }

    /// Keeps the total under its bound: drops the least recently published topics' histories
    /// (never `current`'s, which loses its oldest messages instead if it alone is too big).
    fn bound(&mut self, current: &Arc<str>) {
        while self.total > self.total_capacity {
            let oldest = self
                .by_recency
                .values()
                .find(|topic| *topic != current)
                .cloned();
            match oldest {
                Some(topic) => self.drop_ring(&topic),
                None => {
                    let Some(ring) = self.rings.get_mut(current) else {
                        return;
                    };
                    let Some((evicted, _)) = ring.messages.pop_front() else {
                        return;
                    };
                    ring.forgotten = evicted;
                    self.total -= 1;
                }
            }
        }
    }

    fn drop_ring(&mut self, topic: &str) {
        if let Some(ring) = self.rings.remove(topic) {
            if let Some(newest) = ring.newest() {
                self.by_recency.remove(&newest);
                self.lost = self.lost.max(newest);
            }
            self.total -= ring.messages.len();
        }
    }

    /// `topic` lost its last subscriber.
    pub(crate) fn became_idle(&mut self, topic: &str) {
        let Some((name, _)) = self.rings.get_key_value(topic) else {
            return;
        };
        let name = name.clone();
        let now = Instant::now();
        if let Some(ring) = self.rings.get_mut(topic) {
            ring.idle_since = Some(now);
        }
        self.idle.push_back((now, name));
    }

    /// Drops the histories of topics idle for longer than the idle time.
    pub(crate) fn expire(&mut self, now: Instant, index: &TopicIndex) {
        while let Some((since, topic)) = self.idle.front() {
            let due = since
                .checked_add(self.idle_after)
                .is_some_and(|due| due <= now);
            if !due {
                return;
            }
            let (since, topic) = (*since, topic.clone());
            self.idle.pop_front();
            let still_idle = self
                .rings
                .get(&topic)
                .is_some_and(|ring| ring.idle_since == Some(since));
            if still_idle && index.members(&topic).is_none() {
                self.drop_ring(&topic);
            }
        }
    }

    /// Messages lost for good below `before` (see [`crate::Hub::record_gap`]).
    pub(crate) fn gap_before(&mut self, before: u64) {
        let last_lost = before.saturating_sub(1);
        self.lost = self.lost.max(last_lost);
        for ring in self.rings.values_mut() {
            if last_lost > ring.forgotten {
                ring.forgotten = last_lost;
                while ring
                    .messages
                    .front()
                    .is_some_and(|(id, _)| *id <= last_lost)
                {
                    ring.messages.pop_front();
                    self.total -= 1;
                }
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

/// Merges `more` into `replay`, by id; the first `missed` wins, with the oldest id
/// available over both.
pub(crate) fn merge(replay: &mut Replay, more: Replay) {
    if more.messages.is_empty() && more.missed.is_none() {
        return;
    }
    let mut all: Vec<(u64, Message)> = std::mem::take(&mut replay.messages).into();
    all.extend(more.messages);
    all.sort_by_key(|(id, _)| *id);
    all.dedup_by_key(|(id, _)| *id);
    replay.messages = all.into();
    replay.missed = match (replay.missed, more.missed) {
        (None, m) | (m, None) => m,
        (Some(a), Some(b)) => Some(Missed {
            last_event_id: a.last_event_id,
            first_available: match (a.first_available, b.first_available) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
        }),
    };
    if let Some(missed) = &mut replay.missed {
        missed.first_available = replay.messages.front().map(|(id, _)| *id);
    }
}
