//! The subscriber: delivers the cluster's broadcasts (this node's own included) in id order,
//! catches up from the history stream after a (re)subscription, and keeps the connection's
//! state: any step of a (re)subscription that fails is tried again at the next probe, until
//! the backplane is `Up`.

use crate::envelope;
use crate::own::Ledger;
use crate::publish::Target;
use crate::redact::Secret;
use crate::stats::Counters;
use crate::MAX_AHEAD;
use hub_core::{BackplaneState, Broadcast, Local};
use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// What the subscriber works with.
pub(crate) struct Subscriber {
    pub(crate) hub: Local,
    pub(crate) manager: ConnectionManager,
    /// The channel, the history stream and its length.
    pub(crate) target: Target,
    pub(crate) pushes: UnboundedReceiver<PushInfo>,
    pub(crate) node: u64,
    pub(crate) counters: Arc<Counters>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) secret: Secret,
    pub(crate) probe_interval: Duration,
    /// The newest id delivered (or remembered); anything not above it is a duplicate.
    last: u64,
    /// Whether the history was read once (after that, a catch-up delivers what it finds).
    synced: bool,
    /// Whether anything was delivered to this node's clients yet: once something was, a
    /// catch-up delivers what it finds even if the first read of the history failed.
    delivered: bool,
    /// The ids the last catch-up read from the stream: their pushes may still come.
    recent: HashSet<u64>,
}

/// Where a broadcast comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    /// The channel, as it is published.
    Channel,
    /// The history stream, in a catch-up.
    Stream,
    /// The history stream, in the first catch-up: only recorded in the history.
    Remember,
}

impl Subscriber {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        hub: Local,
        manager: ConnectionManager,
        target: Target,
        pushes: UnboundedReceiver<PushInfo>,
        node: u64,
        counters: Arc<Counters>,
        ledger: Arc<Ledger>,
        secret: Secret,
        probe_interval: Duration,
    ) -> Self {
        Self {
            hub,
            manager,
            target,
            pushes,
            node,
            counters,
            ledger,
            secret,
            probe_interval,
            last: 0,
            synced: false,
            delivered: false,
            recent: HashSet::new(),
        }
    }

    /// Runs until the hub is gone. While not `Up`, every probe (re)subscribes and catches
    /// up, so the manager reconnects even when nothing is published and no failed step
    /// leaves the node half connected.
    pub(crate) async fn run(mut self) {
        let mut probe = tokio::time::interval(self.probe_interval);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                push = self.pushes.recv() => {
                    let Some(push) = push else { return };
                    let hub = self.hub.clone();
                    if !hub.is_alive() { return }
                    if push.kind == PushKind::Subscribe {
                        self.catch_up(&hub).await;
                    } else {
                        self.on_push(&hub, push);
                    }
                }
                _ = probe.tick() => {
                    let hub = self.hub.clone();
                    if !hub.is_alive() { return }
                    if self.counters.state() != BackplaneState::Up {
                        self.resubscribe(&hub).await;
                    }
                }
            }
        }
    }

    /// Subscribes (again: harmless when still subscribed) and reads what was missed.
    async fn resubscribe(&mut self, hub: &Local) {
        match self.manager.subscribe(&self.target.channel).await {
            Ok(()) => self.catch_up(hub).await,
            Err(error) => {
                tracing::debug!(error = %self.secret.scrub(&error), "subscribe failed");
                self.counters.set_state(BackplaneState::Down);
            }
        }
    }

    fn on_push(&mut self, hub: &Local, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let payload = push.data.into_iter().nth(1);
                let Some(Value::BulkString(bytes)) = payload else {
                    Counters::bump(&self.counters.malformed);
                    return;
                };
                match envelope::split_id(&bytes) {
                    Some((id, envelope)) => {
                        self.deliver(hub, id, envelope, From::Channel);
                    }
                    None => Counters::bump(&self.counters.malformed),
                }
            }
            PushKind::Disconnection => {
                self.counters.set_state(BackplaneState::Down);
                Counters::bump(&self.counters.disconnects);
            }
            _ => {}
        }
    }

    /// Delivers (or, filling the history of a node that just joined, only remembers) the
    /// broadcast `id` unless it was delivered already. `true` if delivered here.
    fn deliver(&mut self, hub: &Local, id: u64, envelope: &[u8], from: From) -> bool {
        // ids are microseconds of Redis's clock: one far ahead of both it and the newest id
        // is bogus (a crafted message), and taking it would silence everything after it
        let bound = self
            .last
            .max(self.counters.cluster_now())
            .saturating_add(MAX_AHEAD);
        if id > bound {
            tracing::warn!(id, bound, "refused a broadcast with an id far ahead");
            Counters::bump(&self.counters.malformed);
            return false;
        }
        if id <= self.last && (from != From::Channel || self.recent.contains(&id)) {
            return false; // read in a catch-up and published, or published and read
        }
        let Some(envelope::Envelope { node, seq, message }) = envelope::decode(envelope) else {
            Counters::bump(&self.counters.malformed);
            return false;
        };
        let backwards = id <= self.last;
        if backwards {
            // Redis lost the stream and a node that had not seen the newest ids published:
            // delivered without an id (the history cannot take it), and counted
            tracing::warn!(id, last = self.last, "cluster ids went backwards");
            Counters::bump(&self.counters.malformed);
        } else {
            self.last = id;
            self.counters.newest.fetch_max(id, Relaxed);
        }
        let remember_only = from == From::Remember;
        if node == self.node {
            let mut own = self.ledger.lock();
            own.came_back(seq);
            // its publish timed out and it was delivered here then: only recorded now
            let here_already = seq != 0 && own.given_up(seq);
            let deliver = !remember_only && !here_already;
            self.record(hub, id, message, deliver, backwards);
            drop(own);
            self.ledger.notify();
            self.delivered |= deliver;
            deliver
        } else {
            if !remember_only {
                Counters::bump(&self.counters.received);
            }
            self.record(hub, id, message, !remember_only, backwards);
            self.delivered |= !remember_only;
            !remember_only
        }
    }

    fn record(&self, hub: &Local, id: u64, message: hub_core::Message, deliver: bool, no_id: bool) {
        match (deliver, no_id) {
            (true, true) => {
                hub.deliver_without_id(Broadcast::ready(message));
            }
            (true, false) => {
                if let Err(error) = hub.deliver_with_id(None, id, message) {
                    // a duplicate, or an id out of range: never delivered twice nor wrapped
                    tracing::warn!(%error, "broadcast from the cluster refused by the history");
                    Counters::bump(&self.counters.malformed);
                }
            }
            (false, true) => {}
            (false, false) => {
                // a hub without history has nothing to fill
                let _ = hub.remember(None, id, message);
            }
        }
    }

    /// Just (re)subscribed: reads what the history stream holds after the last id delivered
    /// and delivers it before anything newer. On the first subscription the history is only
    /// remembered (this node's clients joined after it), so clients can resume here.
    async fn catch_up(&mut self, hub: &Local) {
        // As many as the stream keeps (history + 2, at least): from the last id itself, if
        // the stream still holds it nothing was trimmed in between; from the start, if fewer
        // came than asked for, nothing older was trimmed.
        let count = self.target.history + 2;
        let start = match self.last {
            0 => "-".to_string(),
            last => format!("{last}-0"),
        };
        let reply = redis::pipe()
            .cmd("TIME")
            .cmd("XREVRANGE")
            .arg(&self.target.stream)
            .arg("+")
            .arg(start)
            .arg("COUNT")
            .arg(count)
            .query_async::<(Vec<String>, Value)>(&mut self.manager)
            .await;
        // Published after the subscription: their pushes came in before the reply.
        let mut live = Vec::new();
        while let Ok(push) = self.pushes.try_recv() {
            live.push(push);
        }
        match reply.map(|(time, value)| (redis_time(&time), entries(&value))) {
            Ok((time, Some(mut entries))) => {
                if let Some(now) = time {
                    self.counters.set_cluster_now(now);
                }
                let found_last =
                    self.last != 0 && entries.last().is_some_and(|(id, _)| *id == self.last);
                if found_last {
                    entries.pop();
                }
                // newer ones but not the last id: it was trimmed, and maybe more with it (a
                // stream Redis lost holds nothing to tell)
                let gap = match self.last {
                    0 => entries.len() == count,
                    _ => !found_last && !entries.is_empty(),
                };
                if gap && self.synced {
                    tracing::warn!("cut off longer than the history: older broadcasts lost");
                    // a client resuming from inside the lost range is told, not left a gap
                    if let Some((oldest, _)) = entries.last() {
                        hub.record_gap(None, *oldest);
                    }
                    Counters::bump(&self.counters.catch_up_gaps);
                }
                self.recent = entries.iter().map(|(id, _)| *id).collect();
                let first_live = live.iter().filter_map(push_id).min().unwrap_or(u64::MAX);
                for (n, (id, envelope)) in entries.into_iter().rev().enumerate() {
                    let from = if !self.synced && !self.delivered && id < first_live {
                        From::Remember
                    } else {
                        From::Stream
                    };
                    if self.deliver(hub, id, &envelope, from) {
                        Counters::bump(&self.counters.caught_up);
                    }
                    if n % 64 == 63 {
                        // let the clients' connections drain their queues between bursts
                        tokio::task::yield_now().await;
                    }
                }
                self.synced = true;
                self.counters.set_state(BackplaneState::Up);
            }
            Ok((_, None)) => {
                Counters::bump(&self.counters.malformed);
                self.counters.set_state(BackplaneState::Up);
            }
            // not Up: the next probe subscribes and reads again
            Err(error) if !matches!(error.kind(), redis::ErrorKind::Server(_)) => {
                let error = self.secret.scrub(&error);
                tracing::debug!(%error, "reading the history failed");
            }
            Err(error) => {
                let error = self.secret.scrub(&error);
                tracing::warn!(%error, stream = %self.target.stream, "cannot read the history");
                self.counters.set_state(BackplaneState::Up);
            }
        }
        for push in live {
            self.on_push(hub, push);
        }
    }
}

/// Microseconds of a `TIME` reply.
fn redis_time(time: &[String]) -> Option<u64> {
    let seconds: u64 = time.first()?.parse().ok()?;
    let micros: u64 = time.get(1)?.parse().ok()?;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

/// The id of a channel message push.
fn push_id(push: &PushInfo) -> Option<u64> {
    match (&push.kind, push.data.get(1)) {
        (PushKind::Message, Some(Value::BulkString(bytes))) => {
            envelope::split_id(bytes).map(|(id, _)| id)
        }
        _ => None,
    }
}

/// `(id, envelope)` of each entry of an XRANGE/XREVRANGE reply.
fn entries(value: &Value) -> Option<Vec<(u64, Vec<u8>)>> {
    let Value::Array(items) = value else {
        return None;
    };
    items
        .iter()
        .map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let (Some(id), Some(Value::Array(fields))) = (parts.first(), parts.get(1)) else {
                return None;
            };
            let id = text(id)?.split('-').next()?.parse().ok()?;
            let envelope = match fields.get(1)? {
                Value::BulkString(bytes) => bytes.clone(),
                _ => return None,
            };
            Some((id, envelope))
        })
        .collect()
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stream_entries() {
        let entry = |id: &str, env: &[u8]| {
            Value::Array(vec![
                Value::BulkString(id.as_bytes().to_vec()),
                Value::Array(vec![
                    Value::BulkString(b"e".to_vec()),
                    Value::BulkString(env.to_vec()),
                ]),
            ])
        };
        let reply = Value::Array(vec![entry("20-0", b"b"), entry("10-0", b"a")]);
        assert_eq!(
            entries(&reply),
            Some(vec![(20, b"b".to_vec()), (10, b"a".to_vec())])
        );
        assert_eq!(entries(&Value::Array(vec![])), Some(vec![]));
        assert_eq!(entries(&Value::Nil), None);
        assert_eq!(entries(&Value::Array(vec![entry("x-0", b"a")])), None);
        let time = |s: &str, us: &str| vec![s.to_string(), us.to_string()];
        assert_eq!(redis_time(&time("2", "5")), Some(2_000_005));
        assert_eq!(redis_time(&time("18446744073709551615", "0")), None);
        assert_eq!(redis_time(&[]), None);
    }
}
