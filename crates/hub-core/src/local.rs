//! Local delivery: the one fan-out, and the narrow handle a backplane delivers through.

use crate::backplane::Broadcast;
use crate::client::{ClientId, Push, Shared};
use crate::history::{HistoryError, MAX_ID};
use crate::hub::HubInner;
use crate::message::Message;
use crate::topic_index::Member;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};

/// A [`Backplane`](crate::Backplane)'s handle to deliver to this process's clients: the only
/// way to queue a message without going through the backplane, so the application's
/// [`Hub`](crate::Hub) cannot bypass the history or the cluster. Given to
/// [`Backplane::attach`](crate::Backplane::attach) and with every broadcast.
///
/// It does not keep the hub alive: once the hub is gone every method does nothing (and says
/// so: 0 queued, [`Local::is_alive`] false).
#[derive(Clone)]
pub struct Local {
    pub(crate) inner: Weak<HubInner>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// Who a fan-out is for.
#[derive(Clone, Copy)]
pub(crate) enum Audience<'a> {
    Everyone,
    Topic(&'a str),
}

impl<'a> Audience<'a> {
    fn of(topic: Option<&'a str>) -> Self {
        topic.map_or(Self::Everyone, Self::Topic)
    }
}

impl Local {
    fn hub(&self) -> Option<Arc<HubInner>> {
        self.inner.upgrade()
    }

    /// Whether the hub still exists.
    pub fn is_alive(&self) -> bool {
        self.inner.strong_count() > 0
    }

    /// Records `message` in the history under the hub's next id and queues it for every
    /// client connected to this process, or for a topic publish
    /// ([`Broadcast::topic`]), for the topic's local subscribers: what
    /// [`LocalOnly`](crate::LocalOnly) does. Returns how many had it queued.
    pub fn deliver(&self, message: Broadcast) -> usize {
        self.hub().map_or(0, |hub| hub.deliver(message))
    }

    /// Records `message` under `id`, an id given across the cluster, and queues it for every
    /// client connected to this process (`topic` `None`), or for the local subscribers of
    /// `topic`; returns how many had it queued.
    ///
    /// # Errors
    /// Ids must increase (for the broadcasts to everyone, and for each topic on its own) and
    /// stay at most [`MAX_ID`]: an id not above the newest recorded
    /// ([`HistoryError::NotNewer`], a duplicate: not delivered again) or above the maximum
    /// ([`HistoryError::OutOfRange`]) is refused, and nothing is delivered.
    pub fn deliver_with_id(
        &self,
        topic: Option<&str>,
        id: u64,
        message: Message,
    ) -> Result<usize, HistoryError> {
        match self.hub() {
            Some(hub) => hub.deliver_with_id(topic, id, &message),
            None => Ok(0),
        }
    }

    /// Queues `message` without an id and without recording it, for everyone or for the
    /// topic's local subscribers: a backplane cut off from its cluster delivers this way,
    /// since it cannot give the message an id the cluster agrees on.
    pub fn deliver_without_id(&self, mut message: Broadcast) -> usize {
        let Some(hub) = self.hub() else { return 0 };
        let built = message.message(None);
        hub.fan_out(Audience::of(message.topic()), None, &built)
    }

    /// Records `message` under `id` in the history of the broadcasts (`topic` `None`) or of
    /// `topic`, without sending it to anyone: a node joining a cluster fills its history so
    /// clients can resume on it.
    ///
    /// # Errors
    /// As [`Local::deliver_with_id`], and [`HistoryError::NoHistory`] when the hub keeps none.
    pub fn remember(
        &self,
        topic: Option<&str>,
        id: u64,
        message: Message,
    ) -> Result<(), HistoryError> {
        let Some(hub) = self.hub() else { return Ok(()) };
        let history = hub.history.as_ref().ok_or(HistoryError::NoHistory)?;
        let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
        match topic {
            None => history.record_at(id, &message),
            Some(topic) => hub.record_topic(&mut history, topic, id, &message),
        }
    }

    /// Tells the history of the broadcasts (`topic` `None`) or of `topic` that messages with
    /// ids below `before` that it has not recorded are lost for good: a backplane that came
    /// back from an outage could not fetch them all. A client resuming from an id below
    /// `before` then gets a `missed` notice instead of a silent gap. Does nothing without a
    /// history.
    pub fn record_gap(&self, topic: Option<&str>, before: u64) {
        let Some(hub) = self.hub() else { return };
        let Some(history) = &hub.history else { return };
        let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
        match topic {
            None => history.gap_before(before),
            Some(topic) => {
                if let Some(mut topics) = hub.topic_history() {
                    topics.gap_before_topic(topic, before);
                }
            }
        }
    }

    /// The newest id recorded for the broadcasts (`None`) or for `topic` (0: none, or no
    /// history).
    pub fn newest(&self, topic: Option<&str>) -> u64 {
        let Some(hub) = self.hub() else { return 0 };
        hub.newest(topic)
    }

    /// The topics with at least one local subscriber now, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.hub()
            .map(|hub| hub.topics().names())
            .unwrap_or_default()
    }

    /// The hub's history length ([`HubConfig::history`](crate::HubConfig::history); 0: it keeps
    /// none).
    pub fn history_len(&self) -> usize {
        self.hub().map_or(0, |hub| hub.config.history)
    }

    /// For a backplane whose [`catches_up`](crate::Backplane::catches_up) is true: `topic`'s
    /// local subscribers have waited since [`interest`](crate::Backplane::interest) said
    /// `true`, and the backplane now receives the topic's live messages. `entries` (in id
    /// order) are the topic's cluster history, read *after* that live traffic began; `since`
    /// is the cluster's id at (or before) the moment the interest began; `complete` says
    /// whether `entries` reach back to the topic's first message (if not, ids below the first
    /// entry are recorded as lost).
    ///
    /// Records the entries in the topic's history, queues each waiting subscriber what it is
    /// owed — a resuming one what followed its id (with a `missed` notice if the entries do
    /// not reach back to it), a fresh one what followed `since` — and from then on the topic
    /// is live here. Returns how many messages were queued. Does nothing for a topic with no
    /// local subscriber.
    pub fn catch_up(
        &self,
        topic: &str,
        since: u64,
        entries: Vec<(u64, Message)>,
        complete: bool,
    ) -> usize {
        self.hub()
            .map_or(0, |hub| hub.catch_up(topic, since, entries, complete))
    }
}

impl HubInner {
    /// A handle for the backplane.
    pub(crate) fn local(self: &Arc<Self>) -> Local {
        Local {
            inner: Arc::downgrade(self),
        }
    }

    /// See [`Local::deliver`].
    fn deliver(&self, mut message: Broadcast) -> usize {
        let topic = message.topic_name();
        let audience = Audience::of(topic.as_deref());
        match &self.history {
            None => self.fan_out(audience, None, &message.message(None)),
            Some(history) => {
                // Held across the fan-out: ids reach every client in increasing order.
                let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
                let built = message.message(Some(history.peek_id()));
                let id = match audience {
                    Audience::Everyone => history.record(&built),
                    Audience::Topic(topic) => {
                        // one id sequence for the hub; the message is kept in its topic's
                        // history only
                        let id = history.take_id();
                        if let Some(mut topics) = self.topic_history() {
                            topics.record(topic, id, &built, &self.topics());
                        }
                        id
                    }
                };
                self.fan_out(audience, Some(id), &built)
            }
        }
    }

    /// See [`Local::deliver_with_id`].
    fn deliver_with_id(
        &self,
        topic: Option<&str>,
        id: u64,
        message: &Message,
    ) -> Result<usize, HistoryError> {
        let audience = Audience::of(topic);
        match &self.history {
            None if id > MAX_ID => Err(HistoryError::OutOfRange { id }),
            None => Ok(self.fan_out(audience, Some(id), message)),
            Some(history) => {
                let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
                match topic {
                    None => history.record_at(id, message)?,
                    Some(topic) => self.record_topic(&mut history, topic, id, message)?,
                }
                Ok(self.fan_out(audience, Some(id), message))
            }
        }
    }

    /// Records a topic's message under a cluster id (the hub's history lock held: `_history`).
    fn record_topic(
        &self,
        _history: &mut crate::history::History,
        topic: &str,
        id: u64,
        message: &Message,
    ) -> Result<(), HistoryError> {
        match self.topic_history() {
            Some(mut topics) => topics.record_at(topic, id, message, &self.topics()),
            None => Err(HistoryError::NoHistory),
        }
    }

    /// See [`Local::newest`].
    pub(crate) fn newest(&self, topic: Option<&str>) -> u64 {
        let Some(history) = &self.history else {
            return 0;
        };
        let history = history.lock().unwrap_or_else(PoisonError::into_inner);
        match topic {
            None => history.newest(),
            Some(topic) => self.topic_history().map_or(0, |t| t.newest(topic)),
        }
    }

    /// The one fan-out: a broadcast is a publish whose audience is the registry itself.
    pub(crate) fn fan_out(
        &self,
        audience: Audience<'_>,
        id: Option<u64>,
        message: &Message,
    ) -> usize {
        let mut evicted: Vec<ClientId> = Vec::new();
        let queued = match audience {
            Audience::Everyone => {
                let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
                let clients = registry
                    .values()
                    .map(|shared| (shared, shared.resume_after.load(Ordering::Relaxed)));
                push_all(clients, id, message, &mut evicted)
            }
            Audience::Topic(topic) => match self.topics().topic(topic) {
                Some(entry) => {
                    let members = entry
                        .members
                        .values()
                        .map(|m: &Member| (&m.shared, m.after));
                    push_all(members, id, message, &mut evicted)
                }
                None => 0,
            },
        };
        for id in evicted {
            self.unregister(id);
            tracing::debug!(client = %id, "evicted slow consumer");
        }
        queued
    }
}

/// Queues `message` for each client; the evicted ones are collected for the caller to take
/// out of the registry once its locks are released. A client's second field: ids up to it
/// are not for it (it resumed from a later id than this node had, or was caught up past it).
fn push_all<'a>(
    clients: impl Iterator<Item = (&'a Arc<Shared>, u64)>,
    id: Option<u64>,
    message: &Message,
    evicted: &mut Vec<ClientId>,
) -> usize {
    let mut queued = 0;
    for (client, after) in clients {
        if id.is_some_and(|id| id <= after) {
            continue; // seen already
        }
        match client.push(id, message.clone()) {
            Push::Queued => queued += 1,
            // counted by the push; leaves the registry once the locks are released
            Push::Evicted => evicted.push(client.id),
            Push::Closed => {}
        }
    }
    queued
}
