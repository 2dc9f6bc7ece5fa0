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
    ring: VecDeque<(u64, Message)>,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_id: 1,
            ring: VecDeque::with_capacity(capacity.min(1024)),
        }
    }

    /// The id the next recorded message gets.
    pub(crate) fn peek_id(&self) -> u64 {
        self.next_id
    }

    /// Assigns the next id to `message` and remembers it.
    pub(crate) fn record(&mut self, message: &Message) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back((id, message.clone()));
        id
    }

    /// What a client that last saw `last` has missed.
    pub(crate) fn since(&self, last: u64) -> Replay {
        let newest = self.next_id - 1;
        let oldest = self.ring.front().map(|(id, _)| *id);
        let all = || self.ring.iter().cloned().collect::<VecDeque<_>>();
        if last > newest {
            // An id this hub never issued (e.g. from before a restart): everything may be lost.
            return Replay {
                messages: all(),
                missed: Some(Missed {
                    last_event_id: last,
                    first_available: oldest,
                }),
            };
        }
        match oldest {
            Some(oldest) if last + 1 < oldest => Replay {
                messages: all(),
                missed: Some(Missed {
                    last_event_id: last,
                    first_available: Some(oldest),
                }),
            },
            Some(oldest) => {
                let skip = usize::try_from(last + 1 - oldest).unwrap_or(usize::MAX);
                Replay {
                    messages: self.ring.iter().skip(skip).cloned().collect(),
                    missed: None,
                }
            }
            None if last < newest => Replay {
                messages: VecDeque::new(),
                missed: Some(Missed {
                    last_event_id: last,
                    first_available: None,
                }),
            },
            None => Replay::default(),
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
    fn empty_history() {
        let h = History::new(5);
        assert!(h.since(0).messages.is_empty());
        assert!(h.since(0).missed.is_none());
        assert!(h.since(7).missed.is_some());
    }
}
