//! Broadcast: through the backplane, and the local deliveries backplanes build on.

use crate::backplane::{Backplane, Broadcast};
use crate::client::{ClientId, Push, Shared};
use crate::history::{HistoryError, MAX_ID};
use crate::hub::Hub;
use crate::message::Message;
use crate::stats::Counters;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

impl Hub {
    /// Replaces the cross-node fan-out (in-memory by default). Every [`Hub::broadcast`] passes
    /// through it.
    pub fn set_backplane(&self, backplane: Arc<dyn Backplane>) {
        *self
            .inner
            .backplane
            .write()
            .unwrap_or_else(PoisonError::into_inner) = backplane;
    }

    /// Sends a message to every client (Kashvi's `hub.Broadcast <- data`), through the
    /// backplane. Never blocks and never waits for a client; a client whose queue is full is
    /// evicted. The payload is shared by every recipient, not copied.
    ///
    /// Returns how many local clients had the message queued now (with a cross-node
    /// backplane, 0: local clients get it when it comes back from the cluster with its id).
    pub fn broadcast(&self, message: impl Into<Message>) -> usize {
        self.send_outgoing(Broadcast::ready(message.into()))
    }

    /// As [`Hub::broadcast`], building the message from its history id, so the application
    /// can put the id in the payload (WebSocket clients have no `id:` field; see the README's
    /// "Resume" section). The id is `None` when the hub keeps no history, or when a cross-node
    /// backplane delivers the message to this node only (it is down). A backplane may call
    /// `build` again with another id; only the last message is sent.
    ///
    /// ```
    /// use hub_core::{Hub, HubConfig, Message};
    ///
    /// let hub = Hub::with_config(HubConfig::default().history(100))?;
    /// hub.broadcast_with(|id| {
    ///     Message::text(format!(r#"{{"id":{},"score":"2-1"}}"#, id.unwrap_or(0)))
    /// });
    /// # Ok::<(), hub_core::ConfigError>(())
    /// ```
    pub fn broadcast_with(
        &self,
        build: impl FnMut(Option<u64>) -> Message + Send + 'static,
    ) -> usize {
        self.send_outgoing(Broadcast::build(build))
    }

    /// Hands a broadcast to everyone to the backplane.
    fn send_outgoing(&self, message: Broadcast) -> usize {
        Counters::add(&self.inner.counters.broadcasts, 1);
        self.backplane().broadcast(self, message)
    }

    /// Records `message` in the history under the hub's next id and queues it for every
    /// client connected to this process (or, for a topic publish, for the topic's local
    /// subscribers), bypassing the backplane ([`LocalOnly`](crate::LocalOnly) does this).
    pub fn deliver_local(&self, message: impl Into<Broadcast>) -> usize {
        let mut message = message.into();
        let topic = message.topic_name();
        let audience = Audience::of(topic.as_deref());
        match &self.inner.history {
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
                        if let Some(mut topics) = self.inner.topic_history() {
                            topics.record(topic, id, &built, &self.inner.topics());
                        }
                        id
                    }
                };
                self.fan_out(audience, Some(id), &built)
            }
        }
    }

    /// Records `message` in the history under `id`, an id given across the cluster, and
    /// queues it for every client connected to this process; returns how many had it queued.
    ///
    /// # Errors
    /// Ids must increase and stay at most [`MAX_ID`](crate::MAX_ID): an id not above the
    /// newest recorded ([`HistoryError::NotNewer`], a duplicate: not delivered again) or above
    /// the maximum ([`HistoryError::OutOfRange`]) is refused, and nothing is delivered.
    pub fn deliver_with_id(&self, id: u64, message: Message) -> Result<usize, HistoryError> {
        match &self.inner.history {
            None if id > MAX_ID => Err(HistoryError::OutOfRange { id }),
            None => Ok(self.fan_out(Audience::Everyone, Some(id), &message)),
            Some(history) => {
                let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
                history.record_at(id, &message)?;
                Ok(self.fan_out(Audience::Everyone, Some(id), &message))
            }
        }
    }

    /// Records `message` under `id` in the history without sending it to anyone: a node
    /// joining a cluster fills its history so clients can resume on it.
    ///
    /// # Errors
    /// As [`Hub::deliver_with_id`], and [`HistoryError::NoHistory`] when the hub keeps none.
    pub fn remember(&self, id: u64, message: Message) -> Result<(), HistoryError> {
        let history = self.inner.history.as_ref().ok_or(HistoryError::NoHistory)?;
        history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record_at(id, &message)
    }

    /// Tells the history that messages with ids below `before` that it has not recorded are
    /// lost for good: a backplane that came back from an outage could not fetch them all.
    /// A client resuming from an id below `before` then gets a `missed` notice instead of a
    /// silent gap. Does nothing without a history.
    pub fn record_gap(&self, before: u64) {
        if let Some(history) = &self.inner.history {
            let mut history = history.lock().unwrap_or_else(PoisonError::into_inner);
            history.gap_before(before);
            if let Some(mut topics) = self.inner.topic_history() {
                topics.gap_before(before);
            }
        }
    }

    /// Queues `message` for every client connected to this process without an id and without
    /// recording it: a backplane cut off from its cluster delivers this way, since it cannot
    /// give the message an id the cluster agrees on.
    pub fn deliver_without_id(&self, message: Message) -> usize {
        self.fan_out(Audience::Everyone, None, &message)
    }

    /// As [`Hub::deliver_without_id`] for a broadcast or a topic publish: queues it, without
    /// an id and without recording it, for everyone or for the topic's local subscribers.
    pub fn deliver_local_without_id(&self, mut message: Broadcast) -> usize {
        let built = message.message(None);
        self.fan_out(Audience::of(message.topic()), None, &built)
    }

    /// The one fan-out: a broadcast is a publish whose audience is the registry itself.
    fn fan_out(&self, audience: Audience<'_>, id: Option<u64>, message: &Message) -> usize {
        let mut evicted: Vec<ClientId> = Vec::new();
        let queued = match audience {
            Audience::Everyone => {
                let registry = self
                    .inner
                    .registry
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                push_all(registry.values(), id, message, &mut evicted)
            }
            Audience::Topic(topic) => match self.inner.topics().members(topic) {
                Some(members) => push_all(members.values(), id, message, &mut evicted),
                None => 0,
            },
        };
        for id in evicted {
            self.inner.unregister(id);
            tracing::debug!(client = %id, "evicted slow consumer");
        }
        queued
    }

    /// The hub's backplane.
    pub(crate) fn backplane(&self) -> Arc<dyn Backplane> {
        self.inner
            .backplane
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Who a fan-out is for.
#[derive(Clone, Copy)]
enum Audience<'a> {
    Everyone,
    Topic(&'a str),
}

impl<'a> Audience<'a> {
    fn of(topic: Option<&'a str>) -> Self {
        topic.map_or(Self::Everyone, Self::Topic)
    }
}

/// Queues `message` for each client; the evicted ones are collected for the caller to take
/// out of the registry once its locks are released.
fn push_all<'a>(
    clients: impl Iterator<Item = &'a Arc<Shared>>,
    id: Option<u64>,
    message: &Message,
    evicted: &mut Vec<ClientId>,
) -> usize {
    let mut queued = 0;
    for client in clients {
        if id.is_some_and(|id| id <= client.resume_after.load(Ordering::Relaxed)) {
            continue; // resuming from a later id than this node had: seen already
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
