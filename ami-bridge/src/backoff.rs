//! Reconnect delays: exponential, capped, with full jitter so that many dispatchers that lost the
//! same Asterisk do not come back in lockstep.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: SmallRng,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Backoff {
            min,
            max: max.max(min),
            current: min,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// The next delay: uniform in `[min, current]`, then `current` doubles up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let lo = self.min.as_millis() as u64;
        let hi = self.current.as_millis() as u64;
        let ms = if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        };
        self.current = (self.current * 2).min(self.max);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(1000));
        }
        assert_eq!(b.current, Duration::from_millis(1000));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
