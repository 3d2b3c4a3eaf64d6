//! The retry schedule: the delays between tries (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! 10 h), with jitter so that events failed together do not come back together.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("retry schedule `{text}`: {reason}")]
pub struct ScheduleError {
    pub text: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    /// Each delay is moved by up to this fraction either way.
    jitter: f64,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    RetryAfter(Duration),
    GiveUp,
}

impl RetrySchedule {
    pub const DEFAULT: &'static str = "5s,5m,30m,2h,5h,10h,10h";

    pub fn new(delays: Vec<Duration>, jitter: f64) -> RetrySchedule {
        RetrySchedule {
            delays,
            jitter: jitter.clamp(0.0, 1.0),
        }
    }

    /// Parses `5s,5m,30m,2h` (units `ms`, `s`, `m`, `h`; an empty text means no retries).
    pub fn parse(text: &str, jitter: f64) -> Result<RetrySchedule, ScheduleError> {
        let err = |reason: String| ScheduleError {
            text: text.to_owned(),
            reason,
        };
        let mut delays = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let split = part
                .find(|c: char| !c.is_ascii_digit())
                .ok_or_else(|| err(format!("`{part}` has no unit (ms, s, m, h)")))?;
            let (digits, unit) = part.split_at(split);
            let n: u64 = digits
                .parse()
                .map_err(|_| err(format!("`{part}` does not start with a number")))?;
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                "h" => Duration::from_secs(n * 3600),
                _ => return Err(err(format!("`{unit}` is not a unit (ms, s, m, h)"))),
            };
            delays.push(d);
        }
        Ok(RetrySchedule::new(delays, jitter))
    }

    /// Tries in all: the first and one per delay.
    pub fn total_tries(&self) -> usize {
        self.delays.len() + 1
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// After the `tries`-th failed try (1-based, counted since the event was last replayed).
    pub fn after_failure(&self, tries: usize, rng: &mut impl Rng) -> NextStep {
        match tries.checked_sub(1).and_then(|i| self.delays.get(i)) {
            None => NextStep::GiveUp,
            Some(base) => {
                let spread = if self.jitter > 0.0 {
                    rng.random_range(-self.jitter..=self.jitter)
                } else {
                    0.0
                };
                NextStep::RetryAfter(base.mul_f64(1.0 + spread))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn default_schedule_is_the_issues() {
        let s = RetrySchedule::parse(RetrySchedule::DEFAULT, 0.0).expect("parses");
        let secs: Vec<u64> = s.delays().iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(s.total_tries(), 8);
    }

    #[test]
    fn gives_up_after_the_last_try_and_jitters_within_bounds() {
        let s = RetrySchedule::parse("100ms, 1s", 0.2).expect("parses");
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..200 {
            match s.after_failure(2, &mut rng) {
                NextStep::RetryAfter(d) => {
                    assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200))
                }
                NextStep::GiveUp => panic!("second failure still retries"),
            }
        }
        assert_eq!(s.after_failure(3, &mut rng), NextStep::GiveUp);
        assert_eq!(s.after_failure(0, &mut rng), NextStep::GiveUp);
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(RetrySchedule::parse("5", 0.0).is_err());
        assert!(RetrySchedule::parse("5d", 0.0).is_err());
        assert!(RetrySchedule::parse("s", 0.0).is_err());
        assert_eq!(
            RetrySchedule::parse("", 0.0).map(|s| s.total_tries()),
            Ok(1)
        );
    }
}
