//! What a client handle does: send, close, and what it knows of its connection.

use crate::error::SendError;
use crate::message::{CloseCode, CloseFrame, Message};
use crate::options::ClientKind;
use crate::state::{Client, ClientId, CloseRequest, Push};
use crate::stats::DisconnectReason;
use std::any::Any;

impl Client {
    /// The client's id, unique within its hub.
    pub fn id(&self) -> ClientId {
        self.shared.id
    }

    /// Queues a message for this client only. Never blocks.
    ///
    /// # Errors
    /// - [`SendError::Closed`] if the client has left; the message is handed back.
    /// - [`SendError::Evicted`] if its queue was full: the same policy as
    ///   [`Hub::broadcast`](crate::Hub::broadcast), the client is evicted with close code 1008,
    ///   counted in [`Stats::evicted`](crate::Stats::evicted), and this message and the queued
    ///   ones in [`Stats::dropped`](crate::Stats::dropped).
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        match self.shared.push(None, message.clone()) {
            Push::Queued => Ok(()),
            Push::Closed => Err(SendError::Closed(message)),
            Push::Evicted => {
                if let Some(hub) = self.shared.hub.upgrade() {
                    hub.unregister(self.shared.id);
                }
                Err(SendError::Evicted)
            }
        }
    }

    /// Closes the connection with `code` and `reason` after the messages already queued for it
    /// are written. The client leaves the registry at once. Returns `false` if it had already
    /// left.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> bool {
        let requested = self.shared.request_close(CloseRequest {
            frame: CloseFrame::new(code, reason),
            reason: DisconnectReason::ClosedByServer,
            drain: true,
            delay: std::time::Duration::ZERO,
        });
        if requested {
            if let Some(hub) = self.shared.hub.upgrade() {
                hub.unregister(self.shared.id);
            }
        }
        requested
    }

    /// Whether this is a WebSocket client or an SSE subscriber.
    pub fn kind(&self) -> ClientKind {
        self.shared.kind
    }

    /// Whether the client is still in its hub's registry.
    pub fn is_connected(&self) -> bool {
        !self.shared.lock().closed
    }

    /// Messages waiting in this client's outbound queue.
    pub fn queued(&self) -> usize {
        self.shared.lock().data.len()
    }

    /// The metadata attached at upgrade, if it is a `T`.
    ///
    /// ```
    /// # #[allow(dead_code)]
    /// # fn demo(client: &hub_core::Client) {
    /// struct User { name: String }
    /// if let Some(user) = client.data::<User>() {
    ///     println!("{} says hi", user.name);
    /// }
    /// # }
    /// ```
    pub fn data<T: Any>(&self) -> Option<&T> {
        self.shared.data.as_deref().and_then(|d| d.downcast_ref())
    }
}
