//! `dialer-devkit bench` (also `dialerctl bench`): one run of the whole platform (real binaries,
//! two simulated servers that answer at once, every limit off) and a table of what it
//! sustained: complete call lifecycles per second (submission to last callback), ingestion
//! beside a plain `COPY`, callback deliveries beside plain signed POSTs to the same receiver,
//! and hang-up to callback latency.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use callback_worker::signing::CallbackSecret;
use dialer_core::Config;
use dialer_core::db::DbPool;

use crate::api_client::ApiClient;
use crate::pg_cpu::PgServer;
use crate::platform::{self, Binaries, Processes, ServiceEnv, SimSpec};
use crate::{dispatcher_metrics, report, seed};

pub struct BenchOptions {
    /// Calls of the end-to-end run (and rows of the ingestion comparison).
    pub calls: usize,
    /// Submission requests the calls are split into.
    pub requests: usize,
    pub database: String,
    pub queue_prefix: String,
    pub timeout: Duration,
}

const BENCH_ACCOUNT: &str = "BENCH";
const BATCH_ID: i64 = 1;
/// How long PostgreSQL's idle CPU is measured before the run.
const IDLE_BASELINE: Duration = Duration::from_secs(5);

/// Indian mobile numbers, all valid and distinct.
pub fn number(i: usize) -> String {
    format!("98{i:08}")
}

/// Submits [`number`]s `numbers` as batch `batch_id`, `per_request` rows a request, each with
/// its place in the batch as `custom_data.row`; fails unless every request is accepted whole.
/// `after_each` runs after each request (a benchmark samples what it measures there).
pub async fn submit_numbers(
    client: &ApiClient,
    batch_id: i64,
    numbers: std::ops::Range<usize>,
    per_request: usize,
    mut after_each: impl FnMut(),
) -> anyhow::Result<()> {
    let first = numbers.start;
    for start in numbers.clone().step_by(per_request.max(1)) {
        let rows: Vec<Value> = (start..(start + per_request).min(numbers.end))
            .map(|i| json!({"phone_number": number(i), "custom_data": {"row": i - first}}))
            .collect();
        let answer = client
            .submit(&json!({"batch_id": batch_id, "data": rows}))
            .await?;
        if answer["accepted"].as_u64() != Some(rows.len() as u64) {
            bail!("submission not accepted whole: {answer}");
        }
        after_each();
    }
    Ok(())
}

/// Logs of every process go to `bench-logs/` beside the binaries.
pub async fn run(config: &Config, opts: BenchOptions) -> anyhow::Result<()> {
    platform::run_interruptible("bench-logs", async |bins, processes| {
        bench(config, &opts, bins, processes).await
    })
    .await
}

struct Row {
    what: &'static str,
    value: String,
    note: String,
}

async fn bench(
    config: &Config,
    opts: &BenchOptions,
    bins: &Binaries,
    processes: &mut Processes,
) -> anyhow::Result<()> {
    let calls = opts.calls.max(1);
    let per_request = calls.div_ceil(opts.requests.max(1));
    if per_request > 50_000 {
        bail!("at most 50,000 rows per request: use more --requests");
    }
    let (database_url, pool) =
        platform::fresh_run(config, &opts.database, &opts.queue_prefix, "devkit-bench").await?;
    let sims = platform::start_sims(bins, processes, &SimSpec::two(None, true)).await?;
    let (created, receiver) = seed::account_with_receiver(
        &pool,
        BENCH_ACCOUNT,
        "IN",
        seed::limits_off(calls),
        Duration::ZERO,
    )
    .await?;
    seed::servers(&pool, &sims, 10_000, seed::UNLIMITED).await?;
    eprintln!("▸ {calls} calls, 2 simulated servers answering at once, limits off");

    // A plain COPY of the same rows into the same table, as the ceiling of ingestion.
    let copy_rate = copy_rows(&pool, &database_url, created.account.id, calls).await?;

    let env = ServiceEnv::quiet(database_url, &config.amqp_url, &opts.queue_prefix);
    let services = platform::start_services(bins, processes, &env, platform::Scale::ONE).await?;
    eprintln!(
        "▸ platform up (logs in {}); submitting",
        processes.log_dir().display()
    );

    // PostgreSQL's CPU while the platform idles (polls, leases, sweeps) is taken off the run's.
    let pg = PgServer::find(&pool).await;
    let idle_rate = pg.idle_rate(IDLE_BASELINE).await;

    let client = ApiClient::new(&services.api_url, &created.api_key);
    let run_cpu_start = pg.cpu_seconds();
    let started = Instant::now();
    submit_numbers(&client, BATCH_ID, 0..calls, per_request, || {}).await?;
    let ingest_secs = started.elapsed().as_secs_f64();
    let dispatched_at = Instant::now();
    client.dispatch(BATCH_ID).await?;
    eprintln!("▸ submitted in {ingest_secs:.2} s; dispatched");

    let account_id = created.account.id;
    let mut last_print = Instant::now();
    // Polled gently: the run's own counting queries are load the platform would not have.
    loop {
        processes.check_alive()?;
        let status = client.batch_status(BATCH_ID).await?;
        let verified = receiver.event_count() as i64;
        if status["batch_status"] == "completed"
            && verified >= report::events(&pool, account_id).await?.written
        {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            eprintln!(
                "  {:>5.1} s: {} pending, {verified} callbacks verified",
                started.elapsed().as_secs_f64(),
                status["pending_calls"],
            );
        }
        if started.elapsed() > opts.timeout {
            bail!(
                "not finished after {} s; logs in {}",
                opts.timeout.as_secs(),
                processes.log_dir().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let received = receiver.snapshot();
    let (Some(first_cb), Some(last_cb)) = (received.first_at, received.last_at) else {
        bail!("no callback arrived");
    };
    let lifecycle_secs = (last_cb - started).as_secs_f64();
    let run_cpu = pg.cpu_seconds() - run_cpu_start;
    let pg_per_1000 =
        (run_cpu - idle_rate * started.elapsed().as_secs_f64()).max(0.0) / calls as f64 * 1000.0;
    let dial_secs = (last_cb - dispatched_at).as_secs_f64();
    let delivery_secs = (last_cb - first_cb).as_secs_f64().max(1e-3);
    let attempts = report::attempts(&pool, account_id).await?;

    // Hang-up (the terminal event, as the dispatcher recorded it) to first verified delivery.
    let times = report::event_times(&pool, account_id).await?;
    let mut latencies: Vec<f64> = times
        .iter()
        .filter(|t| t.event_type == "call_completed")
        .filter_map(|t| {
            let got = received.events.get(&t.event_id)?;
            Some((got.first_received - t.occurred_at).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        latencies[((latencies.len() - 1) as f64 * p).round() as usize]
    };

    // Plain signed POSTs of the same bodies to the same receiver, as many at once as the
    // worker's default per-endpoint concurrency.
    let bodies: Vec<(String, Vec<u8>)> = received
        .events
        .iter()
        .take(20_000)
        .map(|(id, e)| (id.clone(), e.body.to_string().into_bytes()))
        .collect();
    let post_rate = plain_posts(&receiver.url, &created.callback_secret, bodies, 32).await?;
    receiver.stop().await;

    let put_back =
        dispatcher_metrics::scrape(&reqwest::Client::new(), &services.dispatcher_metrics_url)
            .await
            .map_or_else(
                || "?".to_owned(),
                |t| dispatcher_metrics::put_back_late(&t).to_string(),
            );
    let deliveries_rate = received.deliveries as f64 / delivery_secs;
    let rows = [
        Row {
            what: "call lifecycles / s, submission to last callback",
            value: format!("{:.0}", calls as f64 / lifecycle_secs),
            note: format!(
                "{calls} calls in {lifecycle_secs:.1} s; {:.0} / s from dispatch; {} attempts",
                calls as f64 / dial_secs,
                attempts.attempts
            ),
        },
        Row {
            what: "calls put back, late for their moment",
            value: put_back,
            note: "claimed again, not sent together (dispatcher metrics)".to_owned(),
        },
        Row {
            what: "ingestion rows / s, API",
            value: format!("{:.0}", calls as f64 / ingest_secs),
            note: format!(
                "{} requests of {per_request} rows, {:.2}x plain COPY",
                calls.div_ceil(per_request),
                calls as f64 / ingest_secs / copy_rate
            ),
        },
        Row {
            what: "ingestion rows / s, plain COPY",
            value: format!("{copy_rate:.0}"),
            note: "psql \\copy of the same rows into calls".to_owned(),
        },
        Row {
            what: "callback deliveries / s",
            value: format!("{deliveries_rate:.0}"),
            note: format!(
                "{} deliveries of {} events, all verified; {:.2}x plain POSTs",
                received.deliveries,
                received.events.len(),
                deliveries_rate / post_rate
            ),
        },
        Row {
            what: "plain signed POSTs / s, same receiver",
            value: format!("{post_rate:.0}"),
            note: "reqwest, 32 at once, no database".to_owned(),
        },
        Row {
            what: "PostgreSQL CPU s / 1,000 calls",
            value: format!("{pg_per_1000:.3}"),
            note: format!(
                "submission to last callback, less the idle {idle_rate:.3} s/s{}",
                if pg.exact() {
                    ""
                } else {
                    "; every postgres process"
                }
            ),
        },
        Row {
            what: "hang-up to callback delivered, p50",
            value: format!("{:.1} ms", pct(0.5)),
            note: format!("{} call_completed events", latencies.len()),
        },
        Row {
            what: "hang-up to callback delivered, p99",
            value: format!("{:.1} ms", pct(0.99)),
            note: String::new(),
        },
    ];
    println!();
    println!("{}", machine());
    println!("| measure | value | note |");
    println!("|---|---:|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.what, r.value, r.note);
    }
    if received.bad_signatures > 0 || received.out_of_order > 0 {
        bail!(
            "{} bad signatures, {} out of order",
            received.bad_signatures,
            received.out_of_order
        );
    }
    Ok(())
}

/// Rows per second of a `psql \copy` of `rows` numbers into `calls` for `account_id` (a batch of
/// their own, removed afterwards): the ceiling the API's ingestion is compared with.
pub async fn copy_rows(
    pool: &DbPool,
    database_url: &str,
    account_id: i64,
    rows: usize,
) -> anyhow::Result<f64> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let mut conn = pool.get().await?;
    let batch: Id = diesel::sql_query(
        "INSERT INTO batches (account_id, batch_id) VALUES ($1, 999999) RETURNING id",
    )
    .bind::<diesel::sql_types::BigInt, _>(account_id)
    .get_result(&mut conn)
    .await?;
    let csv_path = std::env::temp_dir().join(format!("dialer-copy-{}.csv", std::process::id()));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        for i in 0..rows {
            let n = number(i);
            writeln!(
                f,
                "{account_id},{},{n},+91{n},IN,{{\"row\": {i}}}",
                batch.id
            )?;
        }
    }
    let copy_sql = format!(
        "\\copy calls (account_id, batch_pk, phone_raw, phone_e164, phone_region, custom_data) FROM '{}' WITH (FORMAT csv, QUOTE '''')",
        csv_path.display()
    );
    let started = Instant::now();
    let out = tokio::process::Command::new("psql")
        .arg(database_url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &copy_sql])
        .output()
        .await
        .context("running psql")?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&csv_path);
    if !out.status.success() {
        bail!("COPY failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    conn.batch_execute(&format!(
        "DELETE FROM calls WHERE batch_pk = {id}; DELETE FROM batches WHERE id = {id}",
        id = batch.id
    ))
    .await?;
    // On its own: VACUUM refuses to run in the transaction a multi-statement string makes.
    conn.batch_execute("VACUUM ANALYZE calls").await?;
    Ok(rows as f64 / secs)
}

/// Requests per second of `bodies` POSTed, signed like callbacks, `concurrency` at once.
async fn plain_posts(
    url: &str,
    secret: &str,
    bodies: Vec<(String, Vec<u8>)>,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let secret = CallbackSecret::parse(secret).map_err(|e| anyhow!("secret: {e:?}"))?;
    let http = reqwest::Client::new();
    let n = bodies.len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, bodies, next, secret, url) = (
            http.clone(),
            bodies.clone(),
            next.clone(),
            secret.clone(),
            url.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((id, body)) = bodies.get(i) else {
                    return Ok::<(), reqwest::Error>(());
                };
                let ts = chrono::Utc::now().timestamp();
                http.post(&url)
                    .header("content-type", "application/json")
                    .header("x-signature", secret.x_signature(body))
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", secret.webhook_signature(id, ts, body))
                    .body(body.clone())
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64().max(1e-3))
}

/// One line on the machine the figures come from.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!(
        "machine: {cores} cores ({cpu}), {mem_gib:.0} GiB; everything (PostgreSQL, RabbitMQ, API, dispatcher, worker, simulators, receiver) on it"
    )
}
