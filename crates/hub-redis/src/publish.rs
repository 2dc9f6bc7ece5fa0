//! The publisher: gives broadcasts their cluster-wide ids, in batches, from one task.

use crate::stats::Counters;
use crate::{envelope, now_micros};
use hub_core::{Broadcast, WeakHub};
use redis::aio::ConnectionManager;
use redis::Script;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Gives each broadcast of a batch the cluster's next id, keeps it in the history stream and
/// publishes `<id> <envelope>` — atomically, so ids reach every subscriber in increasing order.
/// Ids are microseconds of Redis's clock (or the last id + 1): they keep increasing across a
/// restart of a Redis that kept nothing, and stay exact in a JavaScript number until 2255.
///
/// KEYS[1]: the stream. ARGV[1]: the channel, ARGV[2]: history length, then pairs: a proposed
/// id (0: any) and an envelope. A proposed id (the payload holds it) not above the last id
/// stops the batch there. Returns `{accepted, last id}`.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = 0
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top > 0 then last = tonumber(string.match(top[1][1], '^%d+')) end
local accepted = 0
for i = 3, #ARGV - 1, 2 do
  local id = tonumber(ARGV[i])
  if id == 0 then
    id = math.max(now, last + 1)
  elseif id <= last then
    break
  end
  local s = string.format('%.0f', id)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], s .. '-0', 'e', ARGV[i + 1])
  redis.call('PUBLISH', ARGV[1], s .. ' ' .. ARGV[i + 1])
  last = id
  accepted = accepted + 1
end
return {accepted, string.format('%.0f', last)}
";

/// Most broadcasts in one script call.
const MAX_BATCH: usize = 256;
/// Most envelope bytes in one script call (a single larger message still goes alone).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Tries for a batch whose proposed ids keep losing to other nodes'.
const MAX_ATTEMPTS: u32 = 16;

/// Where the publisher writes.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) channel: String,
    pub(crate) stream: String,
    pub(crate) history: usize,
}

/// Publishes what the hub broadcast, in order, in batches of what waited.
pub(crate) async fn publish(
    hub: WeakHub,
    mut manager: ConnectionManager,
    target: Target,
    mut inbox: mpsc::Receiver<Broadcast>,
    node: u64,
    counters: Arc<Counters>,
) {
    let script = Script::new(SCRIPT);
    let mut batch = VecDeque::new();
    while let Some(first) = inbox.recv().await {
        batch.push_back(first);
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(next) => batch.push_back(next),
                Err(_) => break,
            }
        }
        let mut rejections = 0;
        while !batch.is_empty() {
            let mut invocation = script.key(&target.stream);
            // one more than the history: a catch-up can tell when it missed even older ones
            invocation.arg(&target.channel).arg(target.history + 1);
            let mut proposal = counters.newest.load(Relaxed);
            let (mut taken, mut bytes) = (0, 0);
            for broadcast in &mut batch {
                if taken > 0 && bytes >= MAX_BATCH_BYTES {
                    break;
                }
                let id = if broadcast.needs_id() {
                    proposal = now_micros().max(proposal + 1);
                    proposal
                } else {
                    0
                };
                let message = broadcast.message((id != 0).then_some(id));
                let envelope = envelope::encode(node, &message);
                bytes += envelope.len();
                invocation.arg(id).arg(envelope.as_ref());
                taken += 1;
            }
            match invocation
                .invoke_async::<(usize, String)>(&mut manager)
                .await
            {
                Ok((accepted, newest)) => {
                    Counters::add(&counters.published, accepted);
                    if let Ok(newest) = newest.parse::<u64>() {
                        counters.newest.fetch_max(newest, Relaxed);
                    }
                    batch.drain(..accepted.min(batch.len()));
                    if accepted < taken {
                        tracing::debug!(accepted, taken, "proposed ids lost to another node's");
                        rejections += 1;
                        if rejections >= MAX_ATTEMPTS {
                            fail(&hub, &mut batch, &counters);
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "publish failed");
                    fail(&hub, &mut batch, &counters);
                }
            }
        }
    }
}

/// The cluster did not take `batch`: this node's clients still get it, without an id.
fn fail(hub: &WeakHub, batch: &mut VecDeque<Broadcast>, counters: &Counters) {
    Counters::add(&counters.publish_failed, batch.len());
    let hub = hub.upgrade();
    for mut broadcast in batch.drain(..) {
        if let Some(hub) = &hub {
            hub.deliver_without_id(broadcast.message(None));
        }
    }
}
