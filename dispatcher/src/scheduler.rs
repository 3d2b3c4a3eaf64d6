//! Turning dial jobs into Originates, fairly and within every limit.
//!
//! Jobs wait in one in-memory queue per account (bounded by the consumer's prefetch). Each round
//! visits the accounts in turn and takes a few jobs of each, so a small batch of one account is
//! not stuck behind another account's million. For the jobs taken: a server is chosen (connected,
//! with free channels, least loaded relative to its capacity), the jobs are claimed in PostgreSQL
//! ([`crate::claim`]), acknowledged, and each claimed call is originated at its pacing slot (the
//! later of the account's shared slot, the platform's, and the server's own) once the send gate
//! confirmed it was not taken back by a pause or a cancel meanwhile ([`crate::send_gate`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dialer_core::db::DbPool;
use dialer_core::dial_outbox::DialJob;
use lapin::Acker;
use lapin::options::BasicAckOptions;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use ami_bridge::AmiError;

use crate::claim::{self, Decision};
use crate::flow::FlowSetup;
use crate::late::{Late, LateCalls, PUT_BACK};
use crate::outcome::AttemptTracker;
use crate::pacer::Pacer;
use crate::pacing;
use crate::placement;
use crate::registry::{LiveAttempt, Registry};
use crate::send_gate::{LEAD, SendGate, WINDOW};
use crate::server::{Server, Servers};
use crate::state::{Claimed, Transition};

/// Jobs taken per round across all accounts waiting: one account alone gets them all, several
/// share them, at least [`MIN_PER_ACCOUNT`] each, so accounts interleave.
const PER_ROUND: usize = 400;
const MIN_PER_ACCOUNT: usize = 20;
/// How long an account at its channel limit is left alone before trying again.
const BLOCKED_FOR: Duration = Duration::from_millis(200);
/// A dial job and the means to acknowledge it.
pub struct Job {
    pub job: DialJob,
    pub acker: Acker,
}

pub struct Scheduler {
    pub pool: DbPool,
    pub dispatcher_id: String,
    pub registry: Arc<Registry>,
    pub servers: Servers,
    pub transitions: mpsc::UnboundedSender<Transition>,
    pub global_cps: Option<f64>,
    /// Each account's own pacing in this process, after its slot in PostgreSQL: a call whose
    /// slot fired late (a busy machine) must not leave right before the next one, or a second
    /// would hold more than the account's rate plus one.
    pub account_pacers: Arc<std::sync::Mutex<HashMap<i64, Pacer>>>,
    /// Confirms each claimed attempt right before its Originate (pause and cancel win over
    /// calls still waiting for their slot).
    pub gate: SendGate,
    /// The flow after the answer: context and media URLs for the Originates.
    pub flow: Arc<FlowSetup>,
    /// Calls put back for reaching their moment late ([`crate::late`]).
    pub late: Arc<LateCalls>,
}

impl Scheduler {
    pub async fn run(self, mut jobs: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
        let mut queues: HashMap<i64, VecDeque<Job>> = HashMap::new();
        let mut order: VecDeque<i64> = VecDeque::new();
        let mut blocked: HashMap<i64, Instant> = HashMap::new();
        let mut progressed = false;
        // Each account's calls per second, as last seen in a claim: a round takes about one
        // second of an account's calls at most, so claimed calls waiting for their slot do not
        // hold channels another account could use.
        let mut rates: HashMap<i64, usize> = HashMap::new();
        loop {
            let idle = queues.values().all(VecDeque::is_empty);
            // Straight on while the last round did something; otherwise wait for a job or a
            // tick (capacity frees up as calls end).
            let pause = if progressed {
                Duration::ZERO
            } else if idle {
                Duration::from_millis(200)
            } else {
                Duration::from_millis(10)
            };
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                job = jobs.recv() => match job {
                    Some(j) => enqueue(&mut queues, &mut order, j),
                    None => return,
                },
                _ = tokio::time::sleep(pause) => {}
            }
            progressed = false;
            while let Ok(j) = jobs.try_recv() {
                enqueue(&mut queues, &mut order, j);
            }
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            let waiting = queues.values().filter(|q| !q.is_empty()).count().max(1);
            let per_account = (PER_ROUND / waiting).max(MIN_PER_ACCOUNT);
            for _ in 0..order.len() {
                let Some(account) = order.pop_front() else {
                    break;
                };
                order.push_back(account);
                if blocked.contains_key(&account) {
                    continue;
                }
                let Some(queue) = queues.get_mut(&account).filter(|q| !q.is_empty()) else {
                    continue;
                };
                // A test-mode account's calls go to simulated PBXs only, a live one's never.
                let test_mode = queue.front().is_some_and(|j| j.job.test_mode);
                let Some(server) = self.choose_server(test_mode) else {
                    continue;
                };
                // Never more than about a second of the account's calls claimed ahead of their
                // slots: they hold channels, and a pause takes them back (the send gate). The
                // account's rate is as fast as its calls can leave only if the servers keep up.
                let rate_cap = rates
                    .get(&account)
                    .copied()
                    .unwrap_or(MIN_PER_ACCOUNT)
                    .min(self.servers_rate(test_mode));
                let ahead = self.registry.unsent_for_account(account);
                if !refill_due(ahead, rate_cap) {
                    continue;
                }
                let n = queue
                    .len()
                    .min(per_account)
                    .min(rate_cap.saturating_sub(ahead))
                    .min(server.free_channels(&self.registry));
                if n == 0 {
                    continue;
                }
                let taken: Vec<Job> = queue.drain(..n).collect();
                server.reserve(taken.len());
                let (back, rate) = self.dispatch(account, taken, &server).await;
                if let Some(rate) = rate {
                    rates.insert(account, rate);
                }
                if back.len() < n {
                    progressed = true;
                }
                if !back.is_empty() {
                    blocked.insert(account, Instant::now() + BLOCKED_FOR);
                    let q = queues.entry(account).or_default();
                    for j in back.into_iter().rev() {
                        // Ahead of its priority's newer jobs, behind any higher one that came.
                        let at = q
                            .iter()
                            .position(|x| x.job.priority <= j.job.priority)
                            .unwrap_or(q.len());
                        q.insert(at, j);
                    }
                }
            }
            queues.retain(|_, q| !q.is_empty());
            order.retain(|a| queues.contains_key(a));
        }
    }

    /// Calls per second the dialable servers of a kind (simulated ones for test mode) take
    /// together (and the platform allows), rounded up: at least one.
    fn servers_rate(&self, test_mode: bool) -> usize {
        let servers: f64 = self.servers.lock().map_or(0.0, |servers| {
            servers
                .values()
                .filter(|s| s.is_dialable() && s.spec.simulated == test_mode)
                .map(|s| s.calls_per_second())
                .sum()
        });
        let rate = self.global_cps.map_or(servers, |g| servers.min(g));
        (rate.ceil() as usize).max(1)
    }

    fn choose_server(&self, test_mode: bool) -> Option<Arc<Server>> {
        let servers = self.servers.lock().ok()?;
        servers
            .values()
            .filter(|s| s.spec.simulated == test_mode)
            .filter(|s| s.is_dialable() && s.free_channels(&self.registry) > 0)
            .min_by(|a, b| {
                a.load(&self.registry)
                    .total_cmp(&b.load(&self.registry))
                    .then(a.spec.id.cmp(&b.spec.id))
            })
            .cloned()
    }

    /// Claims, acknowledges and originates `jobs` of one account on `server`. Returns the jobs
    /// that must wait for the account's channel limit, and the account's calls per second.
    async fn dispatch(
        &self,
        account: i64,
        jobs: Vec<Job>,
        server: &Arc<Server>,
    ) -> (Vec<Job>, Option<usize>) {
        let reserved = jobs.len();
        let dial_jobs: Vec<DialJob> = jobs.iter().map(|j| j.job.clone()).collect();
        let mut conn = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "no database connection; jobs kept");
                server.release(reserved);
                return (jobs, None);
            }
        };
        let now = Utc::now();
        let decisions = match claim::claim(
            &mut conn,
            account,
            &dial_jobs,
            server.spec.id,
            server.spec.simulated,
            &self.dispatcher_id,
            now,
        )
        .await
        {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "claim failed; jobs kept");
                server.release(reserved);
                return (jobs, None);
            }
        };
        let mut back = Vec::new();
        let mut claimed: Vec<Claimed> = Vec::new();
        for (job, decision) in jobs.into_iter().zip(decisions) {
            match decision {
                Decision::NoCapacity => back.push(job),
                Decision::Dial(c) => {
                    claimed.push(*c);
                    ack(job).await;
                }
                Decision::Wait { reason, .. } => {
                    debug!(call = job.job.call_pk, %reason, "call waits");
                    ack(job).await;
                }
                Decision::Ended(_) | Decision::Drop => ack(job).await,
            }
        }
        server.release(reserved - claimed.len());
        if claimed.is_empty() {
            return (back, None);
        }
        // Departures under the account's rate (shared by every dispatcher) and the platform's
        // if limited, decided together, the first one [`LEAD`] from now at the earliest: every
        // call has the time to be confirmed before its moment, so one that is late was held up.
        // The clock is read afresh: the claim may have waited on another dispatcher's lock, and
        // a slot dated before it would fire late, bunched against the next one.
        let rate = f64::from(claimed[0].calls_per_second);
        let rate_per_round = claimed[0].calls_per_second.max(1) as usize;
        let now = Utc::now() + chrono::Duration::from_std(LEAD).unwrap_or_default();
        // Test-mode calls take no share of the platform's rate: they go to simulators.
        let platform = self.global_cps.filter(|_| !server.spec.simulated);
        let slots = match pacing::departures(&mut conn, account, rate, platform, claimed.len(), now)
            .await
        {
            Ok(slots) => slots,
            Err(e) => {
                // The claim is committed, but the calls have no departures: sent anyway they
                // would leave together. Put back, they are claimed again (nobody was dialed).
                warn!(error = %e, calls = claimed.len(), "pacing not reserved; calls put back");
                server.release(claimed.len());
                for c in &claimed {
                    undo_unsent(&self.registry, &self.transitions, c.attempt_id);
                }
                return (back, Some(rate_per_round));
            }
        };
        drop(conn);
        // Set by a limit other dispatchers share: under a platform limit every call; under an
        // account's alone, those its rate held back (not a burst under generous limits).
        let held_from = now + chrono::Duration::from_std(PUT_BACK).unwrap_or_default();
        let paced: Vec<bool> = slots
            .iter()
            .map(|s| platform.is_some() || *s >= held_from)
            .collect();
        // Followed from the claim on: a graceful stop waits for these too, and their channels
        // count against the server from now.
        for c in &claimed {
            self.registry.insert(
                c.attempt_id,
                LiveAttempt::new(
                    c.call_pk,
                    c.account_id,
                    server.spec.id,
                    AttemptTracker::new(),
                    c.ring_timeout_seconds,
                    c.max_call_seconds,
                ),
            );
        }
        server.release(claimed.len());
        let server = server.clone();
        let registry = self.registry.clone();
        let transitions = self.transitions.clone();
        let pacers = self.account_pacers.clone();
        let gate = self.gate.clone();
        let flow = self.flow.clone();
        let late_calls = self.late.clone();
        tokio::spawn(async move {
            for ((c, slot), paced) in claimed.into_iter().zip(slots).zip(paced) {
                let until_slot = (slot - Utc::now()).to_std().unwrap_or_default();
                let at_slot = Instant::now() + until_slot;
                tokio::time::sleep(until_slot.saturating_sub(LEAD)).await;
                let (server, registry, transitions, gate, pacers, flow, late_calls) = (
                    server.clone(),
                    registry.clone(),
                    transitions.clone(),
                    gate.clone(),
                    pacers.clone(),
                    flow.clone(),
                    late_calls.clone(),
                );
                tokio::spawn(async move {
                    let account_at = account_pace(&pacers, account, rate, at_slot);
                    // The server's own slot is taken only once the account's is near: taken at
                    // the claim, calls claimed ahead would hold the server's slots and starve
                    // other accounts' calls that are ready now.
                    tokio::time::sleep_until(before(account_at, LEAD).into()).await;
                    let leave = server.pace_from(account_at);
                    // Confirmed a little ahead of the moment it leaves, whatever it waited for:
                    // a pause answered before that takes it back; the confirmation's round
                    // trip, which varies, does not make the call leave late next to the
                    // following one.
                    tokio::time::sleep_until(before(leave, LEAD + WINDOW).into()).await;
                    if !gate.confirm(c.attempt_id, before(leave, LEAD)).await {
                        // Taken back by a pause or a cancel (then nothing is left to undo), its
                        // batch expired, or the gate could not ask: undone, never sent.
                        debug!(attempt = %c.attempt_id, "not confirmed; not dialed");
                        undo_unsent(&registry, &transitions, c.attempt_id);
                        return;
                    }
                    let confirmed = Instant::now();
                    tokio::time::sleep_until(leave.into()).await;
                    let now = Instant::now();
                    let late = now.saturating_duration_since(leave);
                    let stalled = now.saturating_duration_since(leave.max(confirmed));
                    match late_calls.judge(c.call_pk, late, stalled, now, paced) {
                        Late::OnTime => {}
                        Late::Respace => {
                            let leave = server.pace_from(account_pace(&pacers, account, rate, now));
                            tokio::time::sleep_until(leave.into()).await;
                        }
                        Late::PutBack => {
                            // Claimed again rather than sent next to the calls after it (a no-op
                            // if another dispatcher settled it meanwhile).
                            debug!(attempt = %c.attempt_id, late_ms = late.as_millis() as u64, "late for its Originate; put back");
                            metrics::counter!("dialer_originates_put_back_late_total", "server" => server.spec.code.clone())
                                .increment(1);
                            undo_unsent(&registry, &transitions, c.attempt_id);
                            return;
                        }
                    }
                    // Each Originate leaves at its own slot: waiting for the previous response
                    // would make every later call late, and late calls bunch up.
                    originate(&server, &registry, &transitions, &flow, c).await;
                });
            }
        });
        (back, Some(rate_per_round))
    }
}

/// Whether an account with `ahead` calls claimed and not yet sent, out of `cap` allowed, is
/// claimed for again: only once half of them have left. Topped up one call at a time (a call
/// leaves, one is claimed), a paced account took a claim transaction per call; refilled by
/// halves, a claim takes half a second of calls (issue 13).
fn refill_due(ahead: usize, cap: usize) -> bool {
    ahead * 2 <= cap
}

/// An attempt that will not be sent: no longer followed, and undone like a call not placed
/// (its call dialed again at once, ended if its batch expired or was cancelled; nothing if a
/// pause or a cancel already took it back).
fn undo_unsent(
    registry: &Registry,
    transitions: &mpsc::UnboundedSender<Transition>,
    attempt: uuid::Uuid,
) {
    registry.withdraw(&attempt);
    let _ = transitions.send(Transition::NotPlaced {
        attempt,
        due: Utc::now(),
    });
}

/// `at` moved earlier by `lead` (or left as it is when that is not representable).
fn before(at: Instant, lead: Duration) -> Instant {
    at.checked_sub(lead).unwrap_or(at)
}

/// When this account's next call may leave this process, `from` on (taken now).
fn account_pace(
    pacers: &std::sync::Mutex<HashMap<i64, Pacer>>,
    account: i64,
    rate: f64,
    from: Instant,
) -> Instant {
    let from = from.max(Instant::now());
    let Ok(mut map) = pacers.lock() else {
        return from;
    };
    let p = map
        .entry(account)
        .or_insert_with(|| Pacer::per_second(Some(rate)));
    p.set_rate(Some(rate));
    p.reserve(from)
}

/// Queues a job behind its account's jobs of the same or a higher batch priority: an account's
/// higher-priority batches dial first, in arrival order within a priority. Accounts still take
/// turns (`order`), so priority never crosses accounts.
fn enqueue(queues: &mut HashMap<i64, VecDeque<Job>>, order: &mut VecDeque<i64>, job: Job) {
    let account = job.job.account_id;
    let q = queues.entry(account).or_default();
    if q.is_empty() && !order.contains(&account) {
        order.push_back(account);
    }
    let at = slot_by_priority(q.iter().map(|j| j.job.priority), job.job.priority);
    q.insert(at, job);
}

/// Where a job of `priority` goes among queued jobs of `queued` priorities (highest first):
/// after the last one of at least its priority. Usually the end, found at once.
fn slot_by_priority<I>(mut queued: I, priority: i32) -> usize
where
    I: DoubleEndedIterator<Item = i32> + ExactSizeIterator,
{
    queued.rposition(|p| p >= priority).map_or(0, |i| i + 1)
}

async fn ack(job: Job) {
    if let Err(e) = job.acker.ack(BasicAckOptions::default()).await {
        // The broker will redeliver it; the claim makes that harmless.
        warn!(error = %e, call = job.job.call_pk, "ack failed");
    }
}

async fn originate(
    server: &Server,
    registry: &Registry,
    transitions: &mpsc::UnboundedSender<Transition>,
    flow: &FlowSetup,
    c: Claimed,
) {
    // Registered at the claim, before the Originate leaves: its first events can arrive before
    // the response. An attempt no longer followed was ended while it waited for its slot (its
    // outcome is recorded): sending it now would place a call nobody follows.
    if !registry.mark_sent(&c.attempt_id) {
        warn!(attempt = %c.attempt_id, "attempt ended before its slot; not dialed");
        return;
    }
    match server.originate(&c, flow).await {
        Ok(()) => {}
        Err(e) => {
            if let Some(why) = placement::not_placed(&e) {
                // Nobody was dialed: the call goes back to be dialed again.
                if placement::is_shutting_down(&e) {
                    server.shutting_down();
                }
                warn!(attempt = %c.attempt_id, server = %server.spec.code, %why, "call not placed; dialed again later");
                metrics::counter!("dialer_originates_not_placed_total", "server" => server.spec.code.clone())
                    .increment(1);
                if let Some(t) = registry.not_placed(&c.attempt_id) {
                    let _ = transitions.send(t);
                }
            } else if let AmiError::ActionFailed { message, .. } = e {
                if let Some(t) =
                    registry.refused(&c.attempt_id, format!("Originate refused: {message}"))
                {
                    let _ = transitions.send(t);
                }
            } else {
                // Sent, but no answer: the PBX may be dialing. Its events, a reconcile after a
                // reconnect, or the guard time will settle it.
                warn!(error = %e, server = %server.spec.code, "Originate without a response");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{refill_due, slot_by_priority};

    #[test]
    fn claims_refill_by_halves() {
        // 50 calls/s: nothing is claimed while more than 25 wait for their slots.
        assert!(!refill_due(26, 50));
        assert!(refill_due(25, 50));
        assert!(refill_due(0, 50));
        // One call a second: the next is claimed once the last has left.
        assert!(refill_due(0, 1));
        assert!(!refill_due(1, 1));
    }

    /// Inserts priorities one by one as `enqueue` does; returns the queue.
    fn queue(arrivals: &[(i32, char)]) -> Vec<(i32, char)> {
        let mut q: Vec<(i32, char)> = Vec::new();
        for &(p, name) in arrivals {
            let at = slot_by_priority(q.iter().map(|(p, _)| *p), p);
            q.insert(at, (p, name));
        }
        q
    }

    #[test]
    fn higher_priority_first_then_arrival_order() {
        let q = queue(&[
            (0, 'a'),
            (0, 'b'),
            (5, 'c'),
            (0, 'd'),
            (5, 'e'),
            (9, 'f'),
            (-1, 'g'),
        ]);
        let names: String = q.iter().map(|(_, n)| *n).collect();
        assert_eq!(names, "fceabdg");
        assert_eq!(slot_by_priority(std::iter::empty(), 3), 0);
    }
}
