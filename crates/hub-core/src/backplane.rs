//! The seam for cross-node fan-out.

use crate::hub::Hub;
use crate::message::Message;

/// Where every [`Hub::broadcast`] goes. The default, [`LocalOnly`], delivers to this process's
/// clients. A cross-node backplane (e.g. Redis pub/sub) publishes to its transport, delivers
/// locally with [`Hub::deliver_local_with`], and calls it for messages from other nodes.
pub trait Backplane: Send + Sync + 'static {
    /// Fans out the message that `build` makes from its history id (if the hub keeps a
    /// history); returns how many local clients had it queued. `build` is called once.
    fn broadcast(&self, hub: &Hub, build: &mut dyn FnMut(Option<u64>) -> Message) -> usize;
}

/// In-memory fan-out to the clients of this process only.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalOnly;

impl Backplane for LocalOnly {
    fn broadcast(&self, hub: &Hub, build: &mut dyn FnMut(Option<u64>) -> Message) -> usize {
        hub.deliver_local_with(build)
    }
}
