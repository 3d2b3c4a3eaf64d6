//! Protecting a PBX from overload: past its capacity Asterisk does not slow down, it collapses
//! (threads pile up, channel creation fails with `Reason 0`, answered calls per second fall; see
//! "Under load" in the transcripts' README). So each server's usable capacity is scaled by a
//! factor that halves when channel creation gets slow or fails, and creeps back up while the
//! server is healthy (AIMD, as TCP does for a congested link).
//!
//! Signals, over the last few seconds:
//! - the PBX's channel-creation time: from the moment the Originate's last byte was written to
//!   the PBX's socket to the moment its channel's `Newchannel` was read off it (not to
//!   `OriginateResponse`, which waits for the callee to answer). Both moments are stamped by the
//!   AMI client at the socket, on a connection thread of its own (`ClientConfig::io_thread`), so
//!   what this process does with its time (a busy runtime, Originates queued before the socket,
//!   events handled late) is not in it: only the PBX, the network and the OS scheduler are. A
//!   healthy Asterisk answers in tens of milliseconds (31 ms p90, 74 ms p99 at 400 calls/s on 2
//!   cores); one past capacity takes seconds.
//! - Originates that got no channel at all (`Reason 0` without a channel).
//!
//! Overload is the window's p90 past the knee, or failures that are both several (3) and a real
//! share (10 %) of the window's Originates answered: a batch with a few unreachable numbers is
//! not an overloaded PBX. The knee is 3 x the server's healthy baseline (the lowest p90 of a
//! healthy window over the last minute), kept within 150-500 ms: the floor keeps a PBX on
//! loopback, whose baseline is a few milliseconds, from being judged on scheduling noise; the
//! ceiling is the absolute bound that holds before any baseline is known and when the baseline
//! itself was measured on a PBX already struggling. A PBX far away (a WAN round trip in every
//! sample) gets a knee above its round trip.
//!
//! Rejected: judging the runtime's scheduling lag with a probe and discounting samples taken while
//! it is high. That keeps out the lag the probe sees, not the lag the reader saw, and on a
//! machine shared with the PBX the lag is high exactly when the PBX overloads the machine, which
//! would hide the overload. Asterisk's own event timestamps (`timestampevents`) only give
//! intervals between events, and nothing on its clock marks when an Originate arrived.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the factor reacts to.
#[derive(Debug, Clone, Copy)]
pub struct HealthPolicy {
    pub window: Duration,
    /// Fewest channel-creation times in a window for its p90 to mean anything.
    pub min_samples: usize,
    /// The knee is this many times the healthy baseline p90 ...
    pub knee_ratio: f64,
    /// ... but never below this ...
    pub knee_min: Duration,
    /// ... nor above this (also the knee while no baseline is known).
    pub knee_max: Duration,
    /// The baseline is the lowest healthy window p90 over this long.
    pub baseline_memory: Duration,
    /// This many channel-creation failures within the window ...
    pub failures: usize,
    /// ... making up at least this share of the window's answered Originates is overload.
    pub failure_share: f64,
    /// Lowest factor: a server is never shut off entirely by this (its own faults do that).
    pub floor: f64,
    /// Added back per healthy window.
    pub recovery_step: f64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            window: Duration::from_secs(5),
            min_samples: 5,
            knee_ratio: 3.0,
            knee_min: Duration::from_millis(150),
            knee_max: Duration::from_millis(500),
            baseline_memory: Duration::from_secs(60),
            failures: 3,
            failure_share: 0.1,
            floor: 0.1,
            recovery_step: 0.1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Sample {
    ChannelAfter(Duration),
    NoChannel,
}

/// What one evaluation saw and decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub factor: f64,
    /// The factor before this evaluation.
    pub previous: f64,
    /// p90 of the window's channel-creation times, when it had enough of them.
    pub p90: Option<Duration>,
    pub knee: Duration,
    /// Channel-creation times and failures in the window.
    pub channels: usize,
    pub failures: usize,
}

impl Assessment {
    pub fn changed(&self) -> bool {
        (self.factor - self.previous).abs() > f64::EPSILON
    }
}

#[derive(Debug)]
pub struct Health {
    policy: HealthPolicy,
    samples: VecDeque<(Instant, Sample)>,
    /// p90s of healthy windows, oldest first, within the baseline's memory.
    healthy_p90s: VecDeque<(Instant, Duration)>,
    factor: f64,
    last_change: Instant,
}

impl Health {
    pub fn new(policy: HealthPolicy, now: Instant) -> Health {
        Health {
            policy,
            samples: VecDeque::new(),
            healthy_p90s: VecDeque::new(),
            factor: 1.0,
            last_change: now,
        }
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The PBX created a channel `after` its Originate reached it.
    pub fn channel_created(&mut self, after: Duration, now: Instant) {
        self.push(now, Sample::ChannelAfter(after));
    }

    pub fn no_channel(&mut self, now: Instant) {
        self.push(now, Sample::NoChannel);
    }

    fn push(&mut self, now: Instant, s: Sample) {
        self.samples.push_back((now, s));
        // Bounded: a burst of thousands of calls keeps only the recent ones.
        while self.samples.len() > 4096 {
            self.samples.pop_front();
        }
    }

    /// The knee channel-creation p90 is judged against now.
    pub fn knee(&self) -> Duration {
        let p = &self.policy;
        match self.healthy_p90s.iter().map(|(_, d)| *d).min() {
            Some(baseline) => baseline.mul_f64(p.knee_ratio).clamp(p.knee_min, p.knee_max),
            None => p.knee_max,
        }
    }

    /// Re-evaluates (call about once a second).
    pub fn evaluate(&mut self, now: Instant) -> Assessment {
        let window = self.policy.window;
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > window)
        {
            self.samples.pop_front();
        }
        let memory = self.policy.baseline_memory;
        while self
            .healthy_p90s
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > memory)
        {
            self.healthy_p90s.pop_front();
        }
        let failures = self
            .samples
            .iter()
            .filter(|(_, s)| matches!(s, Sample::NoChannel))
            .count();
        let mut latencies: Vec<Duration> = self
            .samples
            .iter()
            .filter_map(|(_, s)| match s {
                Sample::ChannelAfter(d) => Some(*d),
                Sample::NoChannel => None,
            })
            .collect();
        latencies.sort_unstable();
        let p90 = (latencies.len() >= self.policy.min_samples.max(1))
            .then(|| latencies[latencies.len() * 9 / 10]);
        let knee = self.knee();
        let failing = failures >= self.policy.failures
            && failures as f64 >= self.policy.failure_share * (failures + latencies.len()) as f64;
        let overloaded = failing || p90.is_some_and(|p| p > knee);
        let mut seen = Assessment {
            factor: self.factor,
            previous: self.factor,
            p90,
            knee,
            channels: latencies.len(),
            failures,
        };
        if !overloaded && let Some(p) = p90 {
            self.healthy_p90s.push_back((now, p));
        }
        // One change per window: the PBX needs time to show the effect of the last one.
        if now.saturating_duration_since(self.last_change) < window {
            return seen;
        }
        if overloaded {
            self.factor = (self.factor * 0.5).max(self.policy.floor);
            self.last_change = now;
            // Judge the next window on what happens after this change.
            self.samples.clear();
        } else if self.factor < 1.0 {
            self.factor = (self.factor + self.policy.recovery_step).min(1.0);
            self.last_change = now;
        }
        seen.factor = self.factor;
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` channel-creation times of `each`, spread over the next second; returns the new now.
    fn second_of(h: &mut Health, mut now: Instant, n: u32, each: Duration) -> Instant {
        for _ in 0..n {
            now += Duration::from_secs(1) / n;
            h.channel_created(each, now);
        }
        now
    }

    /// `seconds` of [`second_of`], each evaluated at its end.
    fn evaluated_seconds(
        h: &mut Health,
        mut now: Instant,
        seconds: u32,
        n: u32,
        each: Duration,
    ) -> Instant {
        for _ in 0..seconds {
            now = second_of(h, now, n, each);
            h.evaluate(now);
        }
        now
    }

    #[test]
    fn backs_off_on_slow_channels_and_recovers_when_healthy() {
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        let mut now = t0;
        for _ in 0..6 {
            now = second_of(&mut h, now, 20, ms(20));
            assert_eq!(h.evaluate(now).factor, 1.0);
        }
        // Channel creation slows to 2 s.
        now = evaluated_seconds(&mut h, now, 5, 20, Duration::from_secs(2));
        assert_eq!(h.factor(), 0.5);
        // Still bad in the next window: halves again, never below the floor.
        now = evaluated_seconds(&mut h, now, 5, 2, Duration::from_secs(2));
        assert_eq!(h.factor(), 0.25);
        // Healthy again: once the slow ones are out of the window, +0.1 per window back to 1.
        now = evaluated_seconds(&mut h, now, 5, 2, ms(10));
        let mut last = h.factor();
        assert!(last <= 0.25);
        for _ in 0..60 {
            now = second_of(&mut h, now, 2, ms(10));
            let f = h.evaluate(now).factor;
            assert!(f >= last);
            last = f;
        }
        assert_eq!(last, 1.0);
    }

    #[test]
    fn a_healthy_pbx_at_its_real_spread_keeps_the_full_factor() {
        // Asterisk at 400 calls/s on 2 cores: p90 31 ms, p99 74 ms; stragglers beyond (1 %).
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        let mut now = t0;
        for second in 0..120u64 {
            for i in 0..400u64 {
                now += Duration::from_secs(1) / 400;
                let after = match (i + second) % 100 {
                    0 => ms(400),
                    1..=8 => ms(74),
                    9..=20 => ms(31),
                    n => ms(5 + n % 20),
                };
                h.channel_created(after, now);
            }
            let seen = h.evaluate(now);
            assert_eq!(seen.factor, 1.0, "second {second}: {seen:?}");
        }
        assert_eq!(h.knee(), ms(150), "3 x 31 ms, raised to the floor");
    }

    #[test]
    fn the_knee_follows_the_healthy_baseline_within_its_bounds() {
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        assert_eq!(h.knee(), ms(500), "no baseline yet: the absolute bound");
        // A PBX a WAN round trip away: 120 ms is its normal.
        let mut now = t0;
        for _ in 0..10 {
            now = second_of(&mut h, now, 50, ms(120));
            assert_eq!(h.evaluate(now).factor, 1.0);
        }
        assert_eq!(h.knee(), ms(360));
        // Slower, below its knee: still healthy ...
        for _ in 0..10 {
            now = second_of(&mut h, now, 50, ms(300));
            assert_eq!(h.evaluate(now).factor, 1.0);
        }
        // ... past it: overload.
        now = evaluated_seconds(&mut h, now, 5, 50, ms(400));
        assert_eq!(h.factor(), 0.5);

        // A PBX on loopback: knee at its floor, and 250 ms is overload there.
        let mut h = Health::new(HealthPolicy::default(), now);
        now = evaluated_seconds(&mut h, now, 10, 50, ms(3));
        assert_eq!(h.knee(), ms(150));
        evaluated_seconds(&mut h, now, 5, 50, ms(250));
        assert_eq!(h.factor(), 0.5);
    }

    #[test]
    fn the_baseline_forgets_and_never_learns_from_an_overloaded_window() {
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        let now = evaluated_seconds(&mut h, t0, 10, 50, ms(100));
        assert_eq!(h.knee(), ms(300));
        // Overloaded for a minute and more: the baseline does not rise with it.
        evaluated_seconds(&mut h, now, 70, 50, ms(900));
        assert_eq!(h.factor(), 0.1);
        assert_eq!(h.knee(), ms(500), "forgotten, and nothing healthy since");
    }

    #[test]
    fn channel_failures_trigger_a_back_off_when_they_are_a_real_share() {
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        let now = t0 + Duration::from_secs(6);
        h.no_channel(now);
        h.no_channel(now);
        assert_eq!(h.evaluate(now).factor, 1.0, "two failures are noise");
        h.no_channel(now);
        let seen = h.evaluate(now);
        assert_eq!((seen.factor, seen.failures), (0.5, 3));
        assert!(seen.changed());

        // Four unreachable numbers among 200 calls a second: the numbers, not the PBX.
        let mut h = Health::new(HealthPolicy::default(), t0);
        let mut now = t0;
        for _ in 0..10 {
            now = second_of(&mut h, now, 200, ms(5));
            for _ in 0..4 {
                h.no_channel(now);
            }
            assert_eq!(h.evaluate(now).factor, 1.0);
        }
        // A PBX out of file handles: most Originates get no channel.
        for _ in 0..5 {
            now = second_of(&mut h, now, 20, ms(5));
            for _ in 0..50 {
                h.no_channel(now);
            }
            h.evaluate(now);
        }
        assert_eq!(h.factor(), 0.5);
    }

    #[test]
    fn a_short_burst_of_slow_channels_is_judged_by_the_p90() {
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        let mut now = t0;
        for s in 0..20 {
            now = second_of(&mut h, now, 100, ms(5));
            if s == 10 {
                // 5 % of a window (a GC pause on the PBX, a slow disk): not overload.
                for _ in 0..25 {
                    h.channel_created(Duration::from_secs(1), now);
                }
            }
            assert_eq!(h.evaluate(now).factor, 1.0);
        }
    }
}
