//! When an Originate gets its channel. Asterisk makes channels at a finite rate (about 400 SIP
//! calls/s on the recorded 2-core machine): below it `Newchannel` follows the Originate within
//! milliseconds, past it the delay grows and channel creation fails (`OriginateResponse`
//! Reason 0). Modelled as one setup queue served at `capacity_cps`: an Originate starts its
//! setup when the queue is free (so excess Originates wait, and the wait grows with the
//! backlog), one setup every `1 / capacity_cps`; when it finds `max_setup_backlog` setups
//! ahead of it (being made or waiting) it fails at once. On top, a log-normal base latency that does not hold the queue
//! (`setup_latency_ms` median, `setup_latency_p99_ms`), like the real p90 31 ms / p99 74 ms.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::config::SimConfig;

/// z of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_348;

#[derive(Debug)]
pub(crate) struct ChannelSetup {
    /// Time one setup holds the queue; None: no capacity limit.
    interval: Option<Duration>,
    max_backlog: u64,
    /// Median and log-normal sigma of the base latency, in seconds; None: none.
    latency: Option<(f64, f64)>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the queue can start the next setup.
    next_free: Option<Instant>,
    rng: SmallRng,
}

/// The channel of an admitted Originate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted {
    /// When its channel is made (`Newchannel`).
    pub at: Instant,
    /// Setups ahead of it (being made or waiting).
    pub backlog: u64,
}

impl ChannelSetup {
    pub(crate) fn new(cfg: &SimConfig) -> ChannelSetup {
        let interval = cfg
            .capacity_cps
            .map(|cps| Duration::from_secs_f64(1.0 / f64::from(cps.max(1))));
        let max_backlog = cfg
            .max_setup_backlog
            .unwrap_or_else(|| u64::from(cfg.capacity_cps.unwrap_or(0)));
        let latency = (cfg.setup_latency_ms > 0.0).then(|| {
            let median = cfg.setup_latency_ms / 1000.0;
            let p99 = cfg.setup_latency_p99_ms.unwrap_or(cfg.setup_latency_ms) / 1000.0;
            (median, (p99 / median).ln().max(0.0) / Z99)
        });
        ChannelSetup {
            interval,
            max_backlog,
            latency,
            state: Mutex::new(State {
                next_free: None,
                // Its own stream, so the outcome mix stays what it was for a given seed.
                rng: SmallRng::seed_from_u64(cfg.seed ^ 0x5e70_9000_c4a1_u64),
            }),
        }
    }

    /// An empty queue (the PBX restarted).
    pub(crate) fn reset(&self) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_free = None;
    }

    /// Whether every Originate gets its channel at once (today's behaviour, no task needed).
    pub(crate) fn immediate(&self) -> bool {
        self.interval.is_none() && self.latency.is_none()
    }

    /// When the channel of an Originate arriving at `now` is made, or None when the backlog is
    /// full (it fails like a channel Asterisk cannot create).
    pub(crate) fn admit(&self, now: Instant) -> Option<Admitted> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut start = now;
        let mut backlog = 0;
        if let Some(interval) = self.interval {
            let free = st.next_free.map_or(now, |f| f.max(now));
            backlog = (free.duration_since(now).as_nanos() / interval.as_nanos().max(1)) as u64;
            if backlog >= self.max_backlog {
                return None;
            }
            st.next_free = Some(free + interval);
            start = free;
        }
        let jitter = match self.latency {
            Some((median, sigma)) => {
                Duration::from_secs_f64(median * (sigma * normal(&mut st.rng)).exp())
            }
            None => Duration::ZERO,
        };
        Some(Admitted {
            at: start + jitter,
            backlog,
        })
    }
}

/// A standard normal sample (Box-Muller), clamped to +/-5 so one draw cannot stall a call.
fn normal(rng: &mut SmallRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    z.clamp(-5.0, 5.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(
        cps: Option<u32>,
        median: f64,
        p99: Option<f64>,
        backlog: Option<u64>,
    ) -> ChannelSetup {
        ChannelSetup::new(&SimConfig {
            capacity_cps: cps,
            setup_latency_ms: median,
            setup_latency_p99_ms: p99,
            max_setup_backlog: backlog,
            ..Default::default()
        })
    }

    #[test]
    fn without_capacity_or_latency_every_channel_is_made_at_once() {
        let s = setup(None, 0.0, None, None);
        assert!(s.immediate());
        let now = Instant::now();
        for _ in 0..10_000 {
            let a = s.admit(now).expect("no limit");
            assert_eq!((a.at, a.backlog), (now, 0));
        }
    }

    #[test]
    fn a_burst_queues_at_the_capacity_rate_then_overflows() {
        let s = setup(Some(100), 0.0, None, Some(50));
        assert!(!s.immediate());
        let now = Instant::now();
        let admitted: Vec<Admitted> = (0..60).filter_map(|_| s.admit(now)).collect();
        assert_eq!(admitted.len(), 50, "the 51st finds 50 waiting");
        for (i, a) in admitted.iter().enumerate() {
            assert_eq!(a.backlog, i as u64);
            assert_eq!(a.at - now, Duration::from_millis(10) * i as u32);
        }
        // A second later the queue has drained.
        let later = now + Duration::from_secs(1);
        let a = s.admit(later).expect("drained");
        assert_eq!((a.at, a.backlog), (later, 0));
    }

    #[test]
    fn base_latency_has_the_configured_median_and_p99() {
        let s = setup(None, 11.0, Some(74.0), None);
        let now = Instant::now();
        let mut ms: Vec<f64> = (0..20_000)
            .map(|_| (s.admit(now).expect("admitted").at - now).as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let (p50, p90, p99) = (ms[10_000], ms[18_000], ms[19_800]);
        assert!((9.5..12.5).contains(&p50), "p50 {p50}");
        assert!((27.0..36.0).contains(&p90), "p90 {p90}");
        assert!((63.0..86.0).contains(&p99), "p99 {p99}");
    }
}
