//! Protecting a PBX from overload: past its capacity Asterisk does not slow down, it collapses
//! (threads pile up, channel creation fails with `Reason 0`, answered calls per second fall; see
//! "Under load" in the transcripts' README). So each server's usable capacity is scaled by a
//! factor that halves when channel creation gets slow or fails, and creeps back up while the
//! server is healthy (AIMD, as TCP does for a congested link).
//!
//! Signals, over the last few seconds: the time from an Originate to its channel's `Newchannel`
//! (not to `OriginateResponse`, which waits for the callee to answer), and Originates that got no
//! channel at all.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the factor reacts to.
#[derive(Debug, Clone, Copy)]
pub struct HealthPolicy {
    /// p90 of Originate-to-channel time above this is overload.
    pub slow_channel: Duration,
    /// This many channel-creation failures within the window is overload.
    pub failures: usize,
    pub window: Duration,
    /// Lowest factor: a server is never shut off entirely by this (its own faults do that).
    pub floor: f64,
    /// Added back per healthy window.
    pub recovery_step: f64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            slow_channel: Duration::from_millis(500),
            failures: 3,
            window: Duration::from_secs(5),
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

#[derive(Debug)]
pub struct Health {
    policy: HealthPolicy,
    samples: VecDeque<(Instant, Sample)>,
    factor: f64,
    last_change: Instant,
}

impl Health {
    pub fn new(policy: HealthPolicy, now: Instant) -> Health {
        Health {
            policy,
            samples: VecDeque::new(),
            factor: 1.0,
            last_change: now,
        }
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

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

    /// Re-evaluates (call about once a second); returns the factor, changed or not.
    pub fn evaluate(&mut self, now: Instant) -> f64 {
        let window = self.policy.window;
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > window)
        {
            self.samples.pop_front();
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
        let p90 = (latencies.len() >= 5).then(|| latencies[latencies.len() * 9 / 10]);
        let overloaded =
            failures >= self.policy.failures || p90.is_some_and(|p| p > self.policy.slow_channel);
        // One change per window: the PBX needs time to show the effect of the last one.
        if now.duration_since(self.last_change) < window {
            return self.factor;
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
        self.factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_on_slow_channels_and_recovers_when_healthy() {
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        let mut now = t0;
        for _ in 0..20 {
            now += Duration::from_millis(100);
            h.channel_created(Duration::from_millis(20), now);
        }
        assert_eq!(h.evaluate(now), 1.0);
        // A window later, channel creation slows to 2 s.
        now += Duration::from_secs(4);
        for _ in 0..20 {
            now += Duration::from_millis(100);
            h.channel_created(Duration::from_secs(2), now);
        }
        assert_eq!(h.evaluate(now), 0.5);
        // Still bad in the next window: halves again, never below the floor.
        for _ in 0..10 {
            now += Duration::from_millis(500);
            h.channel_created(Duration::from_secs(2), now);
        }
        assert_eq!(h.evaluate(now), 0.25);
        // Healthy again: +0.1 per window back to 1.
        let mut last = h.factor();
        for _ in 0..20 {
            for _ in 0..10 {
                now += Duration::from_millis(500);
                h.channel_created(Duration::from_millis(10), now);
            }
            let f = h.evaluate(now);
            assert!(f >= last);
            last = f;
        }
        assert_eq!(last, 1.0);
    }

    #[test]
    fn channel_failures_alone_trigger_a_back_off() {
        let t0 = Instant::now();
        let mut h = Health::new(HealthPolicy::default(), t0);
        let now = t0 + Duration::from_secs(6);
        h.no_channel(now);
        h.no_channel(now);
        assert_eq!(h.evaluate(now), 1.0, "two failures are noise");
        h.no_channel(now);
        assert_eq!(h.evaluate(now), 0.5);
    }
}
