//! The seam for cross-node fan-out.

pub use crate::broadcast::Broadcast;
use crate::local::Local;

/// Where every [`Hub::broadcast`](crate::Hub::broadcast) and
/// [`Hub::publish`](crate::Hub::publish) goes. The default, [`LocalOnly`], delivers to this
/// process's clients with ids from the hub's own history. A cross-node backplane (e.g. Redis)
/// carries the message to every node, its own included, and delivers it there with the id it
/// was given across the cluster ([`Local::deliver_with_id`]), so every node's history holds the
/// same ids in the same order and a client can resume on any node.
///
/// A backplane delivers through the [`Local`] handle it is given ([`Backplane::attach`], and
/// with each call): the application's [`Hub`](crate::Hub) has no way to bypass the history or
/// the backplane.
///
/// Broadcasts to everyone and topic publishes come through separate methods, so a backplane
/// that knows nothing of topics never sends a topic's message to everyone: [`Backplane::publish`]
/// delivers to the topic's local subscribers unless a backplane overrides it.
pub trait Backplane: Send + Sync + 'static {
    /// Called by [`Hub::set_backplane`](crate::Hub::set_backplane) with the hub's handle, for
    /// the backplane's own tasks (what arrives from the cluster). The topics that already have
    /// local subscribers are in [`Local::topics`]; later changes come through
    /// [`Backplane::interest`].
    fn attach(&self, local: Local) {
        let _ = local;
    }

    /// Fans out `message` to everyone (never a topic publish: those go to
    /// [`Backplane::publish`]); returns how many local clients had it queued now (0 when local
    /// delivery waits for the message to come back from the cluster).
    fn broadcast(&self, local: &Local, message: Broadcast) -> usize;

    /// Fans out `message` to the subscribers of `topic` (a valid name; `message`'s
    /// [`Broadcast::topic`] is `topic`); returns how many local subscribers had it queued now.
    ///
    /// The default delivers to this process's subscribers of the topic, with an id from the
    /// hub's own history ([`Local::deliver`]), as [`LocalOnly`] does.
    fn publish(&self, local: &Local, topic: &str, message: Broadcast) -> usize {
        local.deliver(message.to_topic(topic))
    }

    /// `topic` gained its first local subscriber (`true`) or lost its last (`false`): a
    /// cluster backplane receives a topic's traffic only while some local client wants it.
    ///
    /// Called in order, under the hub's topic lock: it must not block and must not call into
    /// the hub (hand it to the backplane's task). The same state may be reported twice (a
    /// backplane attached while topics change): treat it as a set.
    fn interest(&self, topic: &str, interested: bool) {
        let _ = (topic, interested);
    }

    /// Whether a topic that gains local interest waits for [`Local::catch_up`] before its
    /// subscribers get their due: a cluster backplane that starts receiving a topic only when
    /// a local client wants it says `true`, and then, once it receives the topic's live
    /// traffic, reads the topic's recent history from the cluster and hands it to
    /// [`Local::catch_up`]. Subscribers that join meanwhile wait too, each with its own resume
    /// point. And when the topic loses its last local subscriber, its local history is dropped
    /// at once (no longer kept up to date, it would give resumers a silent gap).
    /// Default: `false`.
    fn catches_up(&self) -> bool {
        false
    }

    /// The backplane's state and counters, shown in [`Hub::stats`](crate::Hub::stats).
    /// `None` for none.
    fn stats(&self) -> Option<BackplaneStats> {
        None
    }

    /// Whether `id`, newer than anything this node has recorded for `topic` (`None`: the
    /// broadcasts to everyone), may have been issued by another node and still be on its way
    /// here. A client resuming from such an id waits for the messages after it instead of
    /// being told it missed some.
    fn may_arrive(&self, topic: Option<&str>, id: u64) -> bool {
        let _ = (topic, id);
        false
    }
}

/// In-memory fan-out to the clients of this process only (a topic publish, through the
/// default [`Backplane::publish`], to the topic's local subscribers).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalOnly;

impl Backplane for LocalOnly {
    fn broadcast(&self, local: &Local, message: Broadcast) -> usize {
        local.deliver(message)
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
