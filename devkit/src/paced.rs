//! `dialer-devkit bench --cps R` (also `dialerctl bench --cps R`): a paced run, the way a PBX is
//! really driven. One Asterisk server with `max_cps` R (a simulator whose callees ring and talk
//! for the given times, or a real PBX given with `--pbx`), every other limit off, a batch of
//! calls dialed at that pace. Prints what the run held: answered calls per second through the
//! run and the lowest 10-second mean, how the server's capacity factor moved, calls that did not
//! end answered, PostgreSQL CPU per 1,000 calls above its idle baseline, and hang-up to callback
//! latency.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use tokio::sync::watch;

use dialer_api::ops::accounts::AccountUpdate;
use dialer_core::Config;
use dialer_core::db::DbPool;
use dialer_core::domain::BatchStatus;

use crate::api_client::ApiClient;
use crate::pg_cpu::PgServer;
use crate::pg_transactions;
use crate::platform::{self, Binaries, Processes, ServiceEnv, SimSpec};
use crate::rate_windows::{min_window_mean, per_second, quantile};
use crate::receiver::Receiver;
use crate::seed::{self, ServerSeed};
use crate::{bench, dispatcher_metrics, history, report};

/// A real PBX to drive instead of a simulator.
#[derive(Debug, Clone)]
pub struct ExternalPbx {
    pub addr: SocketAddr,
    pub username: String,
    pub secret: String,
    /// e.g. `SIP/{number}@trunk-answer`.
    pub channel_template: String,
}

pub struct PacedOptions {
    /// The server's `max_cps`.
    pub cps: u32,
    pub calls: usize,
    /// Simulated callees: ring, then talk (ignored with `pbx`).
    pub ring_ms: u64,
    pub talk_ms: u64,
    /// The simulated PBX's channel setups per second (past it: latency grows, then `Reason 0`).
    pub sim_capacity_cps: u32,
    /// Callbacks to a receiver that answers at once; without, the account has no URL.
    pub callbacks: bool,
    /// Delivered events written before the run, as a platform that has been running has.
    pub history_events: usize,
    /// How long PostgreSQL's idle CPU is measured before dialing.
    pub idle: Duration,
    pub pbx: Option<ExternalPbx>,
    pub database: String,
    pub queue_prefix: String,
    pub timeout: Duration,
}

const ACCOUNT: &str = "PACED";
const BATCH_ID: i64 = 1;
/// Seconds of ramp-up left out of the lowest-window figure.
const RAMP_SECONDS: usize = 2;
const WINDOW_SECONDS: usize = 10;

pub async fn run(config: &Config, opts: PacedOptions) -> anyhow::Result<()> {
    platform::run_interruptible("bench-logs", async |bins, processes| {
        paced(config, &opts, bins, processes).await
    })
    .await
}

async fn paced(
    config: &Config,
    opts: &PacedOptions,
    bins: &Binaries,
    processes: &mut Processes,
) -> anyhow::Result<()> {
    let calls = opts.calls.max(1);
    let (database_url, pool) =
        platform::fresh_run(config, &opts.database, &opts.queue_prefix, "devkit-paced").await?;
    let server = match &opts.pbx {
        Some(p) => ServerSeed {
            code: "pbx".to_owned(),
            host: p.addr.ip().to_string(),
            port: p.addr.port(),
            username: p.username.clone(),
            secret: p.secret.clone(),
            channel_template: p.channel_template.clone(),
        },
        None => {
            let sim_config = write_sim_config(processes.log_dir(), opts)?;
            let spec = SimSpec {
                code: "ast1".to_owned(),
                config: Some(sim_config),
                instant_answer: false,
            };
            let sims = platform::start_sims(bins, processes, &[spec]).await?;
            ServerSeed::of_sim(&sims[0])
        }
    };
    let settings = seed::limits_off(calls);
    let (created, receiver) = if opts.callbacks {
        let (c, r) =
            seed::account_with_receiver(&pool, ACCOUNT, "IN", settings, Duration::ZERO).await?;
        (c, Some(r))
    } else {
        let c = seed::account(&pool, ACCOUNT, "IN", settings).await?;
        seed::clear_callback_url(&pool, ACCOUNT).await?;
        (c, None)
    };
    // Channels for the calls up at once at this pace, with room: the pace is what is measured.
    let hold_secs = (opts.ring_ms + opts.talk_ms) as f64 / 1000.0 + 2.0;
    let channels = ((f64::from(opts.cps) * hold_secs * 2.0) as i32).clamp(100, seed::UNLIMITED);
    let max_cps = i32::try_from(opts.cps).context("--cps")?.max(1);
    seed::server(&pool, &server, channels, max_cps).await?;
    if opts.history_events > 0 {
        let started = Instant::now();
        // An account of its own, so the run's own counts see only the run.
        let old = seed::account(&pool, "HISTORY", "IN", AccountUpdate::default()).await?;
        history::write(&pool, old.account.id, opts.history_events).await?;
        eprintln!(
            "▸ {} delivered events of history written in {:.0} s",
            opts.history_events,
            started.elapsed().as_secs_f64()
        );
    }

    let env = ServiceEnv::quiet(database_url, &config.amqp_url, &opts.queue_prefix);
    let services = platform::start_services(bins, processes, &env, platform::Scale::ONE).await?;
    let client = ApiClient::new(&services.api_url, &created.api_key);
    bench::submit_numbers(&client, BATCH_ID, 0..calls, 50_000, || {}).await?;

    // The platform idle (polls, leases, sweeps) is the baseline taken off the run's figure.
    let pg = PgServer::find(&pool).await;
    let idle_from = pg_transactions::reading(&pool).await;
    let idle_rate = pg.idle_rate(opts.idle).await;
    let run_from = pg_transactions::reading(&pool).await;
    eprintln!(
        "▸ {calls} calls at max_cps {} (PostgreSQL idle: {:.3} CPU s/s); dispatching",
        opts.cps, idle_rate
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let watching = tokio::spawn(watch_dispatcher(
        services.dispatcher_metrics_url.clone(),
        stop_rx,
    ));
    let run_cpu_start = pg.cpu_seconds();
    let dispatched = Instant::now();
    client.dispatch(BATCH_ID).await?;
    let account_id = created.account.id;
    let mut last_print = Instant::now();
    loop {
        processes.check_alive()?;
        // The end is read off the batch row, not the API's batch status: that counts every call
        // of the batch by state, and four times a second it was a cost of this client's, not of
        // the calls (0.3 ms of PostgreSQL per call at 50 calls/s), in the figure per call.
        let done = batch_completed(&pool, account_id).await?
            && match &receiver {
                Some(r) => {
                    r.event_count() as i64 >= report::events(&pool, account_id).await?.written
                }
                None => true,
            };
        if done {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            // A poll can meet a kept-alive connection the API just closed: asked again, once.
            let status = match client.batch_status(BATCH_ID).await {
                Ok(s) => s,
                Err(_) => client.batch_status(BATCH_ID).await?,
            };
            eprintln!(
                "  {:>5.1} s: {} pending",
                dispatched.elapsed().as_secs_f64(),
                status["pending_calls"]
            );
        }
        if dispatched.elapsed() > opts.timeout {
            bail!(
                "not finished after {} s; logs in {}",
                opts.timeout.as_secs(),
                processes.log_dir().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let run_secs = dispatched.elapsed().as_secs_f64();
    let run_cpu = pg.cpu_seconds() - run_cpu_start;
    let run_to = pg_transactions::reading(&pool).await;
    let _ = stop_tx.send(true);
    let watched = watching.await.unwrap_or_default();
    let factor_changes = watched.factor_changes;

    let answered = answered_times(&pool, account_id).await?;
    let per_sec = per_second(&answered);
    let outcomes = report::outcomes(&pool, account_id).await?;
    let latencies = match &receiver {
        Some(r) => hangup_to_callback(&pool, account_id, r).await?,
        None => Vec::new(),
    };
    if let Some(r) = receiver {
        let got = r.snapshot();
        r.stop().await;
        if got.bad_signatures > 0 || got.out_of_order > 0 {
            bail!(
                "{} bad signatures, {} out of order",
                got.bad_signatures,
                got.out_of_order
            );
        }
    }

    let answered_n = answered.len();
    let span = match (answered.iter().min(), answered.iter().max()) {
        (Some(a), Some(b)) => (*b - *a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    };
    let above_idle = (run_cpu - idle_rate * run_secs).max(0.0);
    println!();
    println!(
        "paced run: max_cps {}, {calls} calls, {}, callbacks {}{}",
        opts.cps,
        match &opts.pbx {
            Some(p) => format!("PBX at {} ({})", p.addr, p.channel_template),
            None => format!(
                "ami-sim ringing {} ms, talking {} ms, capacity {} setups/s",
                opts.ring_ms, opts.talk_ms, opts.sim_capacity_cps
            ),
        },
        if opts.callbacks {
            "to a receiver answering at once"
        } else {
            "off (no callback URL)"
        },
        if opts.history_events > 0 {
            format!(", {} delivered events before", opts.history_events)
        } else {
            String::new()
        }
    );
    println!(
        "answered / s, each second from the first answer: {}",
        per_sec
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("| measure | value | note |");
    println!("|---|---:|---|");
    println!(
        "| answered calls / s, first to last answer | {:.1} | {answered_n} answered in {span:.1} s |",
        if span > 0.0 {
            answered_n as f64 / span
        } else {
            f64::NAN
        }
    );
    println!(
        "| answered calls / s, lowest {WINDOW_SECONDS} s window | {} | after the first {RAMP_SECONDS} s, last partial second left out; {:.2} of max_cps |",
        min_window_mean(&per_sec, RAMP_SECONDS, WINDOW_SECONDS)
            .map_or("-".to_owned(), |m| format!("{m:.1}")),
        min_window_mean(&per_sec, RAMP_SECONDS, WINDOW_SECONDS)
            .map_or(f64::NAN, |m| m / f64::from(opts.cps.max(1)))
    );
    println!(
        "| calls not answered | {} | {} |",
        calls - answered_n.min(calls),
        outcomes
            .iter()
            .map(|o| format!("{} {}", o.outcome, o.calls))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| capacity factor changes | {} | {} |",
        factor_changes.len(),
        factor_changes
            .iter()
            .map(|(t, f)| format!("{f} at {t:.0} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| calls put back, late for their moment | {} | claimed again, not sent together |",
        watched.put_back_late
    );
    println!(
        "| PostgreSQL CPU s / 1,000 calls | {:.3} | {run_cpu:.1} s in {run_secs:.1} s from dispatch, less idle {idle_rate:.3} s/s{} |",
        above_idle / calls as f64 * 1000.0,
        if pg.exact() {
            ""
        } else {
            "; every `postgres` process (data directory not readable)"
        }
    );
    if let (Some(idle_from), Some(run_from), Some(run_to)) = (idle_from, run_from, run_to) {
        let idle = pg_transactions::per_second(idle_from, run_from);
        println!(
            "| PostgreSQL transactions / call | {:.2} | {} in the run, less idle {idle:.1} / s |",
            pg_transactions::above_idle(run_from, run_to, idle) / calls as f64,
            run_to.0 - run_from.0,
        );
    }
    if !latencies.is_empty() {
        println!(
            "| hang-up to callback delivered, p50 / p99 | {:.1} / {:.1} ms | {} terminal events |",
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            latencies.len()
        );
    }
    Ok(())
}

/// Every call answers after `ring_ms` and talks `talk_ms`; the simulated PBX sets up channels
/// at most `sim_capacity_cps` a second with the latency measured on a real Asterisk 20 (median
/// 11 ms, p99 74 ms; transcripts README, "Under load"), and the manager user is configured as
/// docs/asterisk.md recommends (`read = call` and its event filter).
fn write_sim_config(dir: &std::path::Path, opts: &PacedOptions) -> anyhow::Result<PathBuf> {
    let path = dir.join("paced-sim.toml");
    let text = format!(
        "seed = 1\nmax_channels = 50000\nring_ms = {ring}\ntalk_ms = {talk}\n\
         capacity_cps = {capacity}\nsetup_latency_ms = 11\nsetup_latency_p99_ms = 74\n\
         read = \"call\"\neventfilter = [\"Event: Newchannel\", \"Event: Newstate\", \
         \"Event: DialEnd\", \"Event: Hangup\", \"Event: OriginateResponse\"]\n\
         [[mix]]\noutcome = \"answered\"\nweight = 1\n",
        ring = opts.ring_ms,
        talk = opts.talk_ms,
        capacity = opts.sim_capacity_cps,
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// What the dispatcher's metrics showed through the run.
#[derive(Default)]
struct Watched {
    /// Each change of `dialer_server_capacity_factor` (seconds since the start, new value).
    factor_changes: Vec<(f64, f64)>,
    /// `dialer_originates_put_back_late_total` at the last reading: calls held up past their
    /// moment and claimed again.
    put_back_late: u64,
}

/// The dispatcher's metrics read each second until `stop`.
async fn watch_dispatcher(metrics_url: String, mut stop: watch::Receiver<bool>) -> Watched {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut last: Option<f64> = None;
    let mut watched = Watched::default();
    loop {
        if let Some(text) = dispatcher_metrics::scrape(&http, &metrics_url).await {
            watched.put_back_late = dispatcher_metrics::put_back_late(&text);
            // The lowest over servers (there is one in a paced run).
            let factor = dispatcher_metrics::values(&text, "dialer_server_capacity_factor")
                .min_by(f64::total_cmp);
            if let Some(f) = factor {
                if last.is_some_and(|l| (l - f).abs() > f64::EPSILON) {
                    watched
                        .factor_changes
                        .push((started.elapsed().as_secs_f64(), f));
                }
                last = Some(f);
            }
        }
        if *stop.borrow() {
            return watched;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            // Read once more: the counts as they stand at the end.
            _ = stop.changed() => {}
        }
    }
}

#[derive(diesel::QueryableByName)]
struct AnsweredAt {
    #[diesel(sql_type = Timestamptz)]
    answered_at: DateTime<Utc>,
}

async fn answered_times(pool: &DbPool, account_id: i64) -> anyhow::Result<Vec<DateTime<Utc>>> {
    let mut conn = pool.get().await?;
    let rows: Vec<AnsweredAt> = diesel::sql_query(
        "SELECT a.answered_at FROM call_attempts a JOIN calls c ON c.id = a.call_pk \
         WHERE c.account_id = $1 AND a.answered_at IS NOT NULL",
    )
    .bind::<BigInt, _>(account_id)
    .load(&mut conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.answered_at).collect())
}

#[derive(diesel::QueryableByName)]
struct Terminal {
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
}

/// Milliseconds from each call's terminal event (its hang-up, as the dispatcher recorded it) to
/// the receiver's first verified delivery of it, sorted.
async fn hangup_to_callback(
    pool: &DbPool,
    account_id: i64,
    receiver: &Receiver,
) -> anyhow::Result<Vec<f64>> {
    let mut conn = pool.get().await?;
    let terminal: Vec<Terminal> = diesel::sql_query(
        "SELECT event_id, occurred_at FROM call_events WHERE account_id = $1 \
         AND event_type NOT IN ('call_started', 'call_answered', 'batch_completed')",
    )
    .bind::<BigInt, _>(account_id)
    .load(&mut conn)
    .await?;
    let got = receiver.snapshot();
    let mut ms: Vec<f64> = terminal
        .iter()
        .filter_map(|t| {
            let e = got.events.get(&t.event_id)?;
            Some((e.first_received - t.occurred_at).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

#[derive(diesel::QueryableByName)]
struct Completed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    completed: bool,
}

/// Whether the run's batch is completed (its row only).
async fn batch_completed(pool: &DbPool, account_id: i64) -> anyhow::Result<bool> {
    let mut conn = pool.get().await?;
    let row: Completed = diesel::sql_query(format!(
        "SELECT status = '{}' AS completed FROM batches WHERE account_id = $1 AND batch_id = $2",
        BatchStatus::Completed
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(BATCH_ID)
    .get_result(&mut conn)
    .await?;
    Ok(row.completed)
}
