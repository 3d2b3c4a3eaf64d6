//! Rates held through a run: events counted per whole second from the first one, and the lowest
//! average over any window of whole seconds (the figure a paced run is judged on: a rate held
//! for ten seconds at a time, not an average that hides a dip).

use chrono::{DateTime, Utc};

/// Counts per second from the first instant to the last; empty when `times` is.
pub fn per_second(times: &[DateTime<Utc>]) -> Vec<u32> {
    let Some(first) = times.iter().min() else {
        return Vec::new();
    };
    let mut counts: Vec<u32> = Vec::new();
    for t in times {
        let micros = (*t - *first).num_microseconds().unwrap_or(i64::MAX);
        let second = usize::try_from(micros / 1_000_000).unwrap_or(usize::MAX);
        if second >= counts.len() {
            // A timestamp hours away would be a broken clock; cap what is allocated.
            if second > 86_400 {
                continue;
            }
            counts.resize(second + 1, 0);
        }
        counts[second] += 1;
    }
    counts
}

/// The lowest mean of `window` consecutive seconds, skipping the first `skip` seconds (the ramp
/// up) and the last second (a partial one). `None` when fewer seconds than a window remain.
pub fn min_window_mean(counts: &[u32], skip: usize, window: usize) -> Option<f64> {
    let end = counts.len().saturating_sub(1);
    if window == 0 || end < skip + window {
        return None;
    }
    counts[skip..end]
        .windows(window)
        .map(|w| f64::from(w.iter().sum::<u32>()) / window as f64)
        .min_by(f64::total_cmp)
}

/// The `p` quantile (0..=1) of sorted values, nearest rank; NaN when empty.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn counts_by_second_from_the_first() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 900_000_000).expect("time");
        let at = |ms: i64| t0 + TimeDelta::milliseconds(ms);
        let counts = per_second(&[at(0), at(999), at(1000), at(2500), at(2999), at(-0)]);
        assert_eq!(counts, vec![3, 1, 2]);
        assert!(per_second(&[]).is_empty());
    }

    #[test]
    fn the_lowest_window_after_the_ramp_and_before_the_last_second() {
        // ramp 50, 100; then 400 x 5 with one dip to 200; last partial second 10.
        let counts = [50, 100, 400, 400, 200, 400, 400, 400, 10];
        assert_eq!(min_window_mean(&counts, 2, 3), Some(1000.0 / 3.0));
        assert_eq!(min_window_mean(&counts, 2, 6), Some(2200.0 / 6.0));
        assert_eq!(min_window_mean(&counts, 2, 7), None);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 51.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
