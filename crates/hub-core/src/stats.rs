//! Cheap atomic counters and their snapshot.

use crate::handshake::Rejection;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a client left the hub. Each reason is counted: see [`Stats::disconnected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed (close frame, or the TCP connection ended).
    PeerClosed,
    /// Evicted: a `send` or `broadcast` found its outbound queue full. Close code 1008.
    SlowConsumer,
    /// Nothing arrived within the pong wait. Close code 1001, best effort.
    PeerSilent,
    /// The socket took no byte for the write wait while writes were pending; dropped without a
    /// close frame.
    WriteStalled,
    /// An inbound message exceeded the size limit. Close code 1009.
    TooBig,
    /// An inbound text message was not UTF-8. Close code 1007.
    InvalidUtf8,
    /// The peer broke the protocol. Close code 1002.
    ProtocolError,
    /// An I/O error on the socket.
    TransportError,
    /// The application called [`Client::close`](crate::Client::close).
    ClosedByServer,
    /// [`Hub::shutdown`](crate::Hub::shutdown). Close code 1001.
    Shutdown,
    /// Over the hub's [`RateLimit`](crate::RateLimit) with the `Close` policy. Close code 1008.
    RateLimited,
}

impl DisconnectReason {
    /// Every reason (for metrics: one label per reason, with [`Stats::disconnected`]). A slice,
    /// not an array, so that a new reason is not a breaking change.
    pub const ALL: &'static [DisconnectReason] = &[
        DisconnectReason::PeerClosed,
        DisconnectReason::SlowConsumer,
        DisconnectReason::PeerSilent,
        DisconnectReason::WriteStalled,
        DisconnectReason::TooBig,
        DisconnectReason::InvalidUtf8,
        DisconnectReason::ProtocolError,
        DisconnectReason::TransportError,
        DisconnectReason::ClosedByServer,
        DisconnectReason::Shutdown,
        DisconnectReason::RateLimited,
    ];

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// A stable snake_case name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::PeerClosed => "peer_closed",
            DisconnectReason::SlowConsumer => "slow_consumer",
            DisconnectReason::PeerSilent => "peer_silent",
            DisconnectReason::WriteStalled => "write_stalled",
            DisconnectReason::TooBig => "too_big",
            DisconnectReason::InvalidUtf8 => "invalid_utf8",
            DisconnectReason::ProtocolError => "protocol_error",
            DisconnectReason::TransportError => "transport_error",
            DisconnectReason::ClosedByServer => "closed_by_server",
            DisconnectReason::Shutdown => "shutdown",
            DisconnectReason::RateLimited => "rate_limited",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_total: AtomicU64,
    pub(crate) disconnects: [AtomicU64; DisconnectReason::ALL.len()],
    pub(crate) messages_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) broadcasts: AtomicU64,
    pub(crate) rejections: [AtomicU64; Rejection::ALL.len()],
    pub(crate) rate_limited: AtomicU64,
    pub(crate) hook_panics: AtomicU64,
}

impl Counters {
    pub(crate) fn disconnect(&self, reason: DisconnectReason) {
        self.disconnects[reason.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn reject(&self, rejection: Rejection) {
        self.rejections[rejection.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// A snapshot of a hub's counters ([`Hub::stats`](crate::Hub::stats)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Clients in the registry now (the same as [`Hub::client_count`](crate::Hub::client_count)).
    pub connected: usize,
    /// Clients ever registered.
    pub connections_total: u64,
    /// Departures by reason: read with [`Stats::disconnected`].
    disconnects: [u64; DisconnectReason::ALL.len()],
    /// Data messages received from clients.
    pub messages_in: u64,
    /// Payload bytes received from clients.
    pub bytes_in: u64,
    /// Data messages handed to client sockets.
    pub messages_out: u64,
    /// Payload bytes handed to client sockets.
    pub bytes_out: u64,
    /// Messages meant for a client that never reached it: those discarded from its queue (and
    /// from a resuming client's replay) when it left before they were written (eviction,
    /// timeouts, peer gone, errors), and the one whose arrival found its queue full, from
    /// `broadcast` and `send` alike. Nothing is dropped without being counted.
    pub dropped: u64,
    /// Calls to [`Hub::broadcast`](crate::Hub::broadcast).
    pub broadcasts: u64,
    /// Upgrades and subscriptions refused, for every reason (bad request, origin, shutdown,
    /// the connection limit); by reason with [`Stats::rejected`].
    pub rejected_upgrades: u64,
    /// Refusals by reason: read with [`Stats::rejected`].
    rejections: [u64; Rejection::ALL.len()],
    /// Inbound messages over a client's [`RateLimit`](crate::RateLimit): dropped (policy
    /// `Drop`) or the one that closed its client (policy `Close`, also counted in
    /// [`Stats::disconnected`] under `RateLimited`).
    pub rate_limited: u64,
    /// Connect and disconnect hooks that panicked (a connect hook's client is closed with
    /// 1011).
    pub hook_panics: u64,
    /// The backplane's state and counters, when it has any (a cross-node one).
    pub backplane: Option<crate::BackplaneStats>,
}

impl Stats {
    /// Departures for one reason.
    ///
    /// ```
    /// use hub_core::{DisconnectReason, Hub};
    ///
    /// let stats = Hub::new().stats();
    /// let total: u64 = DisconnectReason::ALL.iter().map(|r| stats.disconnected(*r)).sum();
    /// assert_eq!(total, 0);
    /// ```
    pub fn disconnected(&self, reason: DisconnectReason) -> u64 {
        self.disconnects[reason.index()]
    }

    /// Upgrades or subscriptions refused for one reason.
    ///
    /// ```
    /// use hub_core::{Hub, Rejection};
    ///
    /// let stats = Hub::new().stats();
    /// assert_eq!(stats.rejected(Rejection::TooManyConnections), 0);
    /// ```
    pub fn rejected(&self, rejection: Rejection) -> u64 {
        self.rejections[rejection.index()]
    }

    /// Clients evicted because their queue was full.
    pub fn evicted(&self) -> u64 {
        self.disconnected(DisconnectReason::SlowConsumer)
    }

    pub(crate) fn read(c: &Counters, connected: usize) -> Self {
        let mut disconnects = [0; DisconnectReason::ALL.len()];
        for (out, counter) in disconnects.iter_mut().zip(&c.disconnects) {
            *out = counter.load(Relaxed);
        }
        let mut rejections = [0; Rejection::ALL.len()];
        for (out, counter) in rejections.iter_mut().zip(&c.rejections) {
            *out = counter.load(Relaxed);
        }
        Self {
            connected,
            connections_total: c.connections_total.load(Relaxed),
            disconnects,
            messages_in: c.messages_in.load(Relaxed),
            bytes_in: c.bytes_in.load(Relaxed),
            messages_out: c.messages_out.load(Relaxed),
            bytes_out: c.bytes_out.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            broadcasts: c.broadcasts.load(Relaxed),
            rejected_upgrades: rejections.iter().sum(),
            rejections,
            rate_limited: c.rate_limited.load(Relaxed),
            hook_panics: c.hook_panics.load(Relaxed),
            backplane: None,
        }
    }
}
