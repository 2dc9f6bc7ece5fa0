//! The subscriber: delivers the cluster's broadcasts (this node's own included) in id order,
//! catches up from the history stream after a reconnect, and keeps the connection's state.

use crate::envelope;
use crate::publish::Target;
use crate::stats::Counters;
use hub_core::{BackplaneState, Hub, WeakHub};
use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// What the subscriber works with.
pub(crate) struct Subscriber {
    pub(crate) hub: WeakHub,
    pub(crate) manager: ConnectionManager,
    /// The channel, the history stream and its length.
    pub(crate) target: Target,
    pub(crate) pushes: UnboundedReceiver<PushInfo>,
    pub(crate) node: u64,
    pub(crate) counters: Arc<Counters>,
    pub(crate) probe_interval: Duration,
    /// The newest id delivered (or remembered); anything not above it is a duplicate.
    last: u64,
    /// Whether the history was read once (after that, a catch-up delivers what it finds).
    synced: bool,
}

impl Subscriber {
    pub(crate) fn new(
        hub: WeakHub,
        manager: ConnectionManager,
        target: Target,
        pushes: UnboundedReceiver<PushInfo>,
        node: u64,
        counters: Arc<Counters>,
        probe_interval: Duration,
    ) -> Self {
        Self {
            hub,
            manager,
            target,
            pushes,
            node,
            counters,
            probe_interval,
            last: 0,
            synced: false,
        }
    }

    /// Runs until the hub is gone. Probes while unsubscribed or down, so the manager
    /// reconnects even when nothing is published.
    pub(crate) async fn run(mut self) {
        let mut subscribed = false;
        let mut probe = tokio::time::interval(self.probe_interval);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                push = self.pushes.recv() => {
                    let Some(push) = push else { return };
                    let Some(hub) = self.hub.upgrade() else { return };
                    if push.kind == PushKind::Subscribe {
                        self.catch_up(&hub).await;
                    } else {
                        self.on_push(&hub, push);
                    }
                }
                _ = probe.tick() => {
                    if self.hub.upgrade().is_none() {
                        return;
                    }
                    if !subscribed {
                        match self.manager.subscribe(&self.target.channel).await {
                            Ok(()) => subscribed = true,
                            Err(error) => {
                                tracing::debug!(%error, "subscribe failed");
                                self.counters.set_state(BackplaneState::Down);
                            }
                        }
                    } else if self.counters.state() != BackplaneState::Up {
                        // any command makes the manager reconnect (and resubscribe)
                        let _: Result<(), _> =
                            redis::cmd("PING").query_async(&mut self.manager).await;
                    }
                }
            }
        }
    }

    fn on_push(&mut self, hub: &Hub, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let payload = push.data.into_iter().nth(1);
                let Some(Value::BulkString(bytes)) = payload else {
                    Counters::bump(&self.counters.malformed);
                    return;
                };
                match envelope::split_id(&bytes) {
                    Some((id, envelope)) => {
                        self.deliver(hub, id, envelope, false);
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
    /// broadcast `id` unless it was delivered already.
    fn deliver(&mut self, hub: &Hub, id: u64, envelope: &[u8], remember_only: bool) -> bool {
        if id <= self.last {
            return false;
        }
        let Some((from, message)) = envelope::decode(envelope) else {
            Counters::bump(&self.counters.malformed);
            return false;
        };
        self.last = id;
        self.counters.newest.fetch_max(id, Relaxed);
        if remember_only {
            // a hub without history has nothing to fill; an id it refuses is not delivered
            let _ = hub.remember(id, message);
            return false;
        }
        if from != self.node {
            Counters::bump(&self.counters.received);
        }
        if let Err(error) = hub.deliver_with_id(id, message) {
            tracing::warn!(%error, "broadcast from the cluster refused by the history");
            Counters::bump(&self.counters.malformed);
            return false;
        }
        true
    }

    /// Just (re)subscribed: reads what the history stream holds after the last id delivered
    /// and delivers it before anything newer. On the first subscription the history is only
    /// remembered (this node's clients joined after it), so clients can resume here.
    async fn catch_up(&mut self, hub: &Hub) {
        let start = match self.last {
            0 => "-".to_string(),
            last => format!("({last}-0"),
        };
        let reply = redis::cmd("XREVRANGE")
            .arg(&self.target.stream)
            .arg("+")
            .arg(start)
            .arg("COUNT")
            .arg(self.target.history + 1) // one more: whether anything older was missed too
            .query_async::<Value>(&mut self.manager)
            .await;
        // Published after the subscription: their pushes came in before the reply.
        let mut live = Vec::new();
        while let Ok(push) = self.pushes.try_recv() {
            live.push(push);
        }
        match reply.map(|value| entries(&value)) {
            Ok(Some(mut entries)) => {
                if entries.len() > self.target.history {
                    entries.truncate(self.target.history);
                    if self.synced {
                        tracing::warn!("cut off longer than the history: older broadcasts lost");
                        Counters::bump(&self.counters.catch_up_gaps);
                    }
                }
                let first_live = live.iter().filter_map(push_id).min().unwrap_or(u64::MAX);
                for (n, (id, envelope)) in entries.into_iter().rev().enumerate() {
                    let remember_only = !self.synced && id < first_live;
                    if self.deliver(hub, id, &envelope, remember_only) {
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
            Ok(None) => {
                Counters::bump(&self.counters.malformed);
                self.counters.set_state(BackplaneState::Up);
            }
            // not Up: the probe pings, the manager reconnects, resubscribes, and we come back
            Err(error) if error.is_io_error() || error.is_timeout() => {
                tracing::debug!(%error, "reading the history failed");
            }
            Err(error) => {
                tracing::warn!(%error, stream = %self.target.stream, "cannot read the history");
                self.counters.set_state(BackplaneState::Up);
            }
        }
        for push in live {
            self.on_push(hub, push);
        }
    }
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
    }
}
