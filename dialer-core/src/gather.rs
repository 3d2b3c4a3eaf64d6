//! Grouping what arrives one item at a time into one write: a group takes what is queued and
//! stays open a little for more, longer while it is small. At paced rates items come one by
//! one, and each group costs a statement (a transaction) whatever its size.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, timeout_at};

/// How long a group stays open after its first item.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Counted items a group takes at most.
    pub max: usize,
    /// Below this many counted items a group is small...
    pub company: usize,
    /// ... and stays open this long (from its first item) for more;
    pub small_for: Duration,
    /// a group that is not small, this long.
    pub full_for: Duration,
}

/// `first` and what follows it within `window`, in arrival order. `counts` says which items
/// count towards `max` and `company` (the others ride along). Returns when the window is over,
/// the group is full, or the channel closed (then the next `recv` ends).
pub async fn gather<T>(
    rx: &mut UnboundedReceiver<T>,
    first: T,
    window: Window,
    counts: impl Fn(&T) -> bool,
) -> Vec<T> {
    let opened = Instant::now();
    let mut counted = usize::from(counts(&first));
    let mut group = vec![first];
    while counted < window.max {
        let next = match rx.try_recv() {
            Ok(item) => Some(item),
            Err(_) => {
                let open_for = if counted < window.company {
                    window.small_for
                } else {
                    window.full_for
                };
                timeout_at(opened + open_for, rx.recv())
                    .await
                    .ok()
                    .flatten()
            }
        };
        let Some(item) = next else { break };
        counted += usize::from(counts(&item));
        group.push(item);
    }
    group
}

/// A window sized by the rate items have been arriving at: open long enough for about `want`
/// items, within `min..=max`. When even `max` would not bring a second item (a trickle), there
/// is no company to wait for, and the window is `min`.
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    pub want: usize,
    pub min: Duration,
    pub max: Duration,
}

impl Paced {
    /// How long a group stays open at `per_second` items a second.
    pub fn open_for(&self, per_second: f64) -> Duration {
        if per_second * self.max.as_secs_f64() < 2.0 {
            return self.min;
        }
        Duration::from_secs_f64(self.want as f64 / per_second).clamp(self.min, self.max)
    }

    /// The [`Window`] of a group of at most `max` items at `per_second`: open
    /// [`Paced::open_for`] whatever its size.
    pub fn window(&self, max: usize, per_second: f64) -> Window {
        Window {
            max,
            company: 0,
            small_for: Duration::ZERO,
            full_for: self.open_for(per_second),
        }
    }
}

/// Items a second, as last measured over at least a second.
#[derive(Debug)]
pub struct RateMeter {
    since: Instant,
    count: u64,
    per_second: f64,
}

impl RateMeter {
    pub fn new(now: Instant) -> RateMeter {
        RateMeter {
            since: now,
            count: 0,
            per_second: 0.0,
        }
    }

    /// `n` items arrived by `now`.
    pub fn add(&mut self, n: usize, now: Instant) {
        self.count += n as u64;
        let span = now.saturating_duration_since(self.since);
        if span >= Duration::from_secs(1) {
            self.per_second = self.count as f64 / span.as_secs_f64();
            self.since = now;
            self.count = 0;
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::{Window, gather};
    use std::time::Duration;

    const WINDOW: Window = Window {
        max: 5,
        company: 3,
        small_for: Duration::from_millis(60),
        full_for: Duration::from_millis(20),
    };

    #[tokio::test(start_paused = true)]
    async fn a_small_group_waits_longer_than_a_full_one() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        // Small: the second item 50 ms after the first still joins (60 ms window).
        let sender = tokio::spawn({
            let tx = tx.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx.send(2);
            }
        });
        assert_eq!(gather(&mut rx, 1, WINDOW, |_| true).await, vec![1, 2]);
        sender.await.expect("sender");
        // Three queued make the group full: one 30 ms later no longer joins (20 ms window).
        for i in 2..=3 {
            tx.send(i).expect("send");
        }
        let late = tokio::spawn({
            let tx = tx.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let _ = tx.send(9);
            }
        });
        assert_eq!(gather(&mut rx, 1, WINDOW, |_| true).await, vec![1, 2, 3]);
        late.await.expect("late");
        assert_eq!(rx.recv().await, Some(9));
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_max_counted_items_and_uncounted_ones_ride_along() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        for i in 2..=9 {
            tx.send(i).expect("send");
        }
        // Even numbers count: 2, 4, 6, 8 with the first (0) make five.
        let group = gather(&mut rx, 0, WINDOW, |i| i % 2 == 0).await;
        assert_eq!(group, vec![0, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(rx.recv().await, Some(9));
        // A closed channel ends the group at once.
        drop(tx);
        assert_eq!(gather(&mut rx, 1, WINDOW, |_| true).await, vec![1]);
    }

    #[test]
    fn a_paced_window_waits_for_company_only_when_company_comes() {
        use super::Paced;
        let paced = Paced {
            want: 12,
            min: Duration::from_millis(20),
            max: Duration::from_millis(80),
        };
        // 600 items/s: 12 come within the shortest window.
        assert_eq!(paced.open_for(600.0), Duration::from_millis(20));
        assert_eq!(paced.open_for(300.0), Duration::from_millis(40));
        // 150 items/s: the longest window, which brings 12.
        assert_eq!(paced.open_for(150.0), Duration::from_millis(80));
        assert_eq!(paced.open_for(50.0), Duration::from_millis(80));
        // A trickle: fewer than 2 items in the longest window, nothing to wait for.
        assert_eq!(paced.open_for(20.0), Duration::from_millis(20));
        assert_eq!(paced.open_for(0.0), Duration::from_millis(20));
    }

    #[test]
    fn the_rate_is_measured_over_a_second_at_least() {
        use super::RateMeter;
        use tokio::time::Instant;
        let t0 = Instant::now();
        let mut meter = RateMeter::new(t0);
        meter.add(100, t0 + Duration::from_millis(500));
        assert_eq!(meter.per_second(), 0.0, "not a second yet");
        meter.add(50, t0 + Duration::from_millis(1000));
        assert_eq!(meter.per_second(), 150.0);
        // An idle spell: 3 items over 3 s.
        meter.add(3, t0 + Duration::from_millis(4000));
        assert_eq!(meter.per_second(), 1.0);
    }
}
