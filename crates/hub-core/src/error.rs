//! Errors.

use crate::message::Message;

/// Why [`Client::send`](crate::Client::send) did not queue a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The client has left the hub (closed, evicted or disconnected). The message is handed
    /// back; nothing was queued. Not retryable for this client.
    #[error("client has left the hub")]
    Closed(Message),
    /// The client's queue was full, so the hub evicted it (close 1008, "slow consumer"), exactly
    /// as a broadcast would. Counted in [`Stats::evicted`](crate::Stats::evicted).
    #[error("client was too slow and has been evicted")]
    Evicted,
}
