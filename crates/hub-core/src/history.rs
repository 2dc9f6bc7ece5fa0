//! A hub's bounded message history, for resuming after a reconnect.

use crate::message::Message;
use std::collections::VecDeque;

/// The largest message id a history takes: 2^53 - 1, the largest integer a JavaScript number
/// holds exactly, so a browser can compare the ids it sees. An id above it is refused.
pub const MAX_ID: u64 = (1 << 53) - 1;

/// Why a history did not take a message under a given id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The id is not above the newest one recorded: a duplicate or out of order. Nothing was
    /// delivered (the message was, or should have been, delivered under its first id).
    #[error("message id {id} is not above the newest recorded ({newest})")]
    NotNewer {
        /// The id given.
        id: u64,
        /// The newest id recorded.
        newest: u64,
    },
    /// The id is above [`MAX_ID`]; nothing was recorded or delivered.
    #[error("message id {id} is above the largest id a history takes ({MAX_ID})")]
    OutOfRange {
        /// The id given.
        id: u64,
    },
    /// The hub keeps no history ([`HubConfig::history`](crate::HubConfig::history) is 0).
    #[error("the hub keeps no history")]
    NoHistory,
}

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

    /// Takes the next id without recording anything here (a topic publish: one id sequence
    /// for the whole hub).
    pub(crate) fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        id
    }

    /// Assigns the next id to `message` and remembers it. Ids never wrap: `record_at` keeps
    /// them at most [`MAX_ID`], far below `u64::MAX`.
    pub(crate) fn record(&mut self, message: &Message) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        if self.ring.len() == self.capacity {
            if let Some((evicted, _)) = self.ring.pop_front() {
                self.forgotten = evicted;
            }
        }
        self.ring.push_back((id, message.clone()));
        id
    }

    /// Remembers `message` under `id`, given elsewhere (ids may be sparse).
    ///
    /// # Errors
    /// `id` is not above the newest, or above [`MAX_ID`]; nothing is recorded.
    pub(crate) fn record_at(&mut self, id: u64, message: &Message) -> Result<(), HistoryError> {
        if id > MAX_ID {
            return Err(HistoryError::OutOfRange { id });
        }
        if id < self.next_id {
            return Err(HistoryError::NotNewer {
                id,
                newest: self.newest(),
            });
        }
        if self.ring.is_empty() {
            // whatever came before the first id seen here is unknown to this history
            self.forgotten = self.forgotten.max(id.saturating_sub(1));
        }
        self.next_id = id;
        self.record(message);
        Ok(())
    }

    /// Messages with ids below `before` that this history has not recorded are lost for good
    /// (a backplane could not fetch them): clients resuming from any id below `before` are told
    /// they missed messages, and what is kept from before the gap is dropped.
    pub(crate) fn gap_before(&mut self, before: u64) {
        if before > MAX_ID {
            return; // not an id this history could ever record
        }
        let last_lost = before.saturating_sub(1);
        if last_lost <= self.forgotten {
            return;
        }
        self.forgotten = last_lost;
        while self.ring.front().is_some_and(|(id, _)| *id <= last_lost) {
            self.ring.pop_front();
        }
        self.next_id = self.next_id.max(before);
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
        assert!(h.record_at(1_000, &Message::text("a")).is_ok());
        assert!(h.record_at(1_007, &Message::text("b")).is_ok());
        assert!(
            h.record_at(1_007, &Message::text("again")).is_err(),
            "not twice"
        );
        assert!(
            h.record_at(999, &Message::text("older")).is_err(),
            "not out of order"
        );
        assert!(h.record_at(2_000, &Message::text("c")).is_ok());
        assert_eq!(h.newest(), 2_000);
        assert_eq!(ids(&h.since(1_000)), vec![1_007, 2_000]);
        assert!(h.since(1_000).missed.is_none());
        // an id between two recorded ones (never issued) still resumes after it
        assert_eq!(ids(&h.since(1_003)), vec![1_007, 2_000]);
        assert!(h.record_at(2_001, &Message::text("d")).is_ok());
        // 1_000 left the ring, but a client that saw it has missed nothing
        assert_eq!(ids(&h.since(1_000)), vec![1_007, 2_000, 2_001]);
        assert!(h.since(1_000).missed.is_none());
        let old = h.since(999);
        assert_eq!(ids(&old), vec![1_007, 2_000, 2_001]);
        assert_eq!(old.missed.map(|m| m.first_available), Some(Some(1_007)));
        // a history that never recorded anything: resuming from 0 misses nothing
        assert!(History::new(3).since(0).missed.is_none());
        // before the first id this history saw: unknown, so reported as missed (499 is right
        // before it, so nothing is missing)
        let mut late = History::new(3);
        assert!(late.record_at(500, &Message::text("x")).is_ok());
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

    #[test]
    #[allow(clippy::unwrap_used)]
    fn ids_near_the_top_are_refused_and_never_wrap() {
        let mut h = History::new(3);
        for id in [u64::MAX, u64::MAX - 1, MAX_ID + 1] {
            assert_eq!(
                h.record_at(id, &Message::text("x")),
                Err(HistoryError::OutOfRange { id })
            );
        }
        h.record_at(MAX_ID, &Message::text("top")).unwrap();
        // a local broadcast after the largest id still gets an increasing id
        assert_eq!(h.record(&Message::text("next")), MAX_ID + 1);
        assert!(h.record(&Message::text("and next")) > MAX_ID + 1);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_resume_inside_a_gap_is_told_it_missed_messages() {
        let mut h = History::new(10);
        for id in 1..=5 {
            h.record_at(id, &Message::text("before")).unwrap();
        }
        // ids 6..=99 never reached this node
        h.gap_before(100);
        for id in 100..=102 {
            h.record_at(id, &Message::text("after")).unwrap();
        }
        for last in [3, 5, 50, 98] {
            let r = h.since(last);
            assert_eq!(
                r.missed.map(|m| m.first_available),
                Some(Some(100)),
                "from {last}"
            );
            assert_eq!(ids(&r), vec![100, 101, 102]);
        }
        assert!(
            h.since(99).missed.is_none(),
            "99 is right before the gap's end"
        );
        assert_eq!(ids(&h.since(100)), vec![101, 102]);
        assert!(h.since(100).missed.is_none());
    }
}
