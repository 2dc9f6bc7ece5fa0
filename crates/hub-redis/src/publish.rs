//! The publisher: gives broadcasts and topic publishes their cluster-wide ids, in batches,
//! from one task. Every broadcast and publish of this node passes through it, in the order it
//! was made: what Redis does not take, and everything while the backplane is not `Up`, it
//! delivers to this node's clients itself, in that same order. A batch goes to Redis in runs
//! of consecutive messages for the same audience (everyone, or one topic), one script call
//! each: every call touches the keys of one hash slot only.

use crate::interest::Interest;
use crate::own::Ledger;
use crate::redact::Secret;
use crate::stats::Counters;
use crate::{envelope, keys, MAX_AHEAD};
use hub_core::{BackplaneState, Broadcast, Local};
use redis::aio::ConnectionManager;
use redis::Script;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Gives each broadcast of a batch (all for everyone, or all for one topic) the next id of its
/// stream, keeps it in the stream (capped at the history length + 2) and publishes
/// `<id> <envelope>` on its channel — atomically, so ids reach every subscriber in increasing
/// order. Ids are microseconds of Redis's clock, read for each message, or one more than the
/// last id of the stream or of what the publishing node has seen (ARGV[3]), whichever is
/// larger: they keep increasing across a restart of a Redis that kept nothing, even when the
/// ids before it ran ahead of Redis's clock, and stay exact in a JavaScript number until 2255.
/// Reading the clock for each message (not once per batch) makes ids follow the order Redis
/// runs the publishes in, across streams: see the crate docs, "Ids".
///
/// KEYS[1]: the stream. ARGV[1]: the channel, ARGV[2]: the stream's length, ARGV[3]: the
/// newest id the node has seen, ARGV[4]: the stream's idle expiry in milliseconds (0: none),
/// then pairs: a proposed id (0: any) and an envelope. A proposed id (the payload holds it)
/// not above the last id, or more than a minute ahead of Redis's clock, stops the batch
/// there. Returns `{accepted, last id, Redis's clock}`.
const SCRIPT: &str = r"
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now = clock()
local last = tonumber(ARGV[3])
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top > 0 then last = math.max(last, tonumber(string.match(top[1][1], '^%d+'))) end
local accepted = 0
for i = 5, #ARGV - 1, 2 do
  if i > 5 then now = clock() end
  local id = tonumber(ARGV[i])
  if id == 0 then
    id = math.max(now, last + 1)
  elseif id <= last or id > now + 60000000 then
    break
  end
  local s = string.format('%.0f', id)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], s .. '-0', 'e', ARGV[i + 1])
  redis.call('PUBLISH', ARGV[1], s .. ' ' .. ARGV[i + 1])
  last = id
  accepted = accepted + 1
end
if accepted > 0 and tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return {accepted, string.format('%.0f', last), string.format('%.0f', now)}
";

/// Most broadcasts in one script call.
const MAX_BATCH: usize = 256;
/// Most envelope bytes in one script call (a single larger message still goes alone).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Tries for a batch whose proposed ids keep losing to other nodes'.
const MAX_ATTEMPTS: u32 = 16;
/// Longest wait for this node's published broadcasts to come back before it delivers a later
/// one itself (they are normally in the subscriber's queue already).
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// Where the publisher writes, and the subscriber reads.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The hub's channel; topic channels are named after it ([`keys`]).
    pub(crate) channel: String,
    /// The hub's history stream.
    pub(crate) stream: String,
    /// Messages a stream keeps: history + 2 (see [`Publisher::send`]).
    pub(crate) history: usize,
    /// A topic stream's idle expiry, in milliseconds (at least 1).
    pub(crate) topic_ttl_ms: u64,
}

impl Target {
    /// Entries a stream keeps, at least: two more than the history, so a node cut off for
    /// history + 1 messages still finds its last id in the stream, and knows it missed
    /// nothing older. At most what Redis takes as a count (a signed 64-bit integer): a
    /// history of `usize::MAX` ("keep everything") neither overflows nor gets refused.
    pub(crate) fn stream_len(&self) -> usize {
        const REDIS_MAX: usize = i64::MAX as usize;
        self.history.saturating_add(2).min(REDIS_MAX)
    }

    /// Channel, stream and idle expiry (0: none) of an audience: everyone, or a topic.
    fn keys(&self, topic: Option<&str>) -> (String, String, u64) {
        match topic {
            None => (self.channel.clone(), self.stream.clone(), 0),
            Some(topic) => {
                let channel = keys::topic_channel(&self.channel, topic);
                let stream = keys::topic_stream(&channel);
                (channel, stream, self.topic_ttl_ms)
            }
        }
    }
}

/// What the publisher works with.
pub(crate) struct Publisher {
    pub(crate) local: Local,
    pub(crate) manager: ConnectionManager,
    pub(crate) target: Target,
    pub(crate) inbox: mpsc::Receiver<Broadcast>,
    pub(crate) node: u64,
    pub(crate) counters: Arc<Counters>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) interest: Arc<Interest>,
    pub(crate) secret: Secret,
    /// The newest sequence number Redis took that comes back to this node (a broadcast, or
    /// a publish to a topic this node subscribes to).
    accepted: u64,
}

/// A broadcast and its sequence number.
type Batch = VecDeque<(u64, Broadcast)>;

impl Publisher {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        local: Local,
        manager: ConnectionManager,
        target: Target,
        inbox: mpsc::Receiver<Broadcast>,
        node: u64,
        counters: Arc<Counters>,
        ledger: Arc<Ledger>,
        interest: Arc<Interest>,
        secret: Secret,
    ) -> Self {
        Self {
            local,
            manager,
            target,
            inbox,
            node,
            counters,
            ledger,
            interest,
            secret,
            accepted: 0,
        }
    }

    /// Publishes what the hub broadcast, in order, in batches of what waited; ends when the
    /// backplane is gone.
    pub(crate) async fn run(mut self) {
        let script = Script::new(SCRIPT);
        let mut seq: u64 = 0;
        let mut batch = Batch::new();
        while let Some(first) = self.inbox.recv().await {
            seq = seq.saturating_add(1);
            batch.push_back((seq, first));
            while batch.len() < MAX_BATCH {
                match self.inbox.try_recv() {
                    Ok(next) => {
                        seq = seq.saturating_add(1);
                        batch.push_back((seq, next));
                    }
                    Err(_) => break,
                }
            }
            let mut rejections = 0;
            while !batch.is_empty() {
                if self.counters.state() != BackplaneState::Up {
                    let n = batch.len();
                    self.here(&mut batch, n, false, |c| &c.local_only).await;
                    break;
                }
                match self.send(&script, &mut batch).await {
                    Ok(true) => rejections = 0,
                    Ok(false) => {
                        rejections += 1;
                        if rejections >= MAX_ATTEMPTS {
                            let n = batch.len();
                            self.here(&mut batch, n, false, |c| &c.publish_failed).await;
                        }
                    }
                    Err((taken, error)) => {
                        tracing::debug!(error = %self.secret.scrub(&error), "publish failed");
                        if !matches!(error.kind(), redis::ErrorKind::Server(_)) {
                            // no reply in time or no connection: until it is back, deliver
                            // here at once rather than waiting out a timeout per batch
                            self.counters.set_state(BackplaneState::Down);
                        }
                        // it may still run (a reply timeout does not stop Redis): the
                        // subscriber will know these were delivered here already
                        self.here(&mut batch, taken, true, |c| &c.publish_failed)
                            .await;
                    }
                }
            }
        }
    }

    /// Sends the first run of `batch` (its first messages for the same audience) to the
    /// script; drains what Redis took. `Ok(false)` when some proposed ids lost to another
    /// node's; `Err` with how many were sent.
    async fn send(
        &mut self,
        script: &Script,
        batch: &mut Batch,
    ) -> Result<bool, (usize, redis::RedisError)> {
        let topic: Option<Arc<str>> = batch.front().and_then(|(_, b)| b.topic().map(Arc::from));
        let (channel, stream, ttl) = self.target.keys(topic.as_deref());
        let mut invocation = script.key(&stream);
        let floor = self.counters.newest.load(Relaxed);
        invocation
            .arg(&channel)
            .arg(self.target.stream_len())
            .arg(floor)
            .arg(ttl);
        let mut proposal = floor;
        let (mut taken, mut bytes) = (0, 0);
        while let Some((seq, broadcast)) = batch.get_mut(taken) {
            if (taken > 0 && bytes >= MAX_BATCH_BYTES) || broadcast.topic() != topic.as_deref() {
                break;
            }
            let id = if broadcast.needs_id() {
                proposal = self.counters.cluster_now().max(proposal.saturating_add(1));
                proposal
            } else {
                0
            };
            let Some(message) = build(broadcast, (id != 0).then_some(id)) else {
                // its builder panicked: that broadcast is lost, the backplane goes on
                batch.remove(taken);
                continue;
            };
            let envelope = envelope::encode(self.node, *seq, &message);
            bytes += envelope.len();
            invocation.arg(id).arg(envelope.as_ref());
            taken += 1;
        }
        if taken == 0 {
            return Ok(true); // every builder of the run panicked
        }
        let (accepted, newest, now) = invocation
            .invoke_async::<(usize, String, String)>(&mut self.manager)
            .await
            .map_err(|error| (taken, error))?;
        let accepted = accepted.min(taken);
        if let Ok(now) = now.parse::<u64>() {
            self.counters.set_cluster_now(now);
        }
        if let Ok(newest) = newest.parse::<u64>() {
            // not from a stream someone filled with ids far ahead
            if newest <= self.counters.cluster_now().saturating_add(MAX_AHEAD) {
                self.counters.newest.fetch_max(newest, Relaxed);
            }
        }
        Counters::add(&self.counters.published, accepted);
        let comes_back = topic.as_deref().is_none_or(|t| self.interest.has(t));
        if let Some((seq, _)) = accepted.checked_sub(1).and_then(|i| batch.get(i)) {
            if comes_back {
                self.accepted = *seq;
            }
        }
        batch.drain(..accepted);
        if accepted < taken {
            tracing::debug!(accepted, taken, "proposed ids lost to another node's");
        }
        Ok(accepted == taken)
    }

    /// Delivers the first `n` of `batch` to this node's clients (everyone, or a topic's
    /// subscribers), without an id, after what Redis took before them came back. `sent`:
    /// they went to Redis and may have run; those that came back already are not delivered
    /// again, the others are recorded as given up.
    async fn here(
        &self,
        batch: &mut Batch,
        n: usize,
        sent: bool,
        counter: fn(&Counters) -> &AtomicU64,
    ) {
        self.ledger.settle(self.accepted, SETTLE_LIMIT).await;
        let mut own = self.ledger.lock();
        for (seq, mut broadcast) in batch.drain(..n.min(batch.len())) {
            if sent && seq <= own.back {
                Counters::bump(&self.counters.published);
                continue;
            }
            if sent {
                own.give_up(seq);
            }
            Counters::bump(counter(&self.counters));
            if let Some(message) = build(&mut broadcast, None) {
                let message = Broadcast::ready(message);
                self.local.deliver_without_id(match broadcast.topic() {
                    Some(topic) => message.to_topic(topic),
                    None => message,
                });
            }
        }
    }
}

/// Builds a broadcast's message. A `broadcast_with` builder runs on the backplane's task: one
/// that panics loses its own broadcast (logged), never the task that serves every other one.
fn build(broadcast: &mut Broadcast, id: Option<u64>) -> Option<hub_core::Message> {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| broadcast.message(id)));
    if built.is_err() {
        tracing::error!("a broadcast_with builder panicked: that broadcast is dropped");
    }
    built.ok()
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn a_huge_history_gives_a_stream_length_redis_takes() {
        let target = |history| Target {
            channel: "c".into(),
            stream: "s".into(),
            history,
            topic_ttl_ms: 1,
        };
        assert_eq!(target(64).stream_len(), 66);
        // not wrapped to 1 (a stream trimmed to one entry), nor past Redis's integers
        assert_eq!(target(usize::MAX).stream_len(), i64::MAX as usize);
        assert_eq!(target(i64::MAX as usize).stream_len(), i64::MAX as usize);
    }
}
