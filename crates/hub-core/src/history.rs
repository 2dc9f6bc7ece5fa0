//! A hub's bounded message history, for resuming after a reconnect.

use crate::message::Message;
use std::collections::VecDeque;

/// What a client resuming after `last_event_id` is owed.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Messages after the client's last id, oldest first.
    pub(crate) messages: VecDeque<(u64, Message)>,
    /// Set when messages between the client's last id and the replay were lost for good.
    pub(crate) missed: Option<Missed>,
}

/// The notice a resuming client gets when the history no longer reaches back to its last id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missed {
    /// The id the client said it saw last.
    pub last_event_id: u64,
    /// The oldest id still available (the replay starts there), if any.
    pub first_available: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct History {
    capacity: usize,
    next_id: u64,
    /// Messages up to this id may be gone: evicted from the ring, or (for ids given
    /// elsewhere) issued before this history started.
    forgotten: u64,
    ring: VecDeque<(u64, Message)>,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_id: 1,
            forgotten: 0,
            ring: VecDeque::with_capacity(capacity.min(1024)),
        }
    }

    /// The id the next recorded message gets.
    pub(crate) fn peek_id(&self) -> u64 {
        self.next_id
    }

    /// The newest id recorded (0: none yet).
    pub(crate) fn newest(&self) -> u64 {
        self.next_id - 1
    }

    /// Assigns the next id to `message` and remembers it.
    pub(crate) fn record(&mut self, message: &Message) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.ring.len() == self.capacity {
            if let Some((evicted, _)) = self.ring.pop_front() {
                self.forgotten = evicted;
            }
        }
        self.ring.push_back((id, message.clone()));
        id
    }

    /// Remembers `message` under `id`, given elsewhere (ids may be sparse); `false` (and
    /// nothing recorded) when `id` is not above the newest.
    pub(crate) fn record_at(&mut self, id: u64, message: &Message) -> bool {
        if id < self.next_id || id == u64::MAX {
            return false;
        }
        if self.ring.is_empty() {
            // whatever came before the first id seen here is unknown to this history
            self.forgotten = self.forgotten.max(id - 1);
        }
        self.next_id = id;
        self.record(message);
        true
    }

    /// What a client that last saw `last` has missed.
    pub(crate) fn since(&self, last: u64) -> Replay {
        let first_available = self.ring.front().map(|(id, _)| *id);
        if last > self.newest() || last < self.forgotten {
            // too old, or an id this hub never issued (e.g. from before a restart)
            return Replay {
                messages: self.ring.iter().cloned().collect(),
                missed: Some(Missed {
                    last_event_id: last,
                    first_available,
                }),
            };
        }
        let skip = self.ring.partition_point(|(id, _)| *id <= last);
        Replay {
            messages: self.ring.iter().skip(skip).cloned().collect(),
            missed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &Replay) -> Vec<u64> {
        r.messages.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn replay_is_exactly_what_came_after() {
        let mut h = History::new(5);
        for i in 0..8 {
            h.record(&Message::text(format!("m{i}")));
        }
        // ids 1..=8, ring holds 4..=8
        assert_eq!(ids(&h.since(8)), Vec::<u64>::new());
        assert!(h.since(8).missed.is_none());
        assert_eq!(ids(&h.since(5)), vec![6, 7, 8]);
        assert_eq!(ids(&h.since(3)), vec![4, 5, 6, 7, 8]);
        assert!(
            h.since(3).missed.is_none(),
            "3 is right before the oldest: nothing lost"
        );
        let old = h.since(1);
        assert_eq!(ids(&old), vec![4, 5, 6, 7, 8]);
        assert_eq!(
            old.missed,
            Some(Missed {
                last_event_id: 1,
                first_available: Some(4)
            })
        );
        let future = h.since(100);
        assert_eq!(future.missed.map(|m| m.last_event_id), Some(100));
        assert_eq!(ids(&future), vec![4, 5, 6, 7, 8]);
    }

    #[test]
    fn ids_given_elsewhere_are_sparse_and_increasing() {
        let mut h = History::new(3);
        assert!(h.record_at(1_000, &Message::text("a")));
        assert!(h.record_at(1_007, &Message::text("b")));
        assert!(!h.record_at(1_007, &Message::text("again")), "not twice");
        assert!(
            !h.record_at(999, &Message::text("older")),
            "not out of order"
        );
        assert!(h.record_at(2_000, &Message::text("c")));
        assert_eq!(h.newest(), 2_000);
        assert_eq!(ids(&h.since(1_000)), vec![1_007, 2_000]);
        assert!(h.since(1_000).missed.is_none());
        // an id between two recorded ones (never issued) still resumes after it
        assert_eq!(ids(&h.since(1_003)), vec![1_007, 2_000]);
        assert!(h.record_at(2_001, &Message::text("d")));
        // 1_000 left the ring, but a client that saw it has missed nothing
        assert_eq!(ids(&h.since(1_000)), vec![1_007, 2_000, 2_001]);
        assert!(h.since(1_000).missed.is_none());
        let old = h.since(999);
        assert_eq!(ids(&old), vec![1_007, 2_000, 2_001]);
        assert_eq!(old.missed.map(|m| m.first_available), Some(Some(1_007)));
        // before the first id this history saw: unknown, so reported as missed
        assert!(History::new(3).since(0).missed.is_none());
        let mut late = History::new(3);
        late.record_at(500, &Message::text("x"));
        assert!(late.since(499).missed.is_none());
        assert!(late.since(400).missed.is_some());
    }

    #[test]
    fn empty_history() {
        let h = History::new(5);
        assert!(h.since(0).messages.is_empty());
        assert!(h.since(0).missed.is_none());
        assert!(h.since(7).missed.is_some());
    }
}
