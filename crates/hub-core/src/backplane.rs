//! The seam for cross-node fan-out.

use crate::hub::Hub;
use crate::message::Message;
use std::sync::Arc;

/// Where every [`Hub::broadcast`] and [`Hub::publish`] goes. The default, [`LocalOnly`],
/// delivers to this process's clients with ids from the hub's own history. A cross-node
/// backplane (e.g. Redis) carries the broadcast to every node, its own included, and delivers
/// it there with the id it was given across the cluster ([`Hub::deliver_with_id`]), so every
/// node's history holds the same ids in the same order and a client can resume on any node.
///
/// Broadcasts to everyone and topic publishes come through separate methods, so a backplane
/// that knows nothing of topics never sends a topic's message to everyone: [`Backplane::publish`]
/// delivers to the topic's local subscribers unless a backplane overrides it.
pub trait Backplane: Send + Sync + 'static {
    /// Fans out `message` to everyone (never a topic publish: those go to
    /// [`Backplane::publish`]); returns how many local clients had it queued now (0 when local
    /// delivery waits for the message to come back from the cluster).
    fn broadcast(&self, hub: &Hub, message: Broadcast) -> usize;

    /// Fans out `message` to the subscribers of `topic` (a valid name; `message`'s
    /// [`Broadcast::topic`] is `topic`); returns how many local subscribers had it queued now.
    ///
    /// The default delivers to this process's subscribers of the topic, with an id from the
    /// hub's own history ([`Hub::deliver_local`]), as [`LocalOnly`] does. A backplane that
    /// overrides it must keep the message to the topic's subscribers: deliver it with
    /// [`Hub::deliver_local`] or [`Hub::deliver_local_without_id`], never with
    /// [`Hub::deliver_with_id`] or [`Hub::deliver_without_id`], which reach everyone.
    fn publish(&self, hub: &Hub, topic: &str, message: Broadcast) -> usize {
        hub.deliver_local(message.to_topic(topic))
    }

    /// The backplane's state and counters, shown in [`Hub::stats`]. `None` for none.
    fn stats(&self) -> Option<BackplaneStats> {
        None
    }

    /// Whether `id`, newer than anything this node has recorded, may have been issued by
    /// another node and still be on its way here. A client resuming from such an id waits for
    /// the messages after it instead of being told it missed some.
    fn may_arrive(&self, id: u64) -> bool {
        let _ = id;
        false
    }
}

/// A broadcast handed to a [`Backplane`]: a message, or a builder that puts the message's id
/// into its payload ([`Hub::broadcast_with`]), for everyone or for the subscribers of one
/// topic ([`Hub::publish`]). A broadcast is a publish to everyone.
pub struct Broadcast {
    kind: Kind,
    topic: Option<Arc<str>>,
}

enum Kind {
    Ready(Message),
    Build(Box<dyn FnMut(Option<u64>) -> Message + Send>),
}

impl Broadcast {
    /// A broadcast of `message` as it is.
    pub fn ready(message: Message) -> Self {
        Self {
            kind: Kind::Ready(message),
            topic: None,
        }
    }

    /// A broadcast whose payload `build` makes from the message's id. `build` may be called
    /// more than once (a backplane may need a second id); only the last message is sent.
    pub fn build(build: impl FnMut(Option<u64>) -> Message + Send + 'static) -> Self {
        Self {
            kind: Kind::Build(Box::new(build)),
            topic: None,
        }
    }

    /// The same broadcast, for the subscribers of `topic` only.
    pub fn to_topic(mut self, topic: impl Into<Arc<str>>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    pub(crate) fn topic_name(&self) -> Option<Arc<str>> {
        self.topic.clone()
    }

    /// The topic it is for; `None`: everyone.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// Whether the payload depends on the id.
    pub fn needs_id(&self) -> bool {
        matches!(self.kind, Kind::Build(_))
    }

    /// The message to send under `id` (`None`: without one).
    pub fn message(&mut self, id: Option<u64>) -> Message {
        match &mut self.kind {
            Kind::Ready(message) => message.clone(),
            Kind::Build(build) => build(id),
        }
    }
}

impl std::fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Ready(message) => f.debug_tuple("Broadcast::Ready").field(message).finish()?,
            Kind::Build(_) => f.write_str("Broadcast::Build(..)")?,
        }
        match &self.topic {
            Some(topic) => write!(f, " to topic {topic:?}"),
            None => Ok(()),
        }
    }
}

impl From<Message> for Broadcast {
    fn from(message: Message) -> Self {
        Self::ready(message)
    }
}

/// In-memory fan-out to the clients of this process only (a topic publish, through the
/// default [`Backplane::publish`], to the topic's local subscribers).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalOnly;

impl Backplane for LocalOnly {
    fn broadcast(&self, hub: &Hub, message: Broadcast) -> usize {
        hub.deliver_local(message)
    }
}

/// Whether a backplane is connected to the rest of the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackplaneState {
    /// Not yet connected.
    #[default]
    Connecting,
    /// Connected: cross-node delivery works.
    Up,
    /// Connection lost; reconnecting. Local delivery goes on.
    Down,
}

/// A backplane's state and counters, part of [`crate::Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStats {
    /// The connection's state.
    pub state: BackplaneState,
    /// Broadcasts of this node the cluster took.
    pub published: u64,
    /// Broadcasts the cluster did not take (it was down or slow): delivered here only,
    /// without an id, and lost to the other nodes.
    pub publish_failed: u64,
    /// Broadcasts delivered here only because too many were waiting to be published.
    pub dropped: u64,
    /// Broadcasts delivered here only because the backplane was not connected.
    pub local_only: u64,
    /// Broadcasts of other nodes delivered to this node's clients.
    pub received: u64,
    /// Broadcasts fetched from the cluster's history after a reconnect, that this node had
    /// missed while it was cut off.
    pub caught_up: u64,
    /// Catch-ups that found more missed broadcasts than the history keeps: the older ones
    /// never reached this node's clients.
    pub catch_up_gaps: u64,
    /// Messages from the cluster that could not be read.
    pub malformed: u64,
    /// Times the connection was lost.
    pub disconnects: u64,
}

impl BackplaneStats {
    /// All counters zero, in `state`; backplanes fill in the rest.
    pub fn new(state: BackplaneState) -> Self {
        Self {
            state,
            ..Self::default()
        }
    }
}
