//! Per-connection options given to [`Hub::connect`](crate::Hub::connect).

use crate::handshake::RequestHead;
use crate::topic_name::{validate_topic, TopicError};
use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a connection proves it is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Liveness {
    /// WebSocket: ping every [`HubConfig::ping_interval`](crate::HubConfig::ping_interval),
    /// give up when nothing arrives within the pong wait.
    #[default]
    PingPong,
    /// One-way (Server-Sent Events): the transport's "ping" is a heartbeat every this often
    /// (`None`: no heartbeat); the peer never sends, so there is no silence deadline. A dead
    /// peer shows up as a failed write.
    OneWay(Option<Duration>),
}

/// What kind of client a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientKind {
    /// A WebSocket client.
    WebSocket,
    /// A Server-Sent Events subscriber (receives only).
    Sse,
}

/// Options for one connection.
#[non_exhaustive]
pub struct ConnectOptions {
    /// Metadata for [`Client::data`](crate::Client::data), e.g. the authenticated user.
    pub data: Option<Box<dyn Any + Send + Sync>>,
    /// Resume after this message id (SSE `Last-Event-ID`): the messages the hub's history holds
    /// after it are written first, in order. Ignored without a history.
    pub last_event_id: Option<u64>,
    /// How liveness is checked.
    pub liveness: Liveness,
    /// The kind of client.
    pub kind: ClientKind,
    /// Topics the client is subscribed to from the moment it is connected, validated by
    /// [`Self::topics`].
    pub(crate) topics: Vec<Arc<str>>,
    /// The same topics, for deduplicating in constant time.
    topic_set: HashSet<Arc<str>>,
    /// The peer's address, for the connection's tracing span (adapters set it).
    pub peer: Option<std::net::SocketAddr>,
    /// The route it came in on (the request path), for the connection's tracing span.
    pub route: Option<Arc<str>>,
    /// permessage-deflate as agreed in the upgrade ([`Self::accepted`]); the transport
    /// compresses and inflates with it.
    pub deflate: Option<crate::codec::Deflate>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            data: None,
            last_event_id: None,
            liveness: Liveness::PingPong,
            kind: ClientKind::WebSocket,
            topics: Vec::new(),
            topic_set: HashSet::new(),
            peer: None,
            route: None,
            deflate: None,
        }
    }
}

impl ConnectOptions {
    /// Options for a WebSocket client.
    pub fn websocket() -> Self {
        Self::default()
    }

    /// Options for an SSE subscriber with a heartbeat every `heartbeat`.
    pub fn sse(heartbeat: Option<Duration>) -> Self {
        Self {
            liveness: Liveness::OneWay(heartbeat),
            kind: ClientKind::Sse,
            ..Self::default()
        }
    }

    /// Set [`Self::data`]: the client's metadata, read back with
    /// [`Client::data`](crate::Client::data).
    ///
    /// ```
    /// use hub_core::ConnectOptions;
    ///
    /// struct User(String);
    /// let options = ConnectOptions::websocket().data(User("ada".into()));
    /// let user = options.data.as_ref().and_then(|d| d.downcast_ref::<User>());
    /// assert_eq!(user.map(|u| u.0.as_str()), Some("ada"));
    /// ```
    pub fn data<T: Any + Send + Sync>(mut self, data: T) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// Set [`Self::peer`].
    pub fn peer(mut self, peer: Option<std::net::SocketAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// Set [`Self::route`].
    pub fn route(mut self, route: &str) -> Self {
        self.route = Some(Arc::from(route));
        self
    }

    /// Set [`Self::last_event_id`].
    pub fn last_event_id(mut self, id: Option<u64>) -> Self {
        self.last_event_id = id;
        self
    }

    /// Adds topics the connection is subscribed to from the moment it is registered (under
    /// the same lock: no message published after the connection exists is missed). Only the
    /// first [`HubConfig::max_topics_per_client`](crate::HubConfig::max_topics_per_client)
    /// are subscribed (and resumed); the rest are refused, with one warning.
    ///
    /// ```
    /// use hub_core::{ConnectOptions, TopicError};
    ///
    /// let options = ConnectOptions::sse(None).topics(["news", "ticker:ACME", "news"])?;
    /// assert_eq!(options.initial_topics(), ["news", "ticker:ACME"]);
    /// assert_eq!(ConnectOptions::sse(None).topics([""]).err(), Some(TopicError::Empty));
    /// # Ok::<(), TopicError>(())
    /// ```
    ///
    /// # Errors
    /// The first invalid name ([`validate_topic`](crate::validate_topic)).
    pub fn topics<I>(mut self, topics: I) -> Result<Self, TopicError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for topic in topics {
            let topic = topic.as_ref();
            validate_topic(topic)?;
            if !self.topic_set.contains(topic) {
                let topic: Arc<str> = Arc::from(topic);
                self.topic_set.insert(topic.clone());
                self.topics.push(topic);
            }
        }
        Ok(self)
    }

    /// The topics given to [`Self::topics`], in order, without duplicates.
    pub fn initial_topics(&self) -> Vec<&str> {
        self.topics.iter().map(|t| &**t).collect()
    }

    /// What the upgrade agreed that the connection must honour: its extensions
    /// ([`Accept::deflate`](crate::Accept::deflate)). Adapters call it with the
    /// [`Accept`](crate::Accept) they answer 101 with.
    pub fn accepted(mut self, accept: &crate::Accept) -> Self {
        self.deflate = accept.deflate;
        self
    }

    /// Unless [`Self::last_event_id`] is already set, the request's resume point
    /// ([`RequestHead::last_event_id`]: the `Last-Event-ID` header, else the `last_event_id`
    /// query parameter). Adapters call it with the request they accept.
    pub fn resume_from(mut self, head: &dyn RequestHead) -> Self {
        if self.last_event_id.is_none() {
            self.last_event_id = head.last_event_id();
        }
        self
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("data", &self.data.is_some())
            .field("last_event_id", &self.last_event_id)
            .field("liveness", &self.liveness)
            .field("kind", &self.kind)
            .field("topics", &self.topics)
            .finish()
    }
}
