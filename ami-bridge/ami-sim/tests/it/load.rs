//! Ring and talk times under load, and capacity: Originate-to-Newchannel latency that stays in
//! milliseconds below `capacity_cps` and grows past it, with `Reason 0` failures. The capacity
//! tests run on paused tokio time, so the simulator's own figures are exact and the machine's
//! load does not matter; what the client sees is late by at most the next timer.

use std::collections::HashMap;
use std::time::Duration;

use ami_bridge::Message;
use ami_sim::{OutcomeKind, Rule, SimConfig};
use tokio::time::Instant;

use crate::helpers::*;

/// A logged-in connection that stamps each message with when it was read.
struct Stamped {
    c: Conn,
    at: Vec<Instant>,
}

impl Stamped {
    async fn read_until(&mut self, deadline: Instant) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.c.closed {
                return;
            }
            self.c.read_some(left).await;
            let now = Instant::now();
            self.at.resize(self.c.got.len(), now);
        }
    }

    fn events(&self, name: &str) -> impl Iterator<Item = (&Message, Instant)> + '_ {
        let name = name.to_string();
        self.c
            .got
            .iter()
            .zip(self.at.iter().copied())
            .filter(move |(m, _)| m.event_name() == Some(name.as_str()))
    }
}

fn originate(n: usize) -> Message {
    let id = format!("o-{n:05}");
    let channel = format!("PJSIP/1{n:06}@trunk");
    let uid = format!("load-{n:05}");
    Message::from_pairs(&[
        ("Action", "Originate"),
        ("ActionID", id.as_str()),
        ("Channel", channel.as_str()),
        ("Context", "dialer-out"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", "30000"),
        ("ChannelId", uid.as_str()),
        ("Async", "true"),
    ])
}

/// What a run saw: per call, Originate sent to Newchannel read; OriginateResponse reasons.
struct Run {
    latencies: Vec<(usize, Duration)>,
    reasons: HashMap<String, usize>,
    stats: ami_sim::StatsSnapshot,
}

/// Sends `rate` Originates/s for `seconds`, evenly, reading meanwhile; then waits for the end.
async fn run(cfg: SimConfig, rate: u32, seconds: u32) -> Run {
    let sim = start(cfg).await;
    let mut s = Stamped {
        c: Conn::login(sim.addr()).await,
        at: Vec::new(),
    };
    let interval = Duration::from_secs(1) / rate;
    let began = Instant::now();
    let total = (rate * seconds) as usize;
    let mut sent_at = Vec::with_capacity(total);
    for n in 0..total {
        sent_at.push(Instant::now());
        s.c.send(&originate(n)).await;
        s.read_until(began + interval * (n as u32 + 1)).await;
    }
    s.read_until(Instant::now() + Duration::from_secs(10)).await;
    let latencies = s
        .events("Newchannel")
        .filter_map(|(m, at)| {
            let n: usize = m.get("Uniqueid")?.strip_prefix("load-")?.parse().ok()?;
            Some((n, at - sent_at[n]))
        })
        .collect();
    let mut reasons = HashMap::new();
    for (m, _) in s.events("OriginateResponse") {
        *reasons
            .entry(m.get("Reason").unwrap_or("").to_string())
            .or_default() += 1;
    }
    let stats = sim.stats();
    sim.shutdown().await;
    Run {
        latencies,
        reasons,
        stats,
    }
}

fn load_config(capacity: u32) -> SimConfig {
    SimConfig {
        capacity_cps: Some(capacity),
        setup_latency_ms: 11.0,
        setup_latency_p99_ms: Some(74.0),
        rules: vec![Rule::timed("*", OutcomeKind::Answered, 100, 200)],
        ..replay_config()
    }
}

#[tokio::test(start_paused = true)]
async fn below_capacity_newchannel_follows_within_milliseconds() {
    let r = run(load_config(50), 25, 4).await;
    assert_eq!(r.latencies.len(), 100, "every call got its channel");
    assert_eq!(r.reasons.get("4"), Some(&100), "{:?}", r.reasons);
    assert_eq!(r.stats.capacity_failures, 0);
    assert!(r.stats.setup_backlog_peak <= 1, "{:?}", r.stats);
    let l = r.stats.setup_latency;
    assert_eq!(l.count, 100);
    // The base latency only: median 11 ms, p99 74 ms configured.
    assert!((5_000..25_000).contains(&l.p50_us), "{l:?}");
    assert!(l.p99_us < 250_000, "{l:?}");
    let worst = r
        .latencies
        .iter()
        .map(|(_, d)| *d)
        .max()
        .unwrap_or_default();
    assert!(worst < Duration::from_millis(300), "client saw {worst:?}");
}

#[tokio::test(start_paused = true)]
async fn past_capacity_latency_grows_and_reason_0_failures_appear() {
    // 150/s offered to a PBX making 50 channels/s, for 3 s; at most 50 wait (1 s).
    let r = run(load_config(50), 150, 3).await;
    let failed = r.reasons.get("0").copied().unwrap_or(0);
    let answered = r.reasons.get("4").copied().unwrap_or(0);
    assert_eq!(failed + answered, 450, "{:?}", r.reasons);
    assert_eq!(failed as u64, r.stats.capacity_failures);
    assert_eq!(
        r.stats.outcomes.get("setup_backlog"),
        Some(&(failed as u64))
    );
    // About 50/s served over ~4 s; the rest refused.
    assert!((150..=320).contains(&failed), "{:?}", r.reasons);
    assert_eq!(r.stats.setup_backlog_peak, 49);
    // The first calls see milliseconds, the queue then holds them up to a second.
    let first: Vec<Duration> = r
        .latencies
        .iter()
        .filter(|(n, _)| *n < 5)
        .map(|(_, d)| *d)
        .collect();
    assert!(
        first.iter().all(|d| *d < Duration::from_millis(150)),
        "{first:?}"
    );
    let l = r.stats.setup_latency;
    assert!(l.p90_us > 700_000 && l.max_us < 1_500_000, "{l:?}");
    let late = r.latencies.iter().filter(|(n, _)| *n > 300).count();
    assert!(late > 0, "calls late in the run still got channels");
    assert!(
        r.latencies
            .iter()
            .filter(|(n, _)| *n > 300)
            .all(|(_, d)| *d > Duration::from_millis(600)),
        "late calls wait behind the backlog"
    );
}

/// A full backlog refuses an async Originate with Reason 0 and a sync one with
/// `Originate failed`; a waiting one gets its channel when the queue reaches it.
#[tokio::test(start_paused = true)]
async fn a_full_backlog_refuses_async_and_sync_originates() {
    let cfg = SimConfig {
        capacity_cps: Some(1),
        max_setup_backlog: Some(2),
        ..load_config(1)
    };
    let sim = start(cfg).await;
    let mut c = Conn::login(sim.addr()).await;
    c.send(&originate(0)).await;
    c.send(&originate(1)).await;
    c.send(&originate(2)).await;
    let mut sync = originate(3);
    sync = Message::from_pairs(
        &sync
            .iter()
            .filter(|(k, _)| *k != "Async")
            .collect::<Vec<_>>(),
    );
    c.send(&sync).await;
    let refused = c
        .wait_for(Duration::from_secs(5), |m| {
            m.get("Message") == Some("Originate failed")
        })
        .await;
    assert!(refused.is_some(), "{:?}", labels(&c.got));
    let orr = |c: &Conn, id: &str| {
        c.got
            .iter()
            .find(|m| m.event_name() == Some("OriginateResponse") && m.action_id() == Some(id))
            .cloned()
    };
    c.wait_for(Duration::from_secs(5), |m| {
        m.event_name() == Some("Hangup") && m.get("Uniqueid") == Some("load-00001")
    })
    .await
    .expect("the waiting call ran");
    assert!(orr(&c, "o-00002").is_some_and(|m| m.get("Reason") == Some("0")));
    assert!(orr(&c, "o-00000").is_some_and(|m| m.get("Reason") == Some("4")));
    assert!(orr(&c, "o-00001").is_some_and(|m| m.get("Reason") == Some("4")));
    assert_eq!(sim.stats().capacity_failures, 2);
    sim.shutdown().await;
}

/// Top-level `ring_ms`/`talk_ms` time an answered call: Newchannel, ring, answer (Newstate
/// Up), talk, Hangup. Real time, wide tolerances.
#[tokio::test]
async fn answered_call_rings_and_talks_for_the_configured_times() {
    let sim = start(SimConfig {
        ring_ms: Some(400),
        talk_ms: Some(800),
        ..SimConfig {
            rules: Vec::new(),
            ..replay_config()
        }
    })
    .await;
    let mut s = Stamped {
        c: Conn::login(sim.addr()).await,
        at: Vec::new(),
    };
    s.c.send(&originate(1)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.events("Hangup").next().is_none() && Instant::now() < deadline {
        let step = Instant::now() + Duration::from_millis(20);
        s.read_until(step).await;
    }
    let at = |name: &str, state: Option<&str>| {
        s.events(name)
            .find(|(m, _)| state.is_none_or(|st| m.get("ChannelStateDesc") == Some(st)))
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("{name} {state:?}: {:?}", labels(&s.c.got)))
    };
    let created = at("Newchannel", None);
    let answered = at("Newstate", Some("Up"));
    let hangup = at("Hangup", None);
    let ring = answered - created;
    let talk = hangup - answered;
    assert!(
        ring >= Duration::from_millis(380) && ring < Duration::from_millis(1500),
        "ring {ring:?}"
    );
    assert!(
        talk >= Duration::from_millis(780) && talk < Duration::from_millis(2000),
        "talk {talk:?}"
    );
    // The dialplan's Wait shows the talk time.
    assert!(
        s.c.got
            .iter()
            .any(|m| m.get("Application") == Some("Wait") && m.get("AppData") == Some("0.8")),
        "{:?}",
        labels(&s.c.got)
    );
    sim.shutdown().await;
}

/// Originates still waiting for a channel die with the PBX: after a restart they never get one.
#[tokio::test(start_paused = true)]
async fn a_restart_forgets_the_originates_waiting_for_a_channel() {
    let sim = start(SimConfig {
        capacity_cps: Some(1),
        max_setup_backlog: Some(5),
        ..load_config(1)
    })
    .await;
    let mut c = Conn::login(sim.addr()).await;
    for n in 0..3 {
        c.send(&originate(n)).await;
    }
    c.wait_for(Duration::from_secs(5), |m| {
        m.event_name() == Some("Newchannel")
    })
    .await
    .expect("the first gets its channel at once");
    sim.restart().await;
    let mut c = Conn::login(sim.addr()).await;
    let late = c
        .wait_for(Duration::from_secs(5), |m| m.event_name().is_some())
        .await;
    assert!(late.is_none(), "{:?}", labels(&c.got));
    assert_eq!(sim.stats().outcomes.get("shutting_down"), Some(&2));
    sim.shutdown().await;
}
