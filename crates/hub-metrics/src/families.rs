//! The metric families: one table row per exposed value, read from a hub's [`Snapshot`].
//!
//! Adding a `Stats` field is one row here (and one row in the README's table).

use hub_core::{BackplaneState, BackplaneStats, DisconnectReason, Hub, Rejection, Stats};
use prometheus_client::metrics::MetricType;

/// What is read from one hub at scrape time.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) stats: Stats,
    /// [`Hub::topic_count`].
    pub(crate) topics: usize,
    /// Subscriptions of connected clients, summed over the hub's clients.
    pub(crate) subscriptions: usize,
    /// [`Hub::topic_history_size`]: topics with a history, messages kept across them.
    pub(crate) topic_history: (usize, usize),
}

impl Snapshot {
    pub(crate) fn read(hub: &Hub) -> Self {
        let topics = hub.topic_count();
        // No counter of subscriptions in hub-core: sum them per client, and only when some
        // topic has a subscriber (a hub without topics pays nothing).
        let subscriptions = if topics == 0 {
            0
        } else {
            hub.clients().iter().map(|c| c.topics().len()).sum()
        };
        Self {
            stats: hub.stats(),
            topics,
            subscriptions,
            topic_history: hub.topic_history_size(),
        }
    }

    fn backplane(&self) -> Option<&BackplaneStats> {
        self.stats.backplane.as_ref()
    }
}

/// Counter or gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up; the encoder adds `_total` to the sample name.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    pub(crate) fn metric_type(self) -> MetricType {
        match self {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
        }
    }
}

/// How a family's samples are read from a snapshot.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Read {
    /// One sample per hub.
    Value(fn(&Snapshot) -> u64),
    /// One sample per hub with a backplane; none for a hub without one.
    Backplane(fn(&BackplaneStats) -> u64),
    /// One sample per value of the label named first.
    Labelled(&'static str, fn(&Snapshot) -> Vec<(&'static str, u64)>),
}

impl Read {
    /// The samples of one hub: label (name, value) if any, and the value.
    pub(crate) fn samples(
        self,
        snapshot: &Snapshot,
    ) -> Vec<(Option<(&'static str, &'static str)>, u64)> {
        match self {
            Read::Value(read) => vec![(None, read(snapshot))],
            Read::Backplane(read) => snapshot
                .backplane()
                .map(|b| (None, read(b)))
                .into_iter()
                .collect(),
            Read::Labelled(label, read) => read(snapshot)
                .into_iter()
                .map(|(value, n)| (Some((label, value)), n))
                .collect(),
        }
    }
}

/// One metric family.
#[derive(Debug)]
pub(crate) struct Family {
    /// The family's name; the encoder adds the unit (`_bytes`), then `_total` to a counter's
    /// samples.
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    /// In bytes: OpenMetrics says `# UNIT <name>_bytes bytes`.
    pub(crate) bytes: bool,
    pub(crate) read: Read,
}

const fn family(name: &'static str, kind: Kind, help: &'static str, read: Read) -> Family {
    Family {
        name,
        help,
        kind,
        bytes: false,
        read,
    }
}

const fn counter(name: &'static str, help: &'static str, read: fn(&Snapshot) -> u64) -> Family {
    family(name, Kind::Counter, help, Read::Value(read))
}

const fn gauge(name: &'static str, help: &'static str, read: fn(&Snapshot) -> u64) -> Family {
    family(name, Kind::Gauge, help, Read::Value(read))
}

/// A counter in bytes; `name` is without the `_bytes` the encoder appends.
const fn bytes(name: &'static str, help: &'static str, read: fn(&Snapshot) -> u64) -> Family {
    Family {
        bytes: true,
        ..counter(name, help, read)
    }
}

/// A backplane counter: no sample for a hub without a backplane.
const fn backplane(
    name: &'static str,
    help: &'static str,
    read: fn(&BackplaneStats) -> u64,
) -> Family {
    family(name, Kind::Counter, help, Read::Backplane(read))
}

fn u(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn disconnects(s: &Snapshot) -> Vec<(&'static str, u64)> {
    DisconnectReason::ALL
        .iter()
        .map(|r| (r.as_str(), s.stats.disconnected(*r)))
        .collect()
}

fn rejections(s: &Snapshot) -> Vec<(&'static str, u64)> {
    Rejection::ALL
        .iter()
        .map(|r| (r.as_str(), s.stats.rejected(*r)))
        .collect()
}

/// The states a backplane reports, with their label values.
const STATES: [(BackplaneState, &str); 3] = [
    (BackplaneState::Connecting, "connecting"),
    (BackplaneState::Up, "up"),
    (BackplaneState::Down, "down"),
];

/// One sample per state, 1 for the current one (a hub without a backplane has none).
fn backplane_state(s: &Snapshot) -> Vec<(&'static str, u64)> {
    match s.backplane() {
        Some(b) => STATES
            .iter()
            .map(|(state, name)| (*name, u64::from(b.state == *state)))
            .collect(),
        None => Vec::new(),
    }
}

/// Every family, in exposition order. Names follow Prometheus conventions: `_total` on every
/// counter (added by the encoder), the unit in the name.
pub(crate) const FAMILIES: &[Family] = &[
    gauge("hub_connected_clients", "Clients connected now.", |s| u(s.stats.connected)),
    counter("hub_connections", "Clients ever connected.", |s| s.stats.connections_total),
    family(
        "hub_disconnects",
        Kind::Counter,
        "Clients that left, by reason.",
        Read::Labelled("reason", disconnects),
    ),
    counter("hub_evictions", "Clients evicted because their queue was full (the same as hub_disconnects_total{reason=\"slow_consumer\"}).", |s| s.stats.evicted()),
    counter("hub_messages_received", "Data messages received from clients.", |s| s.stats.messages_in),
    bytes("hub_received", "Payload bytes received from clients.", |s| s.stats.bytes_in),
    counter("hub_messages_sent", "Data messages handed to client sockets.", |s| s.stats.messages_out),
    bytes("hub_sent", "Payload bytes handed to client sockets.", |s| s.stats.bytes_out),
    counter("hub_dropped_messages", "Messages meant for a client that never reached it (queue full, or discarded when it left).", |s| s.stats.dropped),
    counter("hub_broadcasts", "Broadcasts and topic publishes made on this hub.", |s| s.stats.broadcasts),
    family(
        "hub_rejected_upgrades",
        Kind::Counter,
        "Upgrades and subscriptions refused, by reason (bad request, origin, shutdown, connection limit).",
        Read::Labelled("reason", rejections),
    ),
    counter("hub_rate_limited_messages", "Inbound messages over a client's rate limit (dropped, or the one that closed its client).", |s| s.stats.rate_limited),
    counter("hub_hook_panics", "Connect and disconnect hooks that panicked.", |s| s.stats.hook_panics),
    gauge("hub_topics", "Topics with at least one local subscriber.", |s| u(s.topics)),
    gauge("hub_topic_subscriptions", "Topic subscriptions of connected clients.", |s| u(s.subscriptions)),
    gauge("hub_topic_histories", "Topics that keep a history.", |s| u(s.topic_history.0)),
    gauge("hub_topic_history_messages", "Messages kept across the topic histories.", |s| u(s.topic_history.1)),
    family(
        "hub_backplane_up",
        Kind::Gauge,
        "1 while the backplane is connected to the cluster, else 0 (hubs with a backplane only).",
        Read::Backplane(|b| u64::from(b.state == BackplaneState::Up)),
    ),
    family(
        "hub_backplane_state",
        Kind::Gauge,
        "The backplane's state: 1 for the current one (hubs with a backplane only).",
        Read::Labelled("state", backplane_state),
    ),
    backplane("hub_backplane_published", "Broadcasts of this node the cluster took.", |b| b.published),
    backplane("hub_backplane_publish_failures", "Broadcasts the cluster did not take: delivered here only, lost to the other nodes.", |b| b.publish_failed),
    backplane("hub_backplane_dropped", "Broadcasts delivered here only because too many were waiting to be published.", |b| b.dropped),
    backplane("hub_backplane_local_only", "Broadcasts delivered here only because the backplane was not connected.", |b| b.local_only),
    backplane("hub_backplane_received", "Broadcasts of other nodes delivered to this node's clients.", |b| b.received),
    backplane("hub_backplane_caught_up", "Missed broadcasts fetched from the cluster's history after a reconnect.", |b| b.caught_up),
    backplane("hub_backplane_catch_up_gaps", "Catch-ups that found more missed broadcasts than the history keeps.", |b| b.catch_up_gaps),
    backplane("hub_backplane_malformed", "Messages from the cluster that could not be read.", |b| b.malformed),
    backplane("hub_backplane_disconnects", "Times the backplane's connection was lost.", |b| b.disconnects),
];
