//! Topic names and what a subscribe can answer: the vocabulary the index, the options and the
//! API share.

/// The longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// Why a topic was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic name is empty.
    #[error("a topic name must not be empty")]
    Empty,
    /// The topic name is longer than [`MAX_TOPIC_LEN`] bytes.
    #[error("a topic name is at most {MAX_TOPIC_LEN} bytes; this one has {len}")]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The topic name contains a control character.
    #[error("a topic name must not contain control characters (found one at byte {at})")]
    ControlCharacter {
        /// Where the first one is, in bytes.
        at: usize,
    },
    /// The client already has [`HubConfig::max_topics_per_client`](crate::HubConfig::max_topics_per_client)
    /// topics.
    #[error("the client is already subscribed to {limit} topics, the most it may have")]
    TooManyTopics {
        /// The limit.
        limit: usize,
    },
    /// The client has left the hub (or the hub is shutting down).
    #[error("the client has left the hub")]
    ClientGone,
}

/// What [`Client::subscribe`](crate::Client::subscribe) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subscribed {
    /// The client joined the topic.
    Joined,
    /// The client was already subscribed; nothing changed.
    Already,
}

/// Checks a topic name: not empty, at most [`MAX_TOPIC_LEN`] bytes, no control character.
///
/// ```
/// use hub_core::{validate_topic, TopicError};
///
/// assert!(validate_topic("ticker:ACME").is_ok());
/// assert_eq!(validate_topic(""), Err(TopicError::Empty));
/// assert_eq!(validate_topic("a\nb"), Err(TopicError::ControlCharacter { at: 1 }));
/// assert_eq!(validate_topic(&"x".repeat(257)), Err(TopicError::TooLong { len: 257 }));
/// ```
///
/// # Errors
/// The [`TopicError`] that says what is wrong with the name.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: topic.len() });
    }
    if let Some((at, _)) = topic.char_indices().find(|(_, c)| c.is_control()) {
        return Err(TopicError::ControlCharacter { at });
    }
    Ok(())
}
