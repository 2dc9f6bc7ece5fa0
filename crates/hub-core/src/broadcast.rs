//! What a backplane is handed: a message or its builder, for everyone or one topic.

use crate::message::Message;
use std::sync::Arc;

/// A broadcast handed to a [`Backplane`](crate::Backplane): a message, or a builder that puts the message's id
/// into its payload ([`Hub::broadcast_with`](crate::Hub::broadcast_with)), for everyone or for
/// the subscribers of one topic ([`Hub::publish`](crate::Hub::publish)). A broadcast is a
/// publish to everyone.
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
