//! A topic's catch-up: what a backplane that starts receiving a topic only when a local client
//! wants it hands over once the topic's live traffic flows here (see
//! [`Local::catch_up`](crate::Local::catch_up)).

use crate::history::{Missed, Replay};
use crate::message::Message;
use crate::state::HubInner;
use crate::state::{ClientId, Push};
use std::collections::VecDeque;
use std::sync::PoisonError;

impl HubInner {
    /// See [`Local::catch_up`](crate::Local::catch_up).
    pub(crate) fn catch_up(
        &self,
        topic: &str,
        since: u64,
        entries: Vec<(u64, Message)>,
        complete: bool,
    ) -> usize {
        let mut evicted: Vec<ClientId> = Vec::new();
        let mut queued = 0;
        {
            // the usual order: history, topic histories, then the index; held until every
            // waiting subscriber's replay is queued, so no live message comes between
            let history = self
                .history
                .as_ref()
                .map(|h| h.lock().unwrap_or_else(PoisonError::into_inner));
            let mut histories = history.as_ref().and_then(|_| self.topic_history());
            let mut index = self.topics_mut();
            let Some(entry) = index.topic_mut(topic) else {
                return 0; // nobody here wants it any more
            };
            if let Some(histories) = histories.as_mut() {
                if !complete {
                    // what the cluster no longer holds is lost: resumers are told so
                    let first = entries
                        .first()
                        .map_or(since.saturating_add(1), |(id, _)| *id);
                    histories.gap_before_topic(topic, first);
                }
            }
            let newest = entries.last().map_or(0, |(id, _)| *id);
            let (specials, members) = entry.special_and_members();
            for (client, special) in specials {
                let Some(waiting) = special.waiting.take() else {
                    continue;
                };
                let Some(shared) = members.get(client) else {
                    continue;
                };
                let start = waiting.unwrap_or(since);
                let replay = owed(&entries, start, waiting.is_some() && !complete);
                special.after = special.after.max(newest);
                if let Some(missed) = replay.missed {
                    let mut q = shared.lock();
                    if !q.closed {
                        q.missed = Some(missed);
                    }
                }
                for (id, message) in replay.messages {
                    match shared.push(Some(id), message) {
                        Push::Queued => queued += 1,
                        Push::Evicted => {
                            evicted.push(shared.id);
                            break;
                        }
                        Push::Closed => break,
                    }
                }
            }
            entry.awaiting = false;
            if let Some(histories) = histories.as_mut() {
                for (id, message) in &entries {
                    // ids at or below the topic's newest are already here (a duplicate)
                    let _ = histories.record_at(topic, *id, message, &*index);
                }
            }
        }
        for id in evicted {
            self.unregister(id);
            tracing::debug!(client = %id, "evicted slow consumer");
        }
        queued
    }
}

/// What a subscriber waiting since `start` is owed from `entries`; with `may_be_gap`, whether
/// the entries reach back to it decides the `missed` notice.
fn owed(entries: &[(u64, Message)], start: u64, may_be_gap: bool) -> Replay {
    let skip = entries.partition_point(|(id, _)| *id <= start);
    let first_available = entries.first().map(|(id, _)| *id);
    // the entries reach back to `start` if one of them is at or before it
    let missed = (may_be_gap && skip == 0 && start > 0).then_some(Missed {
        last_event_id: start,
        first_available,
    });
    Replay {
        messages: entries[skip..].iter().cloned().collect::<VecDeque<_>>(),
        missed,
    }
}
