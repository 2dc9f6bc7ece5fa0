//! Delivering what comes from Redis, line by line: a line is the hub's channel and stream
//! (broadcasts to everyone) or one topic's. Each line keeps the newest id it delivered, so a
//! message read from its stream and also pushed on its channel is delivered once.

use crate::envelope;
use crate::own::Ledger;
use crate::stats::Counters;
use crate::MAX_AHEAD;
use hub_core::{Broadcast, Local, Message};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What delivering needs, shared by every line.
pub(crate) struct Ctx {
    pub(crate) local: Local,
    pub(crate) node: u64,
    pub(crate) counters: Arc<Counters>,
    pub(crate) ledger: Arc<Ledger>,
}

/// One line's progress.
#[derive(Debug, Default)]
pub(crate) struct Line {
    /// The newest id delivered (or remembered); anything not above it is a duplicate.
    pub(crate) last: u64,
    /// With no id delivered yet: the cluster's time from which this line owes its
    /// subscribers what they missed (a topic joined while Redis was away).
    pub(crate) from: u64,
    /// Whether the stream was read once (after that, a catch-up delivers what it finds).
    pub(crate) synced: bool,
    /// Whether anything was delivered to this node's clients yet: once something was, a
    /// catch-up delivers what it finds even if the first read of the history failed.
    pub(crate) delivered: bool,
    /// Ids read from the stream by catch-ups whose pushes may still come.
    pub(crate) recent: Recent,
}

/// Ids a catch-up read from a stream, in order: the pushes of those published after the
/// subscription may come after the read's reply (redis-rs forwards pushes from a task of its
/// own), and are duplicates, not messages whose id went backwards. Pushes of one channel come
/// in id order, so each one retires the ids up to its own: this keeps at most what the last
/// reads found beyond the last push.
#[derive(Debug, Default)]
pub(crate) struct Recent(VecDeque<u64>);

impl Recent {
    /// Adds the ids of a read.
    pub(crate) fn add(&mut self, ids: impl IntoIterator<Item = u64>) {
        let mut all: Vec<u64> = self.0.drain(..).chain(ids).collect();
        all.sort_unstable();
        all.dedup();
        self.0 = all.into();
    }

    /// A push of `id` came: whether a read had it (a duplicate). Retires the ids up to it.
    pub(crate) fn take(&mut self, id: u64) -> bool {
        let read = self.0.binary_search(&id).is_ok();
        while self.0.front().is_some_and(|front| *front <= id) {
            self.0.pop_front();
        }
        read
    }
}

/// Where a message comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum From {
    /// The channel, as it is published.
    Channel,
    /// The stream, in a catch-up.
    Stream,
    /// The hub's stream, in the first catch-up: only recorded in the history.
    Remember,
}

impl Ctx {
    /// The bound above which an id on `line` is bogus: a minute ahead of both Redis's clock
    /// and the newest id (a crafted message; taking it would silence everything after it).
    fn bound(&self, line: &Line) -> u64 {
        line.last
            .max(self.counters.cluster_now())
            .saturating_add(MAX_AHEAD)
    }

    /// Delivers (or, filling the history of a node that just joined, only remembers) message
    /// `id` of `line` (`topic`: `None` for the hub's) unless it was delivered already. `true`
    /// if delivered here.
    pub(crate) fn deliver(
        &self,
        line: &mut Line,
        topic: Option<&str>,
        id: u64,
        envelope: &[u8],
        from: From,
    ) -> bool {
        let bound = self.bound(line);
        if id > bound {
            tracing::warn!(id, bound, "refused a message with an id far ahead");
            Counters::bump(&self.counters.malformed);
            return false;
        }
        // read in a catch-up and published, or published and read
        let read = from == From::Channel && line.recent.take(id);
        if id <= line.last && (from != From::Channel || read) {
            return false;
        }
        let Some(envelope::Envelope { node, seq, message }) = envelope::decode(envelope) else {
            Counters::bump(&self.counters.malformed);
            return false;
        };
        let backwards = id <= line.last;
        if backwards {
            // Redis lost the stream and a node that had not seen the newest ids published:
            // delivered without an id (the history cannot take it), and counted
            tracing::warn!(id, last = line.last, "cluster ids went backwards");
            Counters::bump(&self.counters.malformed);
        } else {
            line.last = id;
            self.counters.newest.fetch_max(id, Relaxed);
        }
        let remember_only = from == From::Remember;
        if node == self.node {
            let mut own = self.ledger.lock();
            own.came_back(seq);
            // its publish timed out and it was delivered here then: only recorded now
            let here_already = seq != 0 && own.given_up(seq);
            let deliver = !remember_only && !here_already;
            self.record(topic, id, message, deliver, backwards);
            drop(own);
            self.ledger.notify();
            line.delivered |= deliver;
            deliver
        } else {
            if !remember_only {
                Counters::bump(&self.counters.received);
            }
            self.record(topic, id, message, !remember_only, backwards);
            line.delivered |= !remember_only;
            !remember_only
        }
    }

    fn record(&self, topic: Option<&str>, id: u64, message: Message, deliver: bool, no_id: bool) {
        match (deliver, no_id) {
            (true, true) => {
                let message = Broadcast::ready(message);
                self.local.deliver_without_id(match topic {
                    Some(topic) => message.to_topic(topic),
                    None => message,
                });
            }
            (true, false) => {
                if let Err(error) = self.local.deliver_with_id(topic, id, message) {
                    // a duplicate, or an id out of range: never delivered twice nor wrapped
                    tracing::warn!(%error, "message from the cluster refused by the history");
                    Counters::bump(&self.counters.malformed);
                }
            }
            (false, true) => {}
            (false, false) => {
                // a hub without history has nothing to fill
                let _ = self.local.remember(topic, id, message);
            }
        }
    }

    /// The messages of `entries` (oldest first) a topic's first catch-up hands to the hub:
    /// decoded, those with a bogus id refused (counted); `line` moves to the newest. This
    /// node's own are marked as come back (their pushes are deduplicated like the others).
    pub(crate) fn take_entries(
        &self,
        line: &mut Line,
        entries: Vec<(u64, Vec<u8>)>,
    ) -> Vec<(u64, Message)> {
        let bound = self.bound(line);
        let mut out: Vec<(u64, Message)> = Vec::with_capacity(entries.len());
        let mut own = self.ledger.lock();
        for (id, envelope) in entries {
            let newer = out.last().is_none_or(|(last, _)| id > *last);
            let decoded = envelope::decode(&envelope).filter(|_| id > 0 && id <= bound && newer);
            let Some(envelope::Envelope { node, seq, message }) = decoded else {
                Counters::bump(&self.counters.malformed);
                continue;
            };
            if node == self.node {
                own.came_back(seq);
            }
            out.push((id, message));
        }
        drop(own);
        self.ledger.notify();
        line.recent.add(out.iter().map(|(id, _)| *id));
        if let Some((newest, _)) = out.last() {
            line.last = line.last.max(*newest);
            self.counters.newest.fetch_max(*newest, Relaxed);
        }
        line.synced = true;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn a_push_retires_the_reads_up_to_it() {
        let mut recent = Recent::default();
        recent.add([5, 3, 9]);
        recent.add([7, 9]);
        assert!(!recent.take(2), "never read");
        assert!(recent.take(5));
        assert!(!recent.take(3), "retired by 5: pushes come in id order");
        assert!(recent.take(9));
        assert!(recent.0.is_empty());
    }
}
