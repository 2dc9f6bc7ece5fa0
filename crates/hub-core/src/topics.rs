//! Topics: many broadcast groups in one hub.
//!
//! A client subscribes to any number of topics ([`Client::subscribe`]); [`Hub::publish`]
//! queues a message for the subscribers of one topic only, through the same bounded queue and
//! eviction policy as [`Hub::broadcast`] (which is a publish to everyone). The index maps each
//! topic to its subscribers and each client to its topics, so a publish costs in proportion to
//! the topic's subscribers, not to the hub's clients. A topic exists only while it has a
//! subscriber: an idle topic costs no task, no timer and no memory in the index.
//!
//! ```
//! use hub_core::{Hub, Message};
//!
//! let hub = Hub::new();
//! // nobody subscribed yet: nothing is queued, and no topic is created
//! assert_eq!(hub.publish("room:42", Message::text("hello")), 0);
//! assert_eq!(hub.topic_count(), 0);
//! assert!(hub.subscribers("room:42").is_empty());
//! ```
//!
//! With a client (from [`Hub::clients`], or the `client` of an [`Inbound`](crate::Inbound)):
//!
//! ```
//! # #[allow(dead_code)]
//! # fn demo(hub: &hub_core::Hub, client: &hub_core::Client) -> Result<(), hub_core::TopicError> {
//! client.subscribe("room:42")?;                 // from now on it gets room:42's messages
//! hub.publish("room:42", "hello room");           // to room:42's subscribers only
//! assert!(client.unsubscribe("room:42"));         // and after this, none
//! assert!(!client.unsubscribe("room:42"));        // not subscribed: a no-op that says so
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//! From the moment [`Client::subscribe`] returns, every message published to the topic after
//! that reaches the client once, in publish order; after [`Client::unsubscribe`] returns,
//! none. A client that leaves the hub (closed, evicted, keepalive, shutdown) leaves all its
//! topics at once. [`ConnectOptions::topics`](crate::ConnectOptions::topics) subscribes a
//! connection under the same lock that registers it: there is no window in which it is
//! connected but not yet subscribed.

use crate::broadcast::Broadcast;
use crate::history::{Missed, Replay};
use crate::message::Message;
use crate::state::{Client, Hub, Push};
use crate::stats::Counters;
use crate::topic_name::{validate_topic, Subscribed, TopicError};
use std::sync::{Arc, PoisonError};

/// What [`Client::subscribe_from`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resumed {
    /// Whether the client joined the topic or already had it (then nothing is replayed: it
    /// has been getting the topic's messages all along).
    pub subscribed: Subscribed,
    /// Messages of the topic's history after the id, queued ahead of the live ones.
    pub replayed: usize,
    /// Set when the topic's history no longer reaches back to the id: messages were lost
    /// (tell the client; a WebSocket has no `missed` frame of its own).
    ///
    /// Conservative for a topic whose history was dropped: such a topic no longer knows
    /// which ids were its own, so one watermark serves all of them, the newest id ever
    /// dropped from any topic's history. A resume from an id below it is told it missed
    /// messages even if none of the dropped ones was this topic's: possibly a false alarm,
    /// never a silent gap. The same holds for a stream's `missed` notice on connect.
    pub missed: Option<Missed>,
    /// The topic is new on this node and its history is still on its way from the cluster
    /// (a backplane that [catches topics up](crate::Backplane::catches_up)): the replay, and a
    /// `missed` notice if the cluster's history no longer reaches back, are queued when it
    /// arrives, ahead of the topic's live messages.
    pub pending: bool,
}

impl Client {
    /// Subscribes this client to `topic`: from the moment this returns, every message
    /// published to it reaches the client once, in publish order, through the client's one
    /// bounded queue (a full queue evicts it, as a broadcast does).
    ///
    /// # Errors
    /// An invalid name ([`validate_topic`]), [`TopicError::TooManyTopics`] when the client
    /// already has [`HubConfig::max_topics_per_client`](crate::HubConfig::max_topics_per_client)
    /// topics, or [`TopicError::ClientGone`] (also once the hub is shutting down). Nothing
    /// changed.
    pub fn subscribe(&self, topic: &str) -> Result<Subscribed, TopicError> {
        validate_topic(topic)?;
        let hub = self.shared.hub.upgrade().ok_or(TopicError::ClientGone)?;
        let mut index = hub.topics_mut();
        // Checked under the topic lock: a client that leaves is marked closed before it is
        // taken out of the index, so it is either refused here or taken out afterwards; and a
        // shutdown marks the hub before it clears the index, so a subscribe is either cleared
        // with it or refused here.
        if hub.is_shutting_down() || self.shared.lock().closed {
            return Err(TopicError::ClientGone);
        }
        hub.join_topic(&mut index, &self.shared, topic, None)
            .map(|joined| joined.subscribed)
    }

    /// Subscribes this client to `topic` and queues the messages of the topic's history after
    /// `last_event_id` ahead of the live ones, under the history's lock: no gap and no
    /// duplicate (a WebSocket joining a room later and resuming it). Without a hub history,
    /// as [`Client::subscribe`]. Already subscribed: nothing is replayed.
    ///
    /// The replay goes through the client's bounded queue: one longer than the queue evicts
    /// the client, as any send would.
    ///
    /// Meant for WebSocket clients (the application puts the ids in its payloads). The replay
    /// is queued *after* whatever the connection already got, so its ids may be lower than
    /// ids it has already been sent: on an SSE stream, whose `Last-Event-ID` must only go
    /// forward, that would rewind the client's resume point. An SSE stream gets its topics,
    /// and their replay in id order, when it is created
    /// ([`ConnectOptions::topics`](crate::ConnectOptions::topics) with
    /// [`ConnectOptions::last_event_id`](crate::ConnectOptions::last_event_id)).
    ///
    /// A topic whose history was dropped (idle, over the bounds, or after a gap) reports
    /// [`Resumed::missed`] conservatively: see there.
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn subscribe_from(&self, topic: &str, last_event_id: u64) -> Result<Resumed, TopicError> {
        validate_topic(topic)?;
        let hub = self.shared.hub.upgrade().ok_or(TopicError::ClientGone)?;
        let Some(history) = hub.history.as_ref() else {
            return self.subscribe(topic).map(|subscribed| Resumed {
                subscribed,
                replayed: 0,
                missed: None,
                pending: false,
            });
        };
        // Held until the replay is queued: no publish comes between it and the live ones.
        let history = history.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut replay, topic_newest) = match hub.topic_history() {
            Some(mut topics) => {
                topics.expire(std::time::Instant::now(), &*hub.topics());
                (topics.since(topic, last_event_id), topics.newest(topic))
            }
            None => (Replay::default(), 0),
        };
        // ids issued elsewhere and on their way: wait for what follows instead of a notice
        let mut wait_after = 0;
        if last_event_id > history.newest().max(topic_newest) && replay.missed.is_none() {
            if hub.backplane().may_arrive(Some(topic), last_event_id) {
                wait_after = last_event_id;
                replay = Replay::default();
            } else {
                // an id this hub never issued
                replay.missed = Some(Missed {
                    last_event_id,
                    first_available: replay.messages.front().map(|(id, _)| *id),
                });
            }
        }
        let joined = {
            let mut index = hub.topics_mut();
            if hub.is_shutting_down() || self.shared.lock().closed {
                return Err(TopicError::ClientGone);
            }
            let joined = hub.join_topic(&mut index, &self.shared, topic, Some(last_event_id))?;
            if wait_after > 0 && !joined.waiting {
                if let Some(entry) = index.topic_mut(topic) {
                    entry.set_after(self.shared.id, wait_after);
                }
            }
            joined
        };
        let subscribed = joined.subscribed;
        if subscribed == Subscribed::Already || joined.waiting {
            // already had it all along; or the backplane's catch-up will queue the replay
            return Ok(Resumed {
                subscribed,
                replayed: 0,
                missed: None,
                pending: joined.waiting,
            });
        }
        let mut replayed = 0;
        let mut evicted = false;
        for (id, message) in replay.messages {
            match self.shared.push(Some(id), message) {
                Push::Queued => replayed += 1,
                Push::Evicted => {
                    evicted = true;
                    break;
                }
                Push::Closed => break,
            }
        }
        drop(history);
        if evicted {
            hub.unregister(self.shared.id);
        }
        Ok(Resumed {
            subscribed,
            replayed,
            missed: replay.missed,
            pending: false,
        })
    }

    /// Unsubscribes this client from `topic`: once this returns, no message published to it
    /// is queued for the client. `false` (a no-op) if it was not subscribed.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let Some(hub) = self.shared.hub.upgrade() else {
            return false;
        };
        let left = {
            let mut index = hub.topics_mut();
            let left = index.leave(self.shared.id, topic);
            if left == Some(true) {
                hub.lost_interest(&[Arc::from(topic)]);
            }
            left
        };
        if left == Some(true) {
            hub.became_idle(&[Arc::from(topic)]);
        }
        left.is_some()
    }

    /// The topics this client is subscribed to, sorted.
    pub fn topics(&self) -> Vec<String> {
        match self.shared.hub.upgrade() {
            Some(hub) => hub.topics().topics_of(self.shared.id),
            None => Vec::new(),
        }
    }
}

impl Hub {
    /// Sends a message to the subscribers of `topic`, through the backplane, with the same
    /// guarantees as [`Hub::broadcast`]: never blocks, a full queue evicts its client, the
    /// payload is shared. With a history, the message gets the hub's next id (one sequence
    /// for broadcasts and every topic).
    ///
    /// Returns how many local subscribers had it queued now. An invalid topic name has no
    /// subscriber: nothing is sent and 0 is returned.
    pub fn publish(&self, topic: &str, message: impl Into<Message>) -> usize {
        self.publish_outgoing(topic, Broadcast::ready(message.into()))
    }

    /// As [`Hub::publish`], building the message from its id, as [`Hub::broadcast_with`].
    pub fn publish_with(
        &self,
        topic: &str,
        build: impl FnMut(Option<u64>) -> Message + Send + 'static,
    ) -> usize {
        self.publish_outgoing(topic, Broadcast::build(build))
    }

    fn publish_outgoing(&self, topic: &str, message: Broadcast) -> usize {
        if let Err(error) = validate_topic(topic) {
            tracing::debug!(%error, "publish to an invalid topic: no subscriber");
            return 0;
        }
        Counters::add(&self.inner.counters.broadcasts, 1);
        self.backplane()
            .publish(&self.inner.local(), topic, message.to_topic(topic))
    }

    /// Local subscribers of `topic` now.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner.topics().count(topic)
    }

    /// Handles to the local subscribers of `topic` (a snapshot).
    pub fn subscribers(&self, topic: &str) -> Vec<Client> {
        self.inner
            .topics()
            .topic(topic)
            .map(|entry| {
                entry
                    .members
                    .values()
                    .map(|shared| Client {
                        shared: shared.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// With a history: how many topics keep a history, and how many messages they keep in
    /// all (bounded by [`HubConfig::topic_history_total`](crate::HubConfig::topic_history_total)).
    /// `(0, 0)` without a history.
    pub fn topic_history_size(&self) -> (usize, usize) {
        self.inner.topic_history().map_or((0, 0), |h| h.size())
    }

    /// Topics with at least one local subscriber.
    pub fn topic_count(&self) -> usize {
        self.inner.topics().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ClientKind;
    use crate::state::{ClientId, Shared};
    use crate::stats::DisconnectReason;
    use std::sync::atomic::AtomicU64;

    /// A client registered as `Hub::connect` does, without a transport.
    fn registered(hub: &Hub, id: u64) -> Client {
        let shared = Arc::new(Shared {
            id: ClientId(id),
            hub: Arc::downgrade(&hub.inner),
            queue: std::sync::Mutex::default(),
            waker: Default::default(),
            capacity: 8,
            data: None,
            kind: ClientKind::WebSocket,
            resume_after: AtomicU64::new(0),
        });
        hub.inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(shared.id, shared.clone());
        Client { shared }
    }

    #[test]
    fn a_subscribe_between_shutdowns_drain_and_close_is_refused_and_leaks_nothing() {
        let hub = Hub::with_config(crate::HubConfig::default().history(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let client = registered(&hub, 1);
        let drained = hub.drain_for_shutdown();
        assert_eq!(client.subscribe("t"), Err(TopicError::ClientGone));
        assert_eq!(
            client.subscribe_from("t", 0).err(),
            Some(TopicError::ClientGone)
        );
        hub.close_drained(&drained);
        client.shared.leave(DisconnectReason::Shutdown);
        assert_eq!(hub.topic_count(), 0);
        assert!(client.topics().is_empty());
    }

    #[test]
    fn unregister_takes_a_client_out_of_the_index_even_when_no_longer_registered() {
        let hub = Hub::new();
        let client = registered(&hub, 1);
        assert_eq!(client.subscribe("t"), Ok(Subscribed::Joined));
        // as a shutdown's drain does: out of the registry, still in the index
        hub.inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        hub.inner.unregister(client.shared.id);
        assert_eq!(hub.topic_count(), 0);
        assert!(client.topics().is_empty());
    }
}
