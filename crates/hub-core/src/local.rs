//! The narrow handle a backplane delivers through. It knows the hub only as [`Deliver`]
//! (implemented in `delivery`), so this module, and the backplane seam built on it, sit below
//! the hub's state rather than in a cycle with it.

use crate::broadcast::Broadcast;
use crate::history::HistoryError;
use crate::message::Message;
use std::sync::{Arc, Weak};

/// What the hub does for a [`Local`] handle: see each method of [`Local`].
pub(crate) trait Deliver: Send + Sync {
    fn deliver(&self, message: Broadcast) -> usize;
    fn deliver_with_id(
        &self,
        topic: Option<&str>,
        id: u64,
        message: &Message,
    ) -> Result<usize, HistoryError>;
    fn deliver_without_id(&self, message: Broadcast) -> usize;
    fn remember(&self, topic: Option<&str>, id: u64, message: &Message)
        -> Result<(), HistoryError>;
    fn record_gap(&self, topic: Option<&str>, before: u64);
    fn newest(&self, topic: Option<&str>) -> u64;
    fn topics(&self) -> Vec<String>;
    fn history_len(&self) -> usize;
    fn catch_up(
        &self,
        topic: &str,
        since: u64,
        entries: Vec<(u64, Message)>,
        complete: bool,
    ) -> usize;
}

/// A [`Backplane`](crate::Backplane)'s handle to deliver to this process's clients: the only
/// way to queue a message without going through the backplane, so the application's
/// [`Hub`](crate::Hub) cannot bypass the history or the cluster. Given to
/// [`Backplane::attach`](crate::Backplane::attach) and with every broadcast.
///
/// It does not keep the hub alive: once the hub is gone every method does nothing (and says
/// so: 0 queued, [`Local::is_alive`] false).
#[derive(Clone)]
pub struct Local {
    inner: Weak<dyn Deliver>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Local {
    /// A handle to `hub`.
    pub(crate) fn new(hub: Weak<dyn Deliver>) -> Self {
        Self { inner: hub }
    }

    fn hub(&self) -> Option<Arc<dyn Deliver>> {
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
    /// stay at most [`MAX_ID`](crate::MAX_ID): an id not above the newest recorded
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
    pub fn deliver_without_id(&self, message: Broadcast) -> usize {
        self.hub().map_or(0, |hub| hub.deliver_without_id(message))
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
        match self.hub() {
            Some(hub) => hub.remember(topic, id, &message),
            None => Ok(()),
        }
    }

    /// Tells the history of the broadcasts (`topic` `None`) or of `topic` that messages with
    /// ids below `before` that it has not recorded are lost for good: a backplane that came
    /// back from an outage could not fetch them all. A client resuming from an id below
    /// `before` then gets a `missed` notice instead of a silent gap. Does nothing without a
    /// history.
    pub fn record_gap(&self, topic: Option<&str>, before: u64) {
        if let Some(hub) = self.hub() {
            hub.record_gap(topic, before);
        }
    }

    /// The newest id recorded for the broadcasts (`None`) or for `topic` (0: none, or no
    /// history).
    pub fn newest(&self, topic: Option<&str>) -> u64 {
        self.hub().map_or(0, |hub| hub.newest(topic))
    }

    /// The topics with at least one local subscriber now, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.hub().map(|hub| hub.topics()).unwrap_or_default()
    }

    /// The hub's history length ([`HubConfig::history`](crate::HubConfig::history); 0: it keeps
    /// none).
    pub fn history_len(&self) -> usize {
        self.hub().map_or(0, |hub| hub.history_len())
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
