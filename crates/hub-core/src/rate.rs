//! Per-client inbound rate limits: a token bucket on messages and one on bytes, refilled
//! lazily on arrival (no timer, no task), in the cell-rate form (GCRA): each bucket keeps one
//! instant, the time at which it will be full again.

use std::time::{Duration, Instant};

/// What happens to a message over a client's [`RateLimit`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitPolicy {
    /// Close the connection with 1008 "rate limit"
    /// ([`DisconnectReason::RateLimited`](crate::DisconnectReason::RateLimited)). The default.
    #[default]
    Close,
    /// Drop the message (the handler never sees it) and count it in
    /// [`Stats::rate_limited`](crate::Stats::rate_limited); the connection stays open.
    Drop,
}

/// A limit on what one client may send, set with
/// [`HubConfig::rate_limit`](crate::HubConfig::rate_limit). Off by default.
///
/// ```
/// use hub_core::{HubConfig, RateLimit, RateLimitPolicy};
///
/// // 100 messages a second with bursts of 100, and 64 KiB a second with bursts of 256 KiB;
/// // a client over either is closed with 1008
/// let limit = RateLimit::per_second(100).bytes_per_second(64 * 1024, 256 * 1024);
/// let config = HubConfig::default().rate_limit(limit);
/// assert_eq!(config.rate_limit.unwrap().policy, RateLimitPolicy::Close);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Messages a second, sustained. At least 1.
    pub messages_per_second: u32,
    /// Messages that may arrive at once (the bucket's size). At least 1.
    pub message_burst: u32,
    /// Payload bytes a second, sustained, and the burst in bytes; `None`: no byte limit.
    pub bytes: Option<(u64, u64)>,
    /// What happens to a message over the limit.
    pub policy: RateLimitPolicy,
}

impl RateLimit {
    /// `messages` a second, with a burst of as many, closing a client that goes over.
    pub fn per_second(messages: u32) -> Self {
        Self {
            messages_per_second: messages,
            message_burst: messages,
            bytes: None,
            policy: RateLimitPolicy::Close,
        }
    }

    /// Set [`Self::message_burst`].
    pub fn burst(mut self, messages: u32) -> Self {
        self.message_burst = messages;
        self
    }

    /// Set [`Self::bytes`]: `per_second` sustained, `burst` at once.
    pub fn bytes_per_second(mut self, per_second: u64, burst: u64) -> Self {
        self.bytes = Some((per_second, burst));
        self
    }

    /// Set [`Self::policy`].
    pub fn policy(mut self, policy: RateLimitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The zero setting that makes it unusable, if any.
    pub(crate) fn zero_field(&self) -> Option<&'static str> {
        if self.messages_per_second == 0 {
            return Some("rate_limit.messages_per_second");
        }
        if self.message_burst == 0 {
            return Some("rate_limit.message_burst");
        }
        match self.bytes {
            Some((0, _)) => Some("rate_limit.bytes (per second)"),
            Some((_, 0)) => Some("rate_limit.bytes (burst)"),
            _ => None,
        }
    }
}

/// One token bucket: `per_second` units refill a second, room for `burst` units.
#[derive(Debug)]
struct Bucket {
    /// Units a second (at least 1).
    per_second: u64,
    /// How far ahead of now the bucket may be booked: `burst` units' worth.
    room: Duration,
    /// When the bucket is full again (`None`: full now).
    full_at: Option<Instant>,
}

/// The time `units` take to refill at `per_second`, to the nanosecond (rounded down: at most
/// a nanosecond per booking in the client's favour, however large the rate or the message).
fn refill_time(units: u64, per_second: u64) -> Duration {
    let nanos = u128::from(units) * 1_000_000_000 / u128::from(per_second.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl Bucket {
    fn new(per_second: u64, burst: u64) -> Self {
        Self {
            per_second: per_second.max(1),
            room: refill_time(burst, per_second),
            full_at: None,
        }
    }

    /// When the bucket would be full again after taking `units` now, if they fit.
    fn book(&self, now: Instant, units: u64) -> Option<Instant> {
        let cost = refill_time(units, self.per_second);
        let start = self.full_at.map_or(now, |t| t.max(now));
        let full_at = start.checked_add(cost)?;
        (full_at.saturating_duration_since(now) <= self.room).then_some(full_at)
    }
}

/// A client's buckets; only connections of a hub with a [`RateLimit`] have one.
#[derive(Debug)]
pub(crate) struct Limiter {
    messages: Bucket,
    bytes: Option<Bucket>,
    pub(crate) policy: RateLimitPolicy,
}

impl Limiter {
    pub(crate) fn new(limit: &RateLimit) -> Self {
        Self {
            messages: Bucket::new(limit.messages_per_second.into(), limit.message_burst.into()),
            bytes: limit
                .bytes
                .map(|(per_second, burst)| Bucket::new(per_second, burst)),
            policy: limit.policy,
        }
    }

    /// Takes one message of `len` bytes arriving at `now`: `false` (and nothing taken) when
    /// either bucket has no room for it.
    pub(crate) fn admit(&mut self, now: Instant, len: usize) -> bool {
        let Some(messages) = self.messages.book(now, 1) else {
            return false;
        };
        let bytes = match &self.bytes {
            Some(bucket) => match bucket.book(now, len as u64) {
                Some(full_at) => Some(full_at),
                None => return false,
            },
            None => None,
        };
        self.messages.full_at = Some(messages);
        if let (Some(bucket), Some(full_at)) = (&mut self.bytes, bytes) {
            bucket.full_at = Some(full_at);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(&RateLimit::per_second(10));
        let admitted = (0..15).filter(|_| limiter.admit(t0, 1)).count();
        assert_eq!(admitted, 10, "the burst");
        // 100 ms later one more unit has refilled, not two
        let later = t0 + Duration::from_millis(100);
        assert!(limiter.admit(later, 1));
        assert!(!limiter.admit(later, 1));
        // over one second at exactly the rate, every message passes
        let mut ok = 0;
        for i in 1..=10 {
            ok += usize::from(limiter.admit(later + Duration::from_millis(100 * i), 1));
        }
        assert_eq!(ok, 10);
    }

    #[test]
    fn bytes_are_limited_too_and_a_refused_message_takes_nothing() {
        let t0 = Instant::now();
        let limit = RateLimit::per_second(1000).bytes_per_second(1000, 1000);
        let mut limiter = Limiter::new(&limit);
        assert!(limiter.admit(t0, 600));
        assert!(!limiter.admit(t0, 600), "over the byte burst");
        assert!(limiter.admit(t0, 400), "the refused one took nothing");
        assert!(!limiter.admit(t0, 1));
        assert!(limiter.admit(t0 + Duration::from_millis(1), 1));
    }

    #[test]
    fn rates_past_a_billion_a_second_hold_as_set() {
        // 2 GB/s: once the burst is spent, a millisecond refills 2 MB (a bucket counted in
        // whole nanoseconds per byte held it to 1 GB/s)
        let t0 = Instant::now();
        let limit = RateLimit::per_second(1_000_000).bytes_per_second(2_000_000_000, 2_000_000_000);
        let mut limiter = Limiter::new(&limit);
        assert!(limiter.admit(t0, 2_000_000_000));
        assert!(!limiter.admit(t0, 1_000));
        assert!(limiter.admit(t0 + Duration::from_millis(1), 2_000_000));
        // 300 MB/s is 300 MB/s, not 333 MB/s (3 ns a byte, rounded down from 3.33)
        let limit = RateLimit::per_second(1_000_000).bytes_per_second(300_000_000, 300_000_000);
        let mut limiter = Limiter::new(&limit);
        let later = t0 + Duration::from_secs(1);
        let admitted = (0..200_000).filter(|_| limiter.admit(later, 3_000)).count();
        assert_eq!(admitted, 100_000, "the burst: 300 MB in 3 kB messages");
        // then 10 ms refill 3 MB: a thousand of them, not 1,111
        let refilled = later + Duration::from_millis(10);
        let admitted = (0..2_000)
            .filter(|_| limiter.admit(refilled, 3_000))
            .count();
        assert_eq!(admitted, 1_000);
    }

    #[test]
    fn huge_settings_never_overflow() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(&RateLimit {
            messages_per_second: u32::MAX,
            message_burst: u32::MAX,
            bytes: Some((u64::MAX, u64::MAX)),
            policy: RateLimitPolicy::Drop,
        });
        assert!(limiter.admit(t0, usize::MAX), "saturates, never overflows");
        let later = t0 + Duration::from_secs(10);
        for _ in 0..1000 {
            assert!(limiter.admit(later, 1000));
        }
        assert_eq!(
            RateLimit::per_second(0).zero_field(),
            Some("rate_limit.messages_per_second")
        );
    }
}
