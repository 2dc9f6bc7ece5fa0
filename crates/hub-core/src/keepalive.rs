//! The keepalive as a clock-driven state machine.
//!
//! Time is passed in; nothing here reads a clock. The driver feeds it events
//! ([`Keepalive::on_receive`], [`Keepalive::on_write_blocked`], [`Keepalive::on_write_done`]),
//! sleeps until [`Keepalive::poll_timeout`], then calls [`Keepalive::handle_timeout`].
//! `handle_timeout` is idempotent: calling it early, late or twice is harmless.
//!
//! ```
//! use hub_core::keepalive::{Keepalive, Timeout};
//! use std::time::{Duration, Instant};
//!
//! let t0 = Instant::now();
//! let s = Duration::from_secs;
//! let mut ka = Keepalive::new(s(54), s(60), s(10), t0);
//! assert_eq!(ka.poll_timeout(), Some(t0 + s(54)));
//! assert_eq!(ka.handle_timeout(t0 + s(54)), Some(Timeout::Ping));
//! // no pong, no frame: at 60 s the peer is given up
//! assert_eq!(ka.handle_timeout(t0 + s(60)), Some(Timeout::PeerSilent));
//! ```

use std::time::{Duration, Instant};

/// What a deadline that passed asks the driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Send a ping now.
    Ping,
    /// Nothing arrived within the pong wait: close the connection.
    PeerSilent,
    /// A write has been blocked longer than the write wait: drop the connection.
    WriteStalled,
}

/// Keepalive state of one connection.
#[derive(Clone, Debug)]
pub struct Keepalive {
    ping_interval: Option<Duration>,
    pong_wait: Option<Duration>,
    write_wait: Duration,
    last_seen: Instant,
    next_ping: Option<Instant>,
    write_blocked_since: Option<Instant>,
}

impl Keepalive {
    /// A WebSocket connection that opened at `now`: pinged every `ping_interval`, given up when
    /// nothing arrives within `pong_wait`, dropped when a write stays blocked `write_wait`.
    pub fn new(
        ping_interval: Duration,
        pong_wait: Duration,
        write_wait: Duration,
        now: Instant,
    ) -> Self {
        Self {
            ping_interval: Some(ping_interval),
            pong_wait: Some(pong_wait),
            write_wait,
            last_seen: now,
            next_ping: Some(now + ping_interval),
            write_blocked_since: None,
        }
    }

    /// A one-way connection (Server-Sent Events) that opened at `now`: the peer never sends,
    /// so there is no silence deadline; [`Timeout::Ping`] asks for a heartbeat every
    /// `heartbeat` (none if `None`), and blocked writes are dropped after `write_wait`.
    pub fn one_way(heartbeat: Option<Duration>, write_wait: Duration, now: Instant) -> Self {
        Self {
            ping_interval: heartbeat,
            pong_wait: None,
            write_wait,
            last_seen: now,
            next_ping: heartbeat.map(|h| now + h),
            write_blocked_since: None,
        }
    }

    /// Any frame (data, ping, pong, close) arrived at `now`.
    pub fn on_receive(&mut self, now: Instant) {
        if now > self.last_seen {
            self.last_seen = now;
        }
    }

    /// A write could not complete at `now`. Only the first call of a stall counts.
    pub fn on_write_blocked(&mut self, now: Instant) {
        self.write_blocked_since.get_or_insert(now);
    }

    /// Everything written so far reached the socket.
    pub fn on_write_done(&mut self) {
        self.write_blocked_since = None;
    }

    /// When the peer is given up if nothing arrives before then (`None` for one-way
    /// connections).
    pub fn silence_deadline(&self) -> Option<Instant> {
        self.pong_wait.map(|wait| self.last_seen + wait)
    }

    /// The next instant at which [`Self::handle_timeout`] has something to do, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.next_ping,
            self.silence_deadline(),
            self.write_blocked_since
                .map(|since| since + self.write_wait),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on every deadline at or before `now`, most severe first.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Timeout> {
        if let Some(since) = self.write_blocked_since {
            if now >= since + self.write_wait {
                return Some(Timeout::WriteStalled);
            }
        }
        if self
            .silence_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            return Some(Timeout::PeerSilent);
        }
        if let (Some(next), Some(interval)) = (self.next_ping.as_mut(), self.ping_interval) {
            if now >= *next {
                // Skip missed periods instead of bursting pings after a long stall.
                while *next <= now {
                    *next += interval;
                }
                return Some(Timeout::Ping);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A fake clock that always jumps to the next deadline, as quinn-proto's tests do.
    struct Sim {
        ka: Keepalive,
        now: Instant,
        t0: Instant,
    }

    impl Sim {
        fn new() -> Self {
            let t0 = Instant::now();
            Self {
                ka: Keepalive::new(s(54), s(60), s(10), t0),
                now: t0,
                t0,
            }
        }
        fn step(&mut self) -> (Duration, Option<Timeout>) {
            self.now = self.ka.poll_timeout().unwrap_or(self.now).max(self.now);
            (self.now - self.t0, self.ka.handle_timeout(self.now))
        }
    }

    #[test]
    fn healthy_peer_that_pongs_survives_ten_hours() {
        let mut sim = Sim::new();
        let mut pings = 0u32;
        while sim.now - sim.t0 < s(10 * 3600) {
            match sim.step() {
                (_, Some(Timeout::Ping)) => {
                    pings += 1;
                    // the pong comes back 200 ms later
                    let at = sim.now + Duration::from_millis(200);
                    sim.ka.on_receive(at);
                }
                (at, other) => panic!("unexpected {other:?} at {at:?}"),
            }
        }
        assert_eq!(pings, 10 * 3600 / 54 + 1);
    }

    #[test]
    fn silent_peer_is_pinged_then_given_up_at_pong_wait() {
        let mut sim = Sim::new();
        assert_eq!(sim.step(), (s(54), Some(Timeout::Ping)));
        assert_eq!(sim.step(), (s(60), Some(Timeout::PeerSilent)));
        // idempotent: asking again still says the peer is silent
        assert_eq!(sim.ka.handle_timeout(sim.now), Some(Timeout::PeerSilent));
    }

    #[test]
    fn any_frame_counts_as_life() {
        let mut sim = Sim::new();
        // data every 30 s, never a pong: never given up
        for i in 1..=1000u64 {
            sim.ka.on_receive(sim.t0 + s(30 * i));
            while let Some(now) = sim.ka.poll_timeout().filter(|&t| t <= sim.t0 + s(30 * i)) {
                assert_eq!(sim.ka.handle_timeout(now), Some(Timeout::Ping));
            }
        }
    }

    #[test]
    fn write_stall_is_dropped_after_write_wait() {
        let mut sim = Sim::new();
        sim.ka.on_write_blocked(sim.t0 + s(1));
        sim.ka.on_write_blocked(sim.t0 + s(5)); // same stall: does not move the deadline
        assert_eq!(sim.step(), (s(11), Some(Timeout::WriteStalled)));
    }

    #[test]
    fn write_that_completes_clears_the_stall() {
        let mut sim = Sim::new();
        sim.ka.on_write_blocked(sim.t0 + s(1));
        sim.ka.on_write_done();
        assert_eq!(sim.step(), (s(54), Some(Timeout::Ping)));
    }

    #[test]
    fn early_and_repeated_calls_do_nothing() {
        let mut sim = Sim::new();
        assert_eq!(sim.ka.handle_timeout(sim.t0 + s(10)), None);
        assert_eq!(sim.ka.handle_timeout(sim.t0 + s(53)), None);
        assert_eq!(sim.ka.handle_timeout(sim.t0 + s(54)), Some(Timeout::Ping));
        sim.ka.on_receive(sim.t0 + s(54));
        assert_eq!(sim.ka.handle_timeout(sim.t0 + s(54)), None);
        assert_eq!(sim.ka.poll_timeout(), Some(sim.t0 + s(108)));
    }

    #[test]
    fn one_way_connections_never_go_silent() {
        let t0 = Instant::now();
        let mut ka = Keepalive::one_way(Some(s(15)), s(10), t0);
        for i in 1..=2400u64 {
            // ten hours of heartbeats, nothing ever received
            assert_eq!(ka.poll_timeout(), Some(t0 + s(15 * i)));
            assert_eq!(ka.handle_timeout(t0 + s(15 * i)), Some(Timeout::Ping));
        }
        let mut off = Keepalive::one_way(None, s(10), t0);
        assert_eq!(off.poll_timeout(), None);
        assert_eq!(off.handle_timeout(t0 + s(100_000)), None);
        off.on_write_blocked(t0);
        assert_eq!(off.handle_timeout(t0 + s(10)), Some(Timeout::WriteStalled));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn long_stall_does_not_burst_pings() {
        let mut ka = Keepalive::new(s(1), s(1000), s(10), Instant::now());
        let t = ka.poll_timeout().unwrap() + s(100);
        assert_eq!(ka.handle_timeout(t), Some(Timeout::Ping));
        assert_eq!(ka.handle_timeout(t), None);
    }
}
