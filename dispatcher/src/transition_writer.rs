//! The task that writes every transition the AMI and the guards report, in arrival order and in
//! groups (one transaction each), then prompts the callback worker for the events they queued.
//!
//! Nothing is dropped:
//! - A group that fails while the database is unreachable, restarting or otherwise in trouble is
//!   written again, whole, on a fresh connection, until it passes (200 ms between tries at
//!   first, then up to 5 s). Transitions are guarded by the attempt's state, so one already
//!   written by a commit whose answer was lost is not written twice.
//! - A group the database refuses for a transition's data is written one by one. A transition
//!   refused three times is held, with every later transition of its attempt (their order
//!   matters), and tried again every 30 s until it passes. If the dispatcher stops first, its
//!   attempt is left as a crash leaves it: the next holder of the server settles it.

use std::time::Duration;

use ami_bridge::Backoff;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, warn};
use uuid::Uuid;

use dialer_core::db::{self, DbConn, DbPool};
use dialer_core::event_prompt;
use dialer_core::gather;
use dialer_core::lifecycle::LifecycleError;
use dialer_core::topology::Topology;

use crate::state::{self, Applied, StateError, Transition};

/// Transitions written in one transaction at most. A group costs a fixed handful of statements
/// (see `state::apply_all`), so a backlog drains faster in large groups; the calls of a
/// group stay locked until its commit (about a tenth of a second at this size).
const MAX_TRANSITIONS_PER_WRITE: usize = 2000;

/// How long a group of transitions stays open, from the rate they arrive at. At a paced rate
/// transitions arrive one at a time (the AMI connection reads on a thread of its own), and
/// each group costs the same handful of statements whatever its size: at 50 calls/s nearly
/// every transition was a group of its own, and PostgreSQL's CPU per call was 15 times the
/// burst's (issue 13). A group is open long enough for about 12 transitions: 20 ms from about
/// 200 calls/s (three transitions a call), 80 ms at most, reached at 50 calls/s; a trickle of
/// calls, where not even two transitions come in 80 ms, waits 20 ms. A hang-up's callback
/// leaves that much later at most. Measured with a million events of history (issue 13, fifth
/// pass in `docs/performance.md`): at 50 calls/s, 8 transitions or 60 ms gave 2.3 s of
/// PostgreSQL CPU per 1,000 calls and a hang-up-to-callback p99 of 68 ms; 12 or 80 ms, 1.8 s
/// and 90 ms; 16 or 100 ms, 1.6 s and 110 ms.
const PACED: gather::Paced = gather::Paced {
    want: 12,
    min: Duration::from_millis(20),
    max: Duration::from_millis(80),
};

/// Refusals of one transition before it is held.
const REFUSALS_BEFORE_HOLD: u32 = 3;
/// How often held transitions are tried again.
const HELD_RETRY: Duration = Duration::from_secs(30);

/// Applies transitions in arrival order, then prompts the callback worker for the events they
/// queued. Returns once `rx` is closed and drained (graceful stop).
pub(crate) async fn run(
    pool: DbPool,
    channel: lapin::Channel,
    topology: Topology,
    mut rx: mpsc::UnboundedReceiver<Transition>,
    public_url: String,
) {
    let (publish_tx, publish_rx) = mpsc::unbounded_channel::<Vec<i64>>();
    let publisher = tokio::spawn(publisher_loop(channel, topology, publish_rx));
    let mut writer = Writer {
        pool,
        public_url,
        held: Held::default(),
    };
    let mut rate = gather::RateMeter::new(Instant::now());
    loop {
        let next = match writer.held.next_try {
            Some(at) => tokio::select! {
                t = rx.recv() => t,
                _ = tokio::time::sleep_until(at) => {
                    let batches = writer.retry_held().await;
                    prompt(&publish_tx, batches);
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(first) = next else { break };
        let window = PACED.window(MAX_TRANSITIONS_PER_WRITE, rate.per_second());
        let group = gather::gather(&mut rx, first, window, |_| true).await;
        rate.add(group.len(), Instant::now());
        // What an operator watches when callbacks lag: transitions waiting, and how long a
        // group takes to write.
        metrics::gauge!("dialer_state_backlog").set(rx.len() as f64);
        metrics::counter!("dialer_state_transitions_total").increment(group.len() as u64);
        let batches = writer.write(group).await;
        prompt(&publish_tx, batches);
    }
    if !writer.held.list.is_empty() {
        let batches = writer.retry_held().await;
        prompt(&publish_tx, batches);
        for t in &writer.held.list {
            error!(attempt = %t.attempt(), "call state transition not written before the stop; the next holder of its server settles the attempt");
        }
    }
    // Every prompt is sent before the writer reports done (graceful stop).
    drop(publish_tx);
    let _ = publisher.await;
}

fn prompt(tx: &mpsc::UnboundedSender<Vec<i64>>, batches: Vec<i64>) {
    if !batches.is_empty() {
        let _ = tx.send(batches);
    }
}

/// The database refused the transition for its data: the same write fails again.
fn refused(e: &StateError) -> bool {
    match e {
        LifecycleError::Db(e) => db::refused_for_its_data(e),
        LifecycleError::Body(_) => true,
    }
}

/// Delays between tries while the database is in trouble: from 200 ms, doubling up to 5 s,
/// jittered (the AMI client's reconnect backoff).
fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
}

/// Transitions refused for their data, in arrival order, with the later ones of their attempts.
#[derive(Default)]
struct Held {
    list: Vec<Transition>,
    next_try: Option<Instant>,
}

impl Held {
    fn holds(&self, attempt: Uuid) -> bool {
        self.list.iter().any(|t| t.attempt() == attempt)
    }

    fn push(&mut self, t: Transition, why: &str) {
        error!(attempt = %t.attempt(), why, "call state transition held; tried again every {} s", HELD_RETRY.as_secs());
        self.list.push(t);
        self.next_try
            .get_or_insert_with(|| Instant::now() + HELD_RETRY);
        metrics::gauge!("dialer_state_transitions_held").set(self.list.len() as f64);
    }
}

/// The batches to prompt the callback worker for: those where an event entered the delivery
/// queue or the batch completed.
#[derive(Default)]
struct Notes(Vec<i64>);

impl Notes {
    /// Also counts the attempts ended, by disposition (written, so counted once).
    fn note(&mut self, applied: Option<Applied>) {
        if let Some(d) = applied.as_ref().and_then(|a| a.ended) {
            metrics::counter!("dialer_attempt_outcomes_total", "disposition" => d.as_str())
                .increment(1);
        }
        if let Some(a) = applied
            && (a.queued || a.batch_completed)
            && !self.0.contains(&a.batch_pk)
        {
            self.0.push(a.batch_pk);
        }
    }
}

struct Writer {
    pool: DbPool,
    public_url: String,
    held: Held,
}

impl Writer {
    /// A connection, waiting for the database as long as it takes.
    async fn connection(&self) -> DbConn {
        let mut backoff = backoff();
        loop {
            match self.pool.get().await {
                Ok(c) => return c,
                Err(e) => {
                    warn!(error = %e, "no database connection for call state; trying again");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Writes `group` (what of it does not wait behind a held transition); returns the batches
    /// to prompt for.
    async fn write(&mut self, group: Vec<Transition>) -> Vec<i64> {
        let mut notes = Notes::default();
        let (group, waiting): (Vec<Transition>, Vec<Transition>) = group
            .into_iter()
            .partition(|t| !self.held.holds(t.attempt()));
        for t in waiting {
            self.held.push(t, "behind a held transition of its attempt");
        }
        if group.is_empty() {
            return notes.0;
        }
        let mut backoff = backoff();
        loop {
            let mut conn = self.connection().await;
            let started = std::time::Instant::now();
            let result = state::apply_all(&mut conn, &group, &self.public_url).await;
            metrics::histogram!("dialer_state_write_seconds")
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(all) => {
                    all.into_iter().for_each(|a| notes.note(a));
                    return notes.0;
                }
                Err(e) if refused(&e) => {
                    warn!(error = %e, "grouped call state write refused; one by one");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, transitions = group.len(), "call state write failed; writing the group again");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
        for t in group {
            self.one_or_hold(t, &mut notes).await;
        }
        notes.0
    }

    /// One transition written, or held when it is refused again and again (or when an earlier
    /// one of its attempt is held).
    async fn one_or_hold(&mut self, t: Transition, notes: &mut Notes) {
        if self.held.holds(t.attempt()) {
            return self.held.push(t, "behind a held transition of its attempt");
        }
        let mut refusals = 0;
        let mut backoff = backoff();
        loop {
            let mut conn = self.connection().await;
            match state::apply(&mut conn, &t, &self.public_url).await {
                Ok(applied) => return notes.note(applied),
                Err(e) if refused(&e) => {
                    refusals += 1;
                    warn!(error = %e, attempt = %t.attempt(), refusals, "call state write refused");
                    if refusals >= REFUSALS_BEFORE_HOLD {
                        return self.held.push(t, "refused by the database");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    warn!(error = %e, attempt = %t.attempt(), "call state write failed; trying again");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Every held transition tried again, in order; returns the batches to prompt for.
    async fn retry_held(&mut self) -> Vec<i64> {
        let list = std::mem::take(&mut self.held.list);
        self.held.next_try = None;
        let mut notes = Notes::default();
        for t in list {
            self.one_or_hold(t, &mut notes).await;
        }
        metrics::gauge!("dialer_state_transitions_held").set(self.held.list.len() as f64);
        notes.0
    }
}

/// Prompts for the events of committed groups while the writer writes the next one: the batches
/// of every group that finished meanwhile go in one prompt.
async fn publisher_loop(
    channel: lapin::Channel,
    topology: Topology,
    mut rx: mpsc::UnboundedReceiver<Vec<i64>>,
) {
    while let Some(mut batches) = rx.recv().await {
        while let Ok(more) = rx.try_recv() {
            for b in more {
                if !batches.contains(&b) {
                    batches.push(b);
                }
            }
        }
        if let Err(e) = event_prompt::prompt(&channel, &topology, &batches).await {
            // The events are in the delivery queue: the worker's poll finds them.
            warn!(error = %e, "callback prompt failed");
        }
    }
}
