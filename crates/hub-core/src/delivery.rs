//! Local delivery: the one fan-out (a broadcast is a publish whose audience is the registry),
//! and what the hub does for a backplane's [`Local`] handle.

use crate::broadcast::Broadcast;
use crate::codec::Deflated;
use crate::history::{HistoryError, MAX_ID};
use crate::local::{Deliver, Local};
use crate::message::Message;
use crate::state::{ClientId, HubInner, Push, Shared};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

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

impl HubInner {
    /// A handle for the backplane.
    pub(crate) fn local(self: &Arc<Self>) -> Local {
        let hub: std::sync::Weak<dyn Deliver> = Arc::downgrade(self) as _;
        Local::new(hub)
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
            Some(mut topics) => topics.record_at(topic, id, message, &*self.topics()),
            None => Err(HistoryError::NoHistory),
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
        // compressed at most once, by the first recipient that negotiated permessage-deflate
        let deflate = &self.config.deflate;
        let deflated = (deflate.enabled && message.len() >= deflate.threshold)
            .then(|| Arc::new(Deflated::new()));
        let queued = match audience {
            Audience::Everyone => {
                let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
                let clients = registry
                    .values()
                    .map(|shared| (shared, shared.resume_after.load(Ordering::Relaxed)));
                push_all(clients, id, message, deflated, &mut evicted)
            }
            Audience::Topic(topic) => match self.topics().topic(topic) {
                Some(entry) => push_all(entry.audience(id), id, message, deflated, &mut evicted),
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
    deflated: Option<Arc<Deflated>>,
    evicted: &mut Vec<ClientId>,
) -> usize {
    let mut queued = 0;
    for (client, after) in clients {
        if id.is_some_and(|id| id <= after) {
            continue; // seen already
        }
        match client.push_shared(id, message.clone(), deflated.clone()) {
            Push::Queued => queued += 1,
            // counted by the push; leaves the registry once the locks are released
            Push::Evicted => evicted.push(client.id),
            Push::Closed => {}
        }
    }
    queued
}

impl Deliver for HubInner {
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
                            topics.record(topic, id, &built, &*self.topics());
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

    /// See [`Local::newest`].
    fn newest(&self, topic: Option<&str>) -> u64 {
        let Some(history) = &self.history else {
            return 0;
        };
        let history = history.lock().unwrap_or_else(PoisonError::into_inner);
        match topic {
            None => history.newest(),
            Some(topic) => self.topic_history().map_or(0, |t| t.newest(topic)),
        }
    }

    fn deliver_without_id(&self, mut message: Broadcast) -> usize {
        let built = message.message(None);
        self.fan_out(Audience::of(message.topic()), None, &built)
    }

    fn remember(
        &self,
        topic: Option<&str>,
        id: u64,
        message: &Message,
    ) -> Result<(), HistoryError> {
        let history = self.history.as_ref().ok_or(HistoryError::NoHistory)?;
        let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
        match topic {
            None => history.record_at(id, message),
            Some(topic) => self.record_topic(&mut history, topic, id, message),
        }
    }

    fn record_gap(&self, topic: Option<&str>, before: u64) {
        let Some(history) = &self.history else { return };
        let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
        match topic {
            None => history.gap_before(before),
            Some(topic) => {
                if let Some(mut topics) = self.topic_history() {
                    topics.gap_before_topic(topic, before);
                }
            }
        }
    }

    fn topics(&self) -> Vec<String> {
        HubInner::topics(self).names()
    }

    fn history_len(&self) -> usize {
        self.config.history
    }

    fn catch_up(
        &self,
        topic: &str,
        since: u64,
        entries: Vec<(u64, Message)>,
        complete: bool,
    ) -> usize {
        HubInner::catch_up(self, topic, since, entries, complete)
    }
}
