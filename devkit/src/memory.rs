//! `dialer-devkit memory`: what each process of the platform holds in memory when the work is
//! large. A backlog of undelivered events (an account's batch cancelled while the callback
//! worker was stopped: every call gets its `call_cancelled` event, nothing delivered) and a
//! batch of as many calls, submitted through the API and dispatched; then the worker comes back
//! to the backlog while the batch dials. Every process's resident memory is sampled each second
//! (`/proc/<pid>/status`: `VmRSS`, and `VmHWM`, the kernel's own peak); the table gives the peak
//! of each, so runs of different sizes show whether memory follows the size of the work or
//! stays bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dialer_core::Config;

use dialer_api::ops::accounts::CreatedAccount;

use crate::api_client::ApiClient;
use crate::platform::{self, Binaries, Processes, ServiceEnv, SimSpec};
use crate::receiver::Receiver;
use crate::{bench, report, seed};

pub struct MemoryOptions {
    /// Calls of the batch that dials.
    pub calls: usize,
    /// Undelivered events waiting when the callback worker comes back.
    pub backlog: usize,
    /// How long the platform works once the worker is back (0: until the batch completes and
    /// every event is delivered).
    pub seconds: u64,
    pub database: String,
    pub queue_prefix: String,
}

const ROWS_PER_REQUEST: usize = 50_000;
const BACKLOG_BATCH: i64 = 1;
const DIAL_BATCH: i64 = 1;

pub async fn run(config: &Config, opts: MemoryOptions) -> anyhow::Result<()> {
    platform::run_interruptible("memory-logs", async |bins, processes| {
        memory(config, &opts, bins, processes).await
    })
    .await
}

/// Each process's resident memory now and at its peak, in KiB (`None` once it is gone).
fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Peaks seen so far per process, and what each held at a moment of interest.
#[derive(Default)]
struct Samples {
    peak: BTreeMap<String, u64>,
    at: BTreeMap<(String, &'static str), u64>,
}

impl Samples {
    fn take(&mut self, processes: &Processes, moment: Option<&'static str>) {
        for (name, pid) in processes.pids() {
            if let Some((now, hwm)) = rss(pid) {
                let peak = self.peak.entry(name.clone()).or_default();
                *peak = (*peak).max(hwm).max(now);
                if let Some(m) = moment {
                    self.at.insert((name, m), now);
                }
            }
        }
    }
}

async fn memory(
    config: &Config,
    opts: &MemoryOptions,
    bins: &Binaries,
    processes: &mut Processes,
) -> anyhow::Result<()> {
    let (database_url, pool) =
        platform::fresh_run(config, &opts.database, &opts.queue_prefix, "devkit-memory").await?;
    let sims = platform::start_sims(bins, processes, &SimSpec::two(None, true)).await?;
    let (backlogged, backlog_receiver) = lean_account(&pool, "BACKLOG", opts.backlog).await?;
    let (dialing, receiver) = lean_account(&pool, "MEMORY", opts.calls).await?;
    seed::servers(&pool, &sims, 10_000, seed::UNLIMITED).await?;
    let env = ServiceEnv::quiet(database_url, &config.amqp_url, &opts.queue_prefix);
    let services = platform::start_services(bins, processes, &env, platform::Scale::ONE).await?;
    let mut samples = Samples::default();
    samples.take(processes, Some("idle"));
    // The worker is stopped while the backlog builds up, as if it had been down.
    processes.signal("callback-worker-1", libc::SIGSTOP);
    eprintln!(
        "▸ platform up (logs in {}); callback worker stopped",
        processes.log_dir().display()
    );

    let started = Instant::now();
    let backlog_client = ApiClient::new(&services.api_url, &backlogged.api_key);
    // Memory is sampled after each request: the API's peak is while it parses and writes one.
    bench::submit_numbers(
        &backlog_client,
        BACKLOG_BATCH,
        0..opts.backlog,
        ROWS_PER_REQUEST,
        || samples.take(processes, None),
    )
    .await?;
    let cancelled = backlog_client.cancel(BACKLOG_BATCH).await?;
    // A cancel ends 10,000 calls itself and the closing sweeps the rest, within seconds.
    let pending = loop {
        let events = report::events(&pool, backlogged.account.id).await?;
        if events.written >= opts.backlog as i64 {
            break events;
        }
        processes.check_alive()?;
        samples.take(processes, None);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "▸ backlog: {} call_cancelled events written, none delivered ({:.0} s); batch {}",
        pending.written,
        started.elapsed().as_secs_f64(),
        cancelled["batch_status"]
    );

    let client = ApiClient::new(&services.api_url, &dialing.api_key);
    bench::submit_numbers(
        &client,
        DIAL_BATCH,
        opts.backlog..opts.backlog + opts.calls,
        ROWS_PER_REQUEST,
        || samples.take(processes, None),
    )
    .await?;
    samples.take(processes, Some("submitted"));
    client.dispatch(DIAL_BATCH).await?;
    processes.signal("callback-worker-1", libc::SIGCONT);
    let working = Instant::now();
    eprintln!(
        "▸ {} calls submitted and dispatched ({:.0} s); callback worker back",
        opts.calls,
        started.elapsed().as_secs_f64()
    );

    let mut last_print = Instant::now();
    loop {
        processes.check_alive()?;
        samples.take(processes, None);
        let done = match opts.seconds {
            0 => {
                client.batch_status(DIAL_BATCH).await?["batch_status"] == "completed"
                    && receiver.event_count() as i64
                        >= report::events(&pool, dialing.account.id).await?.written
                    && backlog_receiver.event_count() >= opts.backlog
            }
            s => working.elapsed() >= Duration::from_secs(s),
        };
        if done {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            let status = client.batch_status(DIAL_BATCH).await?;
            eprintln!(
                "  {:>5.0} s: {} calls pending; backlog delivered {}; batch callbacks {}",
                working.elapsed().as_secs_f64(),
                status["pending_calls"],
                backlog_receiver.event_count(),
                receiver.event_count()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    samples.take(processes, Some("end"));
    let status = client.batch_status(DIAL_BATCH).await?;
    let dialed = opts.calls as i64 - status["pending_calls"].as_i64().unwrap_or(0);
    let backlog_delivered = backlog_receiver.event_count();
    let batch_callbacks = receiver.event_count();
    backlog_receiver.stop().await;
    receiver.stop().await;

    println!();
    println!(
        "{} calls submitted ({} dialed), {} undelivered events at the worker's return ({} \
         delivered since), {batch_callbacks} callbacks of the batch delivered, {:.0} s of work",
        opts.calls,
        dialed,
        opts.backlog,
        backlog_delivered,
        working.elapsed().as_secs_f64()
    );
    println!("| process | idle | after submission | at the end | peak (VmHWM) |");
    println!("|---|---:|---:|---:|---:|");
    let mib = |kib: Option<&u64>| {
        kib.map_or("-".to_owned(), |k| format!("{:.1} MiB", *k as f64 / 1024.0))
    };
    for (name, peak) in &samples.peak {
        let at = |m: &'static str| samples.at.get(&(name.clone(), m));
        println!(
            "| {name} | {} | {} | {} | {} |",
            mib(at("idle")),
            mib(at("submitted")),
            mib(at("end")),
            mib(Some(peak))
        );
    }
    Ok(())
}

/// An account without limits whose callbacks go to a receiver that verifies them but keeps no
/// bodies (millions of them would take this process gigabytes).
async fn lean_account(
    pool: &dialer_core::db::DbPool,
    code: &str,
    calls: usize,
) -> anyhow::Result<(CreatedAccount, Receiver)> {
    let created = seed::account(pool, code, "IN", seed::limits_off(calls.max(1))).await?;
    let receiver = Receiver::start_lean(&created.callback_secret)?;
    seed::set_callback_url(pool, code, &receiver.url).await?;
    Ok((created, receiver))
}
