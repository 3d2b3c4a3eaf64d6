//! The delivery engine: a claimer takes due events from the database in batches, a dispatcher
//! hands them to per-endpoint queues (a cap on concurrent requests and a circuit per endpoint,
//! so one slow or dead endpoint never holds up another), request tasks send them, and a
//! recorder writes the outcomes back in batches. Nothing waits in a consumer: a retry is a
//! `next_attempt_at` in the database, which is the source of truth; RabbitMQ only prompts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use dialer_core::callbacks::listing::DeliveryAttempt;
use dialer_core::db::DbPool;
use dialer_core::domain::EventType;
use dialer_core::gather;
use dialer_core::prepared::{GENERIC_PLANS_BELOW, plan_generically};
use diesel_async::AsyncConnection;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::{Notify, mpsc, watch};

use crate::circuit::{Circuit, CircuitState};
use crate::claim::{self, ClaimedEvent};
use crate::config::WorkerConfig;
use crate::delivery::{self, AttemptReport};
use crate::endpoints::{Endpoint, EndpointCache};
use crate::record::{self, Outcome, Resolution};
use crate::schedule::NextStep;
use crate::vacuum::{self, Churn};

/// Time a request must still have on its lease when it starts, beyond the request timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// State shared by the engine's tasks and the RabbitMQ prompt consumer.
#[derive(Default)]
pub struct Shared {
    /// Wakes the claimer (a prompt arrived, room was freed, an earlier event was settled).
    pub wake: Notify,
    /// The claimer stopped for want of room (`max_outstanding` claimed and not recorded).
    starved: AtomicBool,
    /// Claim rounds started and finished (prompts are acked once a round that started after
    /// them has finished: by then the database has been looked at for them).
    pub rounds: RoundCounter,
    /// Endpoints not to claim for: circuit open, or enough queued.
    excluded: Mutex<Vec<i64>>,
    /// Claimed events not yet recorded.
    outstanding: AtomicUsize,
    /// The delivery queue changed since it was last vacuumed.
    churn: Arc<Churn>,
    pub stats: Stats,
}

#[derive(Default)]
pub struct RoundCounter {
    pub started: AtomicU64,
    pub finished: watch::Sender<u64>,
}

/// Counters for logs and the benchmark.
#[derive(Default, Debug)]
pub struct Stats {
    pub claimed: AtomicU64,
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub record_statements: AtomicU64,
    pub claim_statements: AtomicU64,
}

/// A claimed event and where it goes.
struct Job {
    event: ClaimedEvent,
    endpoint: Arc<Endpoint>,
}

/// A request task's answer.
struct Finished {
    event: ClaimedEvent,
    endpoint: Arc<Endpoint>,
    attempted_at: DateTime<Utc>,
    report: AttemptReport,
}

enum RecorderMsg {
    Outcome(Outcome),
    Defer {
        account_id: i64,
        until: DateTime<Utc>,
    },
}

pub struct Engine {
    config: WorkerConfig,
    pool: DbPool,
    shared: Arc<Shared>,
}

impl Engine {
    pub fn new(config: WorkerConfig, pool: DbPool) -> Engine {
        Engine {
            config,
            pool,
            shared: Arc::new(Shared::default()),
        }
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs until `stop` turns true: then claims nothing more, gives back queued events, lets
    /// requests in flight finish for up to the shutdown grace, and records their outcomes.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (job_tx, job_rx) = mpsc::unbounded_channel::<Vec<Job>>();
        let (rec_tx, rec_rx) = mpsc::unbounded_channel::<RecorderMsg>();
        let recorder = tokio::spawn(recorder(self.pool.clone(), self.shared.clone(), rec_rx));
        let vacuum = tokio::spawn(vacuum::run(
            self.pool.clone(),
            self.shared.churn.clone(),
            self.config.queue_vacuum,
            stop.clone(),
        ));
        let claimer = tokio::spawn(claimer(
            self.config.clone(),
            self.pool.clone(),
            self.shared.clone(),
            job_tx,
            stop.clone(),
        ));
        let dispatcher = tokio::spawn(dispatcher(
            self.config.clone(),
            self.shared.clone(),
            job_rx,
            rec_tx,
            stop.clone(),
        ));
        let _ = stop.wait_for(|s| *s).await;
        let _ = claimer.await;
        // The dispatcher ends when its last request is done, or is cut off at the deadline
        // (then those events come due again when their lease ends).
        let grace = self.config.shutdown_grace;
        let dispatcher_abort = dispatcher.abort_handle();
        if tokio::time::timeout(grace, dispatcher).await.is_err() {
            tracing::warn!(?grace, "requests still in flight at the shutdown deadline");
            dispatcher_abort.abort();
        }
        let _ = recorder.await;
        let _ = vacuum.await;
    }
}

async fn claimer(
    config: WorkerConfig,
    pool: DbPool,
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Vec<Job>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut cache = EndpointCache::new(config.core.callback_http(), config.account_cache);
    loop {
        if *stop.borrow() {
            return;
        }
        loop {
            let room = config
                .max_outstanding
                .saturating_sub(shared.outstanding.load(Ordering::Acquire));
            if room == 0 {
                shared.starved.store(true, Ordering::Release);
                break;
            }
            let limit = room.min(config.claim_batch);
            match claim_round(&config, &pool, &shared, &mut cache, limit).await {
                Ok(batch) => {
                    let n = batch.len();
                    if n > 0 && jobs.send(batch).is_err() {
                        return;
                    }
                    if n < limit {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming due callback events failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn claim_round(
    config: &WorkerConfig,
    pool: &DbPool,
    shared: &Shared,
    cache: &mut EndpointCache,
    limit: usize,
) -> Result<Vec<Job>, crate::WorkerError> {
    let mut conn = pool.get().await?;
    let excluded = shared
        .excluded
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    let round = shared.rounds.started.fetch_add(1, Ordering::AcqRel) + 1;
    // An account gets at most what saturates its endpoint: more would only wait here.
    let per_account = endpoint_saturation(config);
    let claimed = claim::claim_due(&mut conn, limit, per_account, &excluded, config.lease).await;
    shared.rounds.finished.send_replace(round);
    let claimed = claimed?;
    shared
        .stats
        .claim_statements
        .fetch_add(1, Ordering::Relaxed);
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    shared.churn.mark();
    shared
        .outstanding
        .fetch_add(claimed.len(), Ordering::AcqRel);
    shared
        .stats
        .claimed
        .fetch_add(claimed.len() as u64, Ordering::Relaxed);
    let accounts: Vec<i64> = claimed.iter().map(|e| e.account_id).collect();
    if let Err(e) = cache.refresh(&mut conn, &accounts).await {
        // The claims stand: their leases run out and they are tried again.
        tracing::warn!(error = %e, "reading callback settings failed");
    }
    Ok(claimed
        .into_iter()
        .filter_map(|event| {
            let endpoint = cache.get(event.account_id)?;
            Some(Job { event, endpoint })
        })
        .collect())
}

/// Events queued for one endpoint in this process at which claims for it pause.
fn endpoint_saturation(config: &WorkerConfig) -> usize {
    config.endpoint_concurrency * 4
}

/// One endpoint's queue, requests in flight and circuit.
struct EndpointState {
    queue: VecDeque<Job>,
    in_flight: usize,
    circuit: Circuit,
}

async fn dispatcher(
    config: WorkerConfig,
    shared: Arc<Shared>,
    mut jobs: mpsc::UnboundedReceiver<Vec<Job>>,
    recorder: mpsc::UnboundedSender<RecorderMsg>,
    mut stop: watch::Receiver<bool>,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
    let mut endpoints: HashMap<i64, EndpointState> = HashMap::new();
    let mut excluded: HashSet<i64> = HashSet::new();
    let seed = Utc::now().timestamp_subsec_nanos() as u64 ^ u64::from(std::process::id());
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    let mut in_flight_total = 0usize;
    // Queued work of a saturated endpoint is bounded by this; claims for it pause meanwhile.
    let saturation = endpoint_saturation(&config);
    let send = |msg: RecorderMsg| {
        let _ = recorder.send(msg);
    };
    loop {
        let mut touched: Vec<i64> = Vec::new();
        tokio::select! {
            batch = jobs.recv(), if !stopping => {
                let Some(batch) = batch else { stopping = true; continue };
                for job in batch {
                    if let Some(reason) = skip_reason(&job) {
                        send(RecorderMsg::Outcome(Outcome {
                            event_pk: job.event.id,
                            lease_token: job.event.lease_token,
                            resolution: Resolution::Skipped(reason),
                            attempt: None,
                        }));
                        continue;
                    }
                    let account = job.event.account_id;
                    endpoints
                        .entry(account)
                        .or_insert_with(|| EndpointState {
                            queue: VecDeque::new(),
                            in_flight: 0,
                            circuit: Circuit::new(config.circuit),
                        })
                        .queue
                        .push_back(job);
                    touched.push(account);
                }
            }
            Some(done) = done_rx.recv() => {
                in_flight_total -= 1;
                let account = done.event.account_id;
                touched.push(account);
                let now = Instant::now();
                let delivered = done.report.delivered();
                shared.stats.attempts.fetch_add(1, Ordering::Relaxed);
                let mut opened_until = None;
                if let Some(state) = endpoints.get_mut(&account) {
                    state.in_flight -= 1;
                    if delivered {
                        if !state.circuit.is_pristine() {
                            crate::metrics::circuit(account, false);
                        }
                        state.circuit.on_success();
                    } else if let Some(until) = state.circuit.on_failure(now) {
                        opened_until = Some(until);
                    }
                }
                let resolution = if delivered {
                    shared.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    Resolution::Delivered
                } else {
                    match config.schedule.after_failure(done.event.tries_since_replay(), &mut rng) {
                        NextStep::RetryAfter(d) => Resolution::RetryAt(done.attempted_at + d),
                        NextStep::GiveUp => {
                            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                            Resolution::Failed
                        }
                    }
                };
                send(RecorderMsg::Outcome(outcome_of(done, resolution)));
                if let Some(until) = opened_until {
                    let until_utc = Utc::now() + until.saturating_duration_since(now);
                    tracing::warn!(account_id = account, ?until_utc, "callback endpoint circuit opened");
                    crate::metrics::circuit(account, true);
                    if let Some(state) = endpoints.get_mut(&account) {
                        release_all(&mut state.queue, until_utc, &send);
                    }
                    send(RecorderMsg::Defer { account_id: account, until: until_utc });
                }
            }
            _ = tick.tick() => {
                touched.extend(endpoints.keys().copied());
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
            }
        }
        if stopping {
            // Queued events go back now, for this worker's successor or another worker,
            // and so do claims still on their way from the claimer.
            let now = Utc::now();
            while let Ok(batch) = jobs.try_recv() {
                let mut queue: VecDeque<Job> = batch.into();
                release_all(&mut queue, now, &send);
            }
            for state in endpoints.values_mut() {
                release_all(&mut state.queue, now, &send);
            }
            if in_flight_total == 0 {
                return;
            }
            continue;
        }
        touched.sort_unstable();
        touched.dedup();
        let now = Instant::now();
        let mut excluded_changed = false;
        for account in touched {
            let Some(state) = endpoints.get_mut(&account) else {
                continue;
            };
            let allowance =
                state
                    .circuit
                    .allowance(now, config.endpoint_concurrency, state.in_flight);
            let mut started = 0;
            while started < allowance {
                let Some(job) = state.queue.pop_front() else {
                    break;
                };
                // A job that waited so long that its lease could end mid-request goes back
                // instead: another claim of it would send it twice at once.
                let left = (job.event.lease_token - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                if left < config.core.callback_timeout + LEASE_MARGIN {
                    send(RecorderMsg::Outcome(Outcome {
                        event_pk: job.event.id,
                        lease_token: job.event.lease_token,
                        resolution: Resolution::Released(Utc::now()),
                        attempt: None,
                    }));
                    continue;
                }
                started += 1;
                state.circuit.on_start();
                state.in_flight += 1;
                in_flight_total += 1;
                tokio::spawn(attempt(job, done_tx.clone()));
            }
            let open = matches!(state.circuit.state(), CircuitState::Open { .. });
            let exclude = open || state.queue.len() + state.in_flight >= saturation;
            excluded_changed |= if exclude {
                excluded.insert(account)
            } else {
                excluded.remove(&account)
            };
            if !exclude
                && state.queue.is_empty()
                && state.in_flight == 0
                && state.circuit.is_pristine()
            {
                endpoints.remove(&account);
            }
        }
        if excluded_changed {
            if let Ok(mut shared_excluded) = shared.excluded.lock() {
                *shared_excluded = excluded.iter().copied().collect();
            }
            shared.wake.notify_one();
        }
    }
}

/// Why an event is not to be sent. Such events are stored `skipped` when written, with these
/// reasons (the `call_events_skip_undeliverable` trigger, migration
/// `2026-12-06-000001_callback_queue`); this catches what changed after: a URL cleared, batch
/// events unsubscribed.
fn skip_reason(job: &Job) -> Option<String> {
    if job.event.event_type == EventType::BatchCompleted && !job.endpoint.batch_events {
        return Some("the account does not subscribe to batch events".into());
    }
    if job.endpoint.url_text.is_none() {
        return Some("the account has no callback URL".into());
    }
    None
}

fn release_all(queue: &mut VecDeque<Job>, at: DateTime<Utc>, send: &impl Fn(RecorderMsg)) {
    for job in queue.drain(..) {
        send(RecorderMsg::Outcome(Outcome {
            event_pk: job.event.id,
            lease_token: job.event.lease_token,
            resolution: Resolution::Released(at),
            attempt: None,
        }));
    }
}

fn outcome_of(done: Finished, resolution: Resolution) -> Outcome {
    let report = done.report;
    Outcome {
        event_pk: done.event.id,
        lease_token: done.event.lease_token,
        resolution,
        attempt: Some(DeliveryAttempt {
            attempt: done.event.attempt_number(),
            attempted_at: done.attempted_at,
            url: done.endpoint.url_text.clone().unwrap_or_default(),
            status_code: report.status_code.map(i32::from),
            error: report.error,
            latency_ms: Some(report.latency.as_millis().min(i32::MAX as u128) as i32),
            response_head: report.response_head,
        }),
    }
}

/// Signs afresh (this attempt's timestamp) and sends.
async fn attempt(job: Job, done: mpsc::UnboundedSender<Finished>) {
    let Job {
        mut event,
        endpoint,
    } = job;
    let attempted_at = Utc::now();
    let report = match &endpoint.target {
        Ok(target) => {
            let signature = target
                .keys
                .sign(&event.event_id, event.body.as_bytes(), attempted_at);
            // The body goes out as stored; the event keeps no copy (it is not needed again).
            let body = Bytes::from(std::mem::take(&mut event.body));
            delivery::post(&target.client, &target.url, &signature, body).await
        }
        Err(reason) => AttemptReport::refused(reason.clone()),
    };
    let _ = done.send(Finished {
        event,
        endpoint,
        attempted_at,
        report,
    });
}

async fn recorder(
    pool: DbPool,
    shared: Arc<Shared>,
    mut inbox: mpsc::UnboundedReceiver<RecorderMsg>,
) {
    // A statement costs about the same for 1 outcome as for 8: at low rates a few go together,
    // waiting 30 ms at most (the POSTs are done; only the next event of the same call waits).
    const GROUP: gather::Window = gather::Window {
        max: 2000,
        company: 8,
        small_for: Duration::from_millis(30),
        full_for: Duration::ZERO,
    };
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(GROUP.max);
    let mut defers: Vec<(i64, DateTime<Utc>)> = Vec::new();
    while let Some(first) = inbox.recv().await {
        let counts = |m: &RecorderMsg| matches!(m, RecorderMsg::Outcome(_));
        for msg in gather::gather(&mut inbox, first, GROUP, counts).await {
            match msg {
                RecorderMsg::Outcome(o) => outcomes.push(o),
                RecorderMsg::Defer { account_id, until } => defers.push((account_id, until)),
            }
        }
        let mut failures = 0u32;
        let rounds_before = shared.rounds.started.load(Ordering::Acquire);
        // Whether the claimer has anything new to find: events that waited behind the settled
        // ones. Unknown after a failure: wake it anyway.
        let mut followers = true;
        let mut written = false;
        loop {
            match write(&pool, &outcomes, &defers).await {
                Ok(recorded) => {
                    followers = recorded.followers > 0;
                    written = true;
                    break;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "recording callback outcomes failed; retrying");
                    if failures >= 20 {
                        // The claims' leases run out and those events are tried again.
                        tracing::error!(events = outcomes.len(), "giving up recording outcomes");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8))))
                        .await;
                }
            }
        }
        if written {
            crate::metrics::recorded(&outcomes);
        }
        shared
            .stats
            .record_statements
            .fetch_add(1, Ordering::Relaxed);
        shared.churn.mark();
        shared
            .outstanding
            .fetch_sub(outcomes.len(), Ordering::AcqRel);
        outcomes.clear();
        defers.clear();
        // Woken only when there may be something to claim: the next event of a call that was
        // waiting for this one, room freed for a claimer that had none, or a claim that ran
        // while this statement was open (it may have found a settled event still queued). A
        // claim after every statement cost a round trip per 8 outcomes at low rates; new
        // events bring their own prompt, and the poll covers the rest.
        let raced = shared.rounds.started.load(Ordering::Acquire) != rounds_before;
        let starved = shared.starved.swap(false, Ordering::AcqRel);
        if followers || raced || starved {
            shared.wake.notify_one();
        }
    }
}

async fn write(
    pool: &DbPool,
    outcomes: &[Outcome],
    defers: &[(i64, DateTime<Utc>)],
) -> Result<record::Recorded, crate::WorkerError> {
    let mut conn = pool.get().await?;
    conn.transaction::<_, crate::WorkerError, _>(async |conn| {
        if outcomes.len() < GENERIC_PLANS_BELOW {
            plan_generically(conn).await?;
        }
        let recorded = record::record(conn, outcomes).await?;
        for (account_id, until) in defers {
            claim::defer_account(conn, *account_id, *until).await?;
        }
        Ok(recorded)
    })
    .await
}
