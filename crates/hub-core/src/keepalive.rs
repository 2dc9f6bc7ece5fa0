//! The keepalive as a clock-driven state machine.
//!
//! Time is passed in; nothing here reads a clock. The driver feeds it events
//! ([`Keepalive::on_receive`], [`Keepalive::on_write_blocked`], [`Keepalive::on_write_progress`],
//! [`Keepalive::on_write_done`]), sleeps until [`Keepalive::poll_timeout`], then calls
//! [`Keepalive::handle_timeout`] until it returns `None`. Spurious calls (early ones, before
//! any deadline has passed) are no-ops.
//!
//! No arithmetic here can panic: a duration too long to add to an instant means that deadline
//! is never armed, and a zero ping interval or heartbeat means none.

use std::time::{Duration, Instant};

/// What a deadline that passed asks the driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// Send a ping now.
    Ping,
    /// Nothing arrived within the pong wait: close the connection.
    PeerSilent,
    /// The socket accepted no byte for the write wait while writes were pending: drop the
    /// connection.
    WriteStalled,
}

/// Keepalive state of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Keepalive {
    ping_interval: Option<Duration>,
    pong_wait: Option<Duration>,
    write_wait: Duration,
    last_seen: Instant,
    /// The peer's frames cannot be read for now: silence is not counted.
    silence_held: bool,
    next_ping: Option<Instant>,
    /// Since when writes have been pending without the socket accepting a byte.
    write_blocked_since: Option<Instant>,
}

/// A zero period means "off".
fn period(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl Keepalive {
    /// A WebSocket connection that opened at `now`: pinged every `ping_interval`, given up when
    /// nothing arrives within `pong_wait`, dropped when the socket accepts nothing for
    /// `write_wait` while writes are pending. A zero `ping_interval` sends no pings.
    pub(crate) fn new(
        ping_interval: Duration,
        pong_wait: Duration,
        write_wait: Duration,
        now: Instant,
    ) -> Self {
        let ping_interval = period(Some(ping_interval));
        Self {
            ping_interval,
            pong_wait: Some(pong_wait),
            write_wait,
            last_seen: now,
            silence_held: false,
            next_ping: ping_interval.and_then(|i| now.checked_add(i)),
            write_blocked_since: None,
        }
    }

    /// A one-way connection (Server-Sent Events) that opened at `now`: the peer never sends,
    /// so there is no silence deadline; [`Timeout::Ping`] asks for a heartbeat every
    /// `heartbeat` (none if `None` or zero), and stalled writes are dropped after `write_wait`.
    pub(crate) fn one_way(heartbeat: Option<Duration>, write_wait: Duration, now: Instant) -> Self {
        let heartbeat = period(heartbeat);
        Self {
            ping_interval: heartbeat,
            pong_wait: None,
            write_wait,
            last_seen: now,
            silence_held: false,
            next_ping: heartbeat.and_then(|h| now.checked_add(h)),
            write_blocked_since: None,
        }
    }

    /// Any frame (data, ping, pong, close) arrived at `now`.
    pub(crate) fn on_receive(&mut self, now: Instant) {
        if now > self.last_seen {
            self.last_seen = now;
        }
    }

    /// The peer's frames cannot be read for now (the driver waits for a message handler before
    /// it reads on): silence is not counted until [`Self::release_silence`]. Pings go on.
    pub(crate) fn hold_silence(&mut self) {
        self.silence_held = true;
    }

    /// Reading resumed at `now`: the pong wait starts again from `now`.
    pub(crate) fn release_silence(&mut self, now: Instant) {
        if self.silence_held {
            self.silence_held = false;
            self.on_receive(now);
        }
    }

    /// A write could not complete at `now`. Only the first call of a stall counts.
    pub(crate) fn on_write_blocked(&mut self, now: Instant) {
        self.write_blocked_since.get_or_insert(now);
    }

    /// The socket accepted bytes at `now`, though writes are still pending: the link moves,
    /// so the stall, if any, is timed again from `now`.
    pub(crate) fn on_write_progress(&mut self, now: Instant) {
        if let Some(since) = self.write_blocked_since.as_mut() {
            *since = now.max(*since);
        }
    }

    /// Whether writes are pending on a socket that has not taken them all.
    pub(crate) fn write_blocked(&self) -> bool {
        self.write_blocked_since.is_some()
    }

    /// Everything written so far reached the socket.
    pub(crate) fn on_write_done(&mut self) {
        self.write_blocked_since = None;
    }

    /// When the peer is given up if nothing arrives before then (`None` for one-way
    /// connections, while silence is held, or when the wait is too long to matter).
    pub(crate) fn silence_deadline(&self) -> Option<Instant> {
        if self.silence_held {
            return None;
        }
        self.pong_wait
            .and_then(|wait| self.last_seen.checked_add(wait))
    }

    fn write_deadline(&self) -> Option<Instant> {
        self.write_blocked_since
            .and_then(|since| since.checked_add(self.write_wait))
    }

    /// The next instant at which [`Self::handle_timeout`] has something to do, if any.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.next_ping,
            self.silence_deadline(),
            self.write_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on a deadline at or before `now`, most severe first; call it again until it
    /// returns `None`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<Timeout> {
        if self
            .write_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            return Some(Timeout::WriteStalled);
        }
        if self
            .silence_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            return Some(Timeout::PeerSilent);
        }
        if let (Some(next), Some(interval)) = (self.next_ping, self.ping_interval) {
            if now >= next {
                // Skip missed periods instead of bursting pings after a long stall, keeping the
                // schedule's phase; computed, not looped, so a tiny interval cannot spin.
                let periods = (now - next).as_nanos() / interval.as_nanos() + 1;
                let step = interval.as_nanos().saturating_mul(periods);
                let step = Duration::from_nanos(u64::try_from(step).unwrap_or(u64::MAX));
                self.next_ping = next.checked_add(step);
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

    #[test]
    fn pings_then_gives_up_on_a_silent_peer() {
        let t0 = Instant::now();
        let mut ka = Keepalive::new(s(54), s(60), s(10), t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + s(54)));
        assert_eq!(ka.handle_timeout(t0 + s(54)), Some(Timeout::Ping));
        // no pong, no frame: at 60 s the peer is given up
        assert_eq!(ka.handle_timeout(t0 + s(60)), Some(Timeout::PeerSilent));
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
        // asking again still says the peer is silent
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

    #[test]
    fn zero_periods_are_off_and_never_spin() {
        let t0 = Instant::now();
        let mut ka = Keepalive::new(Duration::ZERO, s(60), s(10), t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + s(60)), "no ping deadline");
        assert_eq!(ka.handle_timeout(t0 + s(30)), None);
        let mut sse = Keepalive::one_way(Some(Duration::ZERO), s(10), t0);
        assert_eq!(sse.poll_timeout(), None);
        assert_eq!(sse.handle_timeout(t0 + s(1_000_000)), None);
    }

    #[test]
    fn tiny_interval_after_a_long_stall_is_computed_not_looped() {
        let t0 = Instant::now();
        let mut ka = Keepalive::new(Duration::from_nanos(1), s(u64::MAX), s(10), t0);
        // 10^13 missed periods: a loop would spin for hours
        let late = t0 + s(10_000);
        assert_eq!(ka.handle_timeout(late), Some(Timeout::Ping));
        assert_eq!(ka.poll_timeout(), Some(late + Duration::from_nanos(1)));
    }

    #[test]
    fn huge_durations_mean_never_and_do_not_panic() {
        let t0 = Instant::now();
        let mut ka = Keepalive::new(Duration::MAX, Duration::MAX, Duration::MAX, t0);
        assert_eq!(ka.poll_timeout(), None);
        ka.on_write_blocked(t0);
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + s(3_000_000)), None);
        let mut sse = Keepalive::one_way(Some(Duration::MAX), Duration::MAX, t0);
        assert_eq!(sse.poll_timeout(), None);
        assert_eq!(sse.handle_timeout(t0 + s(3_000_000)), None);
    }

    #[test]
    fn a_link_that_keeps_moving_is_not_a_stall() {
        let mut sim = Sim::new();
        sim.ka.on_write_blocked(sim.t0 + s(1));
        // the socket takes a few bytes every 5 s, but never drains the buffer
        for i in 1..=20u64 {
            let at = sim.t0 + s(1 + 5 * i);
            while let Some(timeout) = sim.ka.handle_timeout(at) {
                assert_eq!(timeout, Timeout::Ping, "dropped at {at:?}");
            }
            sim.ka.on_write_progress(at);
            sim.ka.on_receive(at);
        }
        // then nothing moves: dropped write_wait after the last progress
        let last = sim.t0 + s(101);
        while let Some(timeout) = sim.ka.handle_timeout(last + s(9)) {
            assert_eq!(timeout, Timeout::Ping);
        }
        assert_eq!(
            sim.ka.handle_timeout(last + s(10)),
            Some(Timeout::WriteStalled)
        );
    }

    #[test]
    fn held_silence_is_not_counted_and_restarts_on_release() {
        let mut sim = Sim::new();
        sim.ka.hold_silence();
        assert_eq!(sim.step(), (s(54), Some(Timeout::Ping)), "pings go on");
        assert_eq!(
            sim.step(),
            (s(108), Some(Timeout::Ping)),
            "not given up at 60 s"
        );
        sim.ka.release_silence(sim.t0 + s(110));
        assert_eq!(sim.step(), (s(162), Some(Timeout::Ping)));
        assert_eq!(
            sim.step(),
            (s(170), Some(Timeout::PeerSilent)),
            "pong wait from release"
        );
    }
}
