//! Broadcast: every one goes through the backplane (the local delivery is in `local`).

use crate::backplane::{Backplane, Broadcast};
use crate::message::Message;
use crate::state::Hub;
use crate::stats::Counters;
use std::sync::{Arc, PoisonError};

impl Hub {
    /// Replaces the cross-node fan-out (in-memory by default). Every [`Hub::broadcast`] passes
    /// through it.
    ///
    /// The backplane is given the hub's [`Local`](crate::Local) handle
    /// ([`Backplane::attach`]); from then on every topic that gains or loses its last local
    /// subscriber is reported to it ([`Backplane::interest`]).
    pub fn set_backplane(&self, backplane: Arc<dyn Backplane>) {
        {
            // under the topic lock: every interest change after the swap goes to the new one
            let _index = self.inner.topics_mut();
            *self
                .inner
                .backplane
                .write()
                .unwrap_or_else(PoisonError::into_inner) = backplane.clone();
        }
        backplane.attach(self.inner.local());
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
        self.backplane().broadcast(&self.inner.local(), message)
    }

    /// The hub's backplane.
    pub(crate) fn backplane(&self) -> Arc<dyn Backplane> {
        self.inner.backplane()
    }
}
