//! A histogram of durations with about 3 % resolution from a microsecond to hours, in fixed
//! memory, so a long load run can ask for percentiles without keeping every sample.

use std::time::Duration;

use serde::Serialize;

/// Buckets: values below 64 us have their own; above, 32 per power of two.
const SUB: u64 = 32;
const BUCKETS: usize = 64 + 58 * SUB as usize;

#[derive(Debug, Clone)]
pub(crate) struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

/// Percentiles of a histogram, in microseconds (each within about 3 % of the exact value).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

fn bucket(us: u64) -> usize {
    if us < 64 {
        return us as usize;
    }
    let shift = 63 - u64::from(us.leading_zeros()) - 5;
    let mantissa = us >> shift;
    (64 + (shift - 1) * SUB + (mantissa - SUB)) as usize
}

/// The middle of a bucket.
fn value(index: usize) -> u64 {
    let i = index as u64;
    if i < 64 {
        return i;
    }
    let shift = (i - 64) / SUB + 1;
    let mantissa = (i - 64) % SUB + SUB;
    (mantissa << shift) + (1 << shift) / 2
}

impl LatencyHistogram {
    pub(crate) fn new() -> LatencyHistogram {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// The smallest value with at least `q` of the samples at or below it.
    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max_us);
            }
        }
        self.max_us
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.total,
            p50_us: self.quantile(0.50),
            p90_us: self.quantile(0.90),
            p99_us: self.quantile(0.99),
            max_us: self.max_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_within_three_percent() {
        let mut last = 0;
        for us in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1_000,
            31_000,
            74_000,
            5_000_000,
            u64::MAX,
        ] {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS, "{us} -> {b}");
            last = b;
            if us >= 64 {
                let v = value(b) as f64;
                assert!(
                    (v - us as f64).abs() / us as f64 <= 0.032,
                    "{us} shown as {v}"
                );
            } else {
                assert_eq!(value(b), us);
            }
        }
        assert_eq!(bucket(64), 64);
        assert_eq!(bucket(127), 95);
        assert_eq!(bucket(128), 96);
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.summary(), LatencySummary::default());
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!((s.count, s.max_us), (100, 100_000));
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.032;
        assert!(near(s.p50_us, 50_000), "{s:?}");
        assert!(near(s.p90_us, 90_000), "{s:?}");
        assert!(near(s.p99_us, 99_000), "{s:?}");
    }
}
