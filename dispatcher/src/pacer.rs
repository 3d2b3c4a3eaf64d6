//! Even pacing for one process: at most one event per `1/rate` seconds (GCRA with a burst of
//! one), on an injectable clock.
//!
//! Used where one process owns the limit (a server's calls per second: the server's lease holder
//! is the only one dialing it). Limits that span processes reserve their slots in PostgreSQL
//! ([`crate::pacing`]) with the same arithmetic.
//!
//! Burst one means evenly spaced events: in any window of one second there are at most
//! `rate + 1` of them, never a clump at a window's edge.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Option<Duration>,
    /// Theoretical arrival time of the next event.
    next: Option<Instant>,
}

impl Pacer {
    /// `rate` per second; `None` or a non-positive rate means unlimited.
    pub fn per_second(rate: Option<f64>) -> Pacer {
        Pacer {
            interval: interval_for(rate),
            next: None,
        }
    }

    pub fn set_rate(&mut self, rate: Option<f64>) {
        self.interval = interval_for(rate);
    }

    pub fn is_limited(&self) -> bool {
        self.interval.is_some()
    }

    /// When the next event may happen (`now` if it may already).
    pub fn ready_at(&self, now: Instant) -> Instant {
        match (self.interval, self.next) {
            (Some(_), Some(next)) if next > now => next,
            _ => now,
        }
    }

    pub fn is_ready(&self, now: Instant) -> bool {
        self.ready_at(now) <= now
    }

    /// Books the next slot from `now` on and returns it: the caller waits until then.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let at = self.ready_at(now);
        self.take(at);
        at
    }

    /// Records an event at `now` (call only when ready).
    pub fn take(&mut self, now: Instant) {
        if let Some(interval) = self.interval {
            let base = match self.next {
                Some(next) if next > now => next,
                _ => now,
            };
            self.next = Some(base + interval);
        }
    }
}

fn interval_for(rate: Option<f64>) -> Option<Duration> {
    rate.filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a pacer as fast as it allows on a simulated clock.
    fn schedule(rate: f64, seconds: u64) -> Vec<Duration> {
        let start = Instant::now();
        let mut p = Pacer::per_second(Some(rate));
        let mut now = start;
        let mut out = Vec::new();
        while now < start + Duration::from_secs(seconds) {
            now = p.ready_at(now);
            p.take(now);
            out.push(now - start);
            // The caller may come back a little late; lateness is never made up in a clump.
            now += Duration::from_micros(300);
        }
        out
    }

    #[test]
    fn never_more_than_rate_plus_one_in_any_second() {
        let times = schedule(20.0, 30);
        let avg = times.len() as f64 / 30.0;
        assert!((19.4..=20.6).contains(&avg), "average {avg}");
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u <= *t + Duration::from_secs(1))
                .count();
            assert!(in_window <= 21, "{in_window} in the second after {t:?}");
        }
    }

    #[test]
    fn unlimited_is_always_ready_and_lateness_is_not_made_up() {
        let mut p = Pacer::per_second(None);
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(p.is_ready(now));
            p.take(now);
        }
        let mut p = Pacer::per_second(Some(10.0));
        p.take(now);
        // Idle for 5 s: the next event may go at once, but only one; then 100 ms apart.
        let later = now + Duration::from_secs(5);
        assert!(p.is_ready(later));
        p.take(later);
        assert_eq!(p.ready_at(later), later + Duration::from_millis(100));
    }
}
