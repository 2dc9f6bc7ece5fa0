//! The topic index: topic → subscribers and client → topics, changed together under the hub's
//! topic lock (taken after the history and the registry, before any client's queue).

use super::{ClientId, Shared};
use crate::topic_history::Wanted;
use crate::topic_name::{Subscribed, TopicError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What a few members of a topic carry besides their queue; kept out of line, so a plain
/// subscription costs one map entry of a pointer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Special {
    /// Messages of the topic with ids up to this one are not for this member: it resumed from
    /// an id of another node before this node had it, or a catch-up already gave it them.
    pub(crate) after: u64,
    /// Waiting for the backplane's catch-up of the topic ([`TopicIndex::join`] on a topic
    /// that awaits one): `Some(last)` resumes after `last`, `None` is a fresh subscriber.
    pub(crate) waiting: Option<Option<u64>>,
}

/// One topic's local subscribers.
#[derive(Default)]
pub(crate) struct Topic {
    pub(crate) members: HashMap<ClientId, Arc<Shared>>,
    /// The members with a resume point or waiting for a catch-up (usually none: then no map,
    /// a topic costs one pointer for it, not an empty map's 48 bytes).
    #[allow(clippy::box_collection)]
    special: Option<Box<HashMap<ClientId, Special>>>,
    /// The backplane has not caught this topic up yet (see `Backplane::catches_up`).
    pub(crate) awaiting: bool,
}

impl Topic {
    /// Ids up to `after` are not for member `id`.
    pub(crate) fn set_after(&mut self, id: ClientId, after: u64) {
        if self.members.contains_key(&id) {
            self.special_mut().entry(id).or_default().after = after;
        }
    }

    fn special_mut(&mut self) -> &mut HashMap<ClientId, Special> {
        self.special.get_or_insert_with(Box::default)
    }

    /// The members with something special, and every member's queue.
    pub(crate) fn special_and_members(
        &mut self,
    ) -> (
        impl Iterator<Item = (&ClientId, &mut Special)>,
        &HashMap<ClientId, Arc<Shared>>,
    ) {
        (
            self.special.iter_mut().flat_map(|s| s.iter_mut()),
            &self.members,
        )
    }

    /// The members a message with `id` goes to now, each with the ids not for it: a member
    /// waiting for the catch-up gets a message with an id through it, not now.
    pub(crate) fn audience(
        &self,
        id: Option<u64>,
    ) -> impl Iterator<Item = (&Arc<Shared>, u64)> + '_ {
        self.members.iter().filter_map(move |(client, shared)| {
            match self.special.as_ref().and_then(|s| s.get(client)) {
                None => Some((shared, 0)),
                Some(s) if id.is_some() && s.waiting.is_some() => None,
                Some(s) => Some((shared, s.after)),
            }
        })
    }
}

/// What [`TopicIndex::join`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) subscribed: Subscribed,
    /// The topic had no local subscriber before.
    pub(crate) first: bool,
    /// The member waits for the topic's catch-up.
    pub(crate) waiting: bool,
}

/// Topic → subscribers, and client → topics.
#[derive(Default)]
pub(crate) struct TopicIndex {
    topics: HashMap<Arc<str>, Topic>,
    joined: HashMap<ClientId, HashSet<Arc<str>>>,
}

impl TopicIndex {
    /// Subscribes `shared` to `topic` (already validated), unless it has `limit` topics. A
    /// topic created here awaits a catch-up when `await_catch_up`; a member joining a topic
    /// that awaits one waits for it, resuming after `resume` (`None`: fresh).
    pub(crate) fn join(
        &mut self,
        shared: &Arc<Shared>,
        topic: &str,
        limit: usize,
        await_catch_up: bool,
        resume: Option<u64>,
    ) -> Result<Joined, TopicError> {
        let mine = self.joined.entry(shared.id).or_default();
        if mine.contains(topic) {
            return Ok(Joined {
                subscribed: Subscribed::Already,
                first: false,
                waiting: false,
            });
        }
        if mine.len() >= limit {
            if mine.is_empty() {
                self.joined.remove(&shared.id);
            }
            return Err(TopicError::TooManyTopics { limit });
        }
        let name: Arc<str> = match self.topics.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => Arc::from(topic),
        };
        mine.insert(name.clone());
        let first = !self.topics.contains_key(topic);
        let entry = self.topics.entry(name).or_insert_with(|| Topic {
            awaiting: await_catch_up,
            ..Topic::default()
        });
        let waiting = entry.awaiting;
        entry.members.insert(shared.id, shared.clone());
        if waiting {
            entry.special_mut().insert(
                shared.id,
                Special {
                    after: 0,
                    waiting: Some(resume),
                },
            );
        }
        Ok(Joined {
            subscribed: Subscribed::Joined,
            first,
            waiting,
        })
    }

    /// Unsubscribes `id` from `topic`; `None` if it was not subscribed, else whether the
    /// topic is left without subscribers.
    pub(crate) fn leave(&mut self, id: ClientId, topic: &str) -> Option<bool> {
        let mine = self.joined.get_mut(&id)?;
        if !mine.remove(topic) {
            return None;
        }
        if mine.is_empty() {
            self.joined.remove(&id);
        }
        Some(self.remove_member(topic, id))
    }

    /// Unsubscribes `id` from every topic; returns the topics left without subscribers.
    pub(crate) fn leave_all(&mut self, id: ClientId) -> Vec<Arc<str>> {
        let mut emptied = Vec::new();
        if let Some(mine) = self.joined.remove(&id) {
            for topic in mine {
                if self.remove_member(&topic, id) {
                    emptied.push(topic);
                }
            }
        }
        emptied
    }

    /// Whether the topic is left without subscribers.
    fn remove_member(&mut self, topic: &str, id: ClientId) -> bool {
        if let Some(entry) = self.topics.get_mut(topic) {
            entry.members.remove(&id);
            if let Some(special) = &mut entry.special {
                special.remove(&id);
            }
            if entry.members.is_empty() {
                // an empty topic leaves the index: idle topics cost nothing
                self.topics.remove(topic);
                return true;
            }
        }
        false
    }

    pub(crate) fn topic(&self, topic: &str) -> Option<&Topic> {
        self.topics.get(topic)
    }

    pub(crate) fn topic_mut(&mut self, topic: &str) -> Option<&mut Topic> {
        self.topics.get_mut(topic)
    }

    /// Local subscribers of `topic`.
    pub(crate) fn count(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, |t| t.members.len())
    }

    pub(crate) fn topics_of(&self, id: ClientId) -> Vec<String> {
        let mut topics: Vec<String> = self
            .joined
            .get(&id)
            .map(|mine| mine.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default();
        topics.sort_unstable();
        topics
    }

    /// Every topic with a local subscriber, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.topics.keys().map(|t| t.to_string()).collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn len(&self) -> usize {
        self.topics.len()
    }

    /// Empties the index; returns the topics it had.
    pub(crate) fn clear(&mut self) -> Vec<Arc<str>> {
        self.joined = HashMap::new();
        std::mem::take(&mut self.topics).into_keys().collect()
    }
}

impl TopicIndex {
    /// Whether `topic` has a local subscriber.
    pub(crate) fn has(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }
}

impl Wanted for TopicIndex {
    fn has(&self, topic: &str) -> bool {
        TopicIndex::has(self, topic)
    }
}
