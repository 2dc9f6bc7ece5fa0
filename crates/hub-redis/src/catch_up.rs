//! Catching up from a stream after a (re)subscription: what a line missed while its channel
//! was not delivering, read after the subscription took effect (so nothing falls between the
//! read and the live messages), delivered before anything newer.

use crate::line::{Ctx, From, Line};
use crate::stats::Counters;
use crate::subscribe::{channel_of, push_id, Subscriber, Topic};
use hub_core::BackplaneState;
use redis::aio::ConnectionManager;
use redis::{RedisResult, Value};

/// Redis's clock (µs) and the newest entries of a stream, newest first (`None`: unreadable).
type Read = (Option<u64>, Option<Vec<(u64, Vec<u8>)>>);

/// Reads Redis's clock and the newest `count` entries of `stream` from id `start` on
/// (inclusive; 0: from the beginning).
async fn read(
    manager: &mut ConnectionManager,
    stream: &str,
    start: u64,
    count: usize,
) -> RedisResult<Read> {
    let start = match start {
        0 => "-".to_string(),
        start => format!("{start}-0"),
    };
    let (time, value) = redis::pipe()
        .cmd("TIME")
        .cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg(start)
        .arg("COUNT")
        .arg(count)
        .query_async::<(Vec<String>, Value)>(manager)
        .await?;
    Ok((redis_time(&time), entries(&value)))
}

impl Subscriber {
    /// Just (re)subscribed to the hub's channel: reads what the hub's stream holds after the
    /// last id delivered and delivers it before anything newer. On the first subscription
    /// the history is only remembered (this node's clients joined after it), so clients can
    /// resume here.
    pub(crate) async fn catch_up_hub(&mut self) {
        // As many as the stream keeps (history + 2, at least): from the last id itself, if
        // the stream still holds it nothing was trimmed in between; from the start, if fewer
        // came than asked for, nothing older was trimmed.
        let count = self.target.stream_len();
        let last = self.hub.last;
        let reply = read(&mut self.manager, &self.target.stream, last, count).await;
        // Published after the subscription: their pushes came before the reply (redis-rs
        // forwards them from a task of its own, so some may still be on their way: those
        // are recognised as read, see `Recent`)
        self.drain_pushes();
        match reply {
            Ok((time, Some(entries))) => {
                if let Some(now) = time {
                    self.counters.set_cluster_now(now);
                }
                let hub_channel = self.target.channel.as_bytes();
                let first_live = self
                    .backlog
                    .iter()
                    .filter(|push| channel_of(push) == Some(hub_channel))
                    .filter_map(push_id)
                    .min()
                    .unwrap_or(u64::MAX);
                let remember = !self.hub.synced && !self.hub.delivered;
                let from = |id: u64| {
                    if remember && id < first_live {
                        From::Remember
                    } else {
                        From::Stream
                    }
                };
                let (entries, gap) = after_last(&self.hub, entries, count);
                replay(&self.ctx, &mut self.hub, None, entries, gap, from).await;
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
    }

    /// Just subscribed to a topic's channel (or joined again while subscribed): hands the
    /// topic's history to the hub if its subscribers wait for it, else (a resubscription)
    /// delivers what the topic's stream holds after the last id delivered.
    pub(crate) async fn catch_up_topic(&mut self, channel: &str) {
        let Some(topic) = self.topics.get(channel) else {
            return;
        };
        if !self.interest.has(&topic.name) {
            return; // left meanwhile: the leave is on its way to this task
        }
        let stream = topic.stream.clone();
        let start = match topic.waiting {
            Some(_) => 0,
            None if topic.line.last > 0 => topic.line.last,
            None => topic.line.from,
        };
        let count = self.target.stream_len();
        let reply = read(&mut self.manager, &stream, start, count).await;
        self.drain_pushes();
        // still there: interest changes are made by this same task, not meanwhile
        let Some(topic) = self.topics.get_mut(channel) else {
            return;
        };
        match reply {
            Ok((time, Some(mut entries))) => {
                if let Some(now) = time {
                    self.counters.set_cluster_now(now);
                }
                let name = topic.name.clone();
                let full = entries.len() == count;
                match topic.waiting.take() {
                    Some(since) if topic.line.synced => {
                        // Left and joined again while this line kept delivering: what it
                        // delivered between the join and now reached the waiting subscribers
                        // already (their join did not hold it back), and the hub no longer
                        // has the history from before. So they get nothing more from before
                        // (a resuming one a missed notice: conservative, never a duplicate),
                        // and what came after this line's last id goes to every subscriber.
                        let last = topic.line.last;
                        let cut = entries.partition_point(|(id, _)| *id > last);
                        let older = entries.split_off(cut);
                        let found_last =
                            last != 0 && older.first().is_some_and(|(id, _)| *id == last);
                        let gap = !entries.is_empty() && !found_last && (last != 0 || full);
                        first(&self.ctx, topic, since, Vec::new(), false);
                        let line = &mut topic.line;
                        replay(&self.ctx, line, Some(&name), entries, gap, |_| From::Stream).await;
                    }
                    Some(since) => first(&self.ctx, topic, since, entries, !full),
                    None => {
                        let (entries, gap) = after_last(&topic.line, entries, count);
                        let line = &mut topic.line;
                        replay(&self.ctx, line, Some(&name), entries, gap, |_| From::Stream).await;
                    }
                }
            }
            Ok((_, None)) => {
                Counters::bump(&self.counters.malformed);
                release(&self.ctx, topic);
            }
            Err(error) if !matches!(error.kind(), redis::ErrorKind::Server(_)) => {
                let error = self.secret.scrub(&error);
                tracing::debug!(%error, "reading a topic's history failed");
                // the next probe subscribes and reads again; meanwhile local delivery
                self.counters.set_state(BackplaneState::Down);
                self.release_waiting();
            }
            Err(error) => {
                let error = self.secret.scrub(&error);
                tracing::warn!(%error, %stream, "cannot read a topic's history");
                release(&self.ctx, topic);
            }
        }
    }

    /// Lets every topic whose subscribers wait for a catch-up go on without one (Redis is
    /// not there to give it): local delivery goes on; what they missed is delivered when the
    /// topic is read again after the reconnect.
    pub(crate) fn release_waiting(&mut self) {
        for topic in self.topics.values_mut() {
            release(&self.ctx, topic);
        }
    }
}

/// Hands a topic's history to the hub for the subscribers that wait for it: `entries`
/// (newest first), read after the topic's channel went live; `complete` if they reach back to
/// the topic's first message (the stream held fewer than it keeps: it was never trimmed; or
/// it expired, idle for its time to live, and was made again: see the crate docs).
fn first(
    ctx: &Ctx,
    topic: &mut Topic,
    since: u64,
    mut entries: Vec<(u64, Vec<u8>)>,
    complete: bool,
) {
    entries.reverse();
    let messages = ctx.take_entries(&mut topic.line, entries);
    ctx.local.catch_up(&topic.name, since, messages, complete);
}

/// Lets `topic`'s waiting subscribers go on with what the hub has (nothing from Redis); from
/// then on the topic owes them what was published after `since`.
fn release(ctx: &Ctx, topic: &mut Topic) {
    if let Some(since) = topic.waiting.take() {
        ctx.local.catch_up(&topic.name, since, Vec::new(), false);
        topic.line.synced = true;
        if topic.line.last == 0 {
            topic.line.from = topic.line.from.max(since);
        }
    }
}

/// Of a read of `line`'s stream from its last id on (`entries`, newest first): those after
/// the last id, and whether some may be missing before them (the last id was not there).
fn after_last(
    line: &Line,
    mut entries: Vec<(u64, Vec<u8>)>,
    count: usize,
) -> (Vec<(u64, Vec<u8>)>, bool) {
    let found_last = line.last != 0 && entries.last().is_some_and(|(id, _)| *id == line.last);
    if found_last {
        entries.pop();
    }
    // newer ones but not the last id: it was trimmed, and maybe more with it (a stream Redis
    // lost holds nothing to tell); without a last id, a full read may have left some out
    let gap = match line.last {
        0 => entries.len() == count,
        _ => !found_last && !entries.is_empty(),
    };
    (entries, gap)
}

/// Delivers `entries` (newest first, all after `line`'s last id), oldest first; with `gap`
/// (the stream no longer reaches back to the last id), counts it and records it in the
/// history first.
async fn replay(
    ctx: &Ctx,
    line: &mut Line,
    topic: Option<&str>,
    entries: Vec<(u64, Vec<u8>)>,
    gap: bool,
    from: impl Fn(u64) -> From,
) {
    if gap && line.synced {
        tracing::warn!(
            ?topic,
            "cut off longer than the history: older messages lost"
        );
        // a client resuming from inside the lost range is told, not left a gap
        if let Some((oldest, _)) = entries.last() {
            ctx.local.record_gap(topic, *oldest);
        }
        Counters::bump(&ctx.counters.catch_up_gaps);
    }
    line.recent.add(entries.iter().map(|(id, _)| *id));
    for (n, (id, envelope)) in entries.into_iter().rev().enumerate() {
        if ctx.deliver(line, topic, id, &envelope, from(id)) {
            Counters::bump(&ctx.counters.caught_up);
        }
        if n % 64 == 63 {
            // let the clients' connections drain their queues between bursts
            tokio::task::yield_now().await;
        }
    }
    line.synced = true;
}

/// Microseconds of a `TIME` reply.
fn redis_time(time: &[String]) -> Option<u64> {
    let seconds: u64 = time.first()?.parse().ok()?;
    let micros: u64 = time.get(1)?.parse().ok()?;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
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
