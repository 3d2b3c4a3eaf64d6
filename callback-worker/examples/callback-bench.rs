//! Benchmark: deliveries per second from a full queue to a local receiver (a separate process),
//! beside a plain loop of unsigned POSTs to the same receiver; CPU per delivery of this process
//! (the worker) plus PostgreSQL (its backends for the benchmark's database and its WAL writer,
//! checkpointer and background writer), from /proc; and the time from event written to
//! delivered (p50/p99), from a full queue and at a steady offered rate with RabbitMQ prompts.
//!
//! `cargo run --release -p callback-worker --example callback-bench`
//! Env: BENCH_EVENTS (50000), BENCH_ACCOUNTS (4), BENCH_STEADY_RATE (2000/s), BENCH_STEADY_SECS
//! (10), and any DIALER_CALLBACK_* setting. Needs PostgreSQL and RabbitMQ as for the tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use callback_worker::{Engine, WorkerConfig, prompts};
use dialer_core::event_prompt;
use dialer_core::test_support::TestEnv;
use dialer_core::{db, topology};
use diesel::sql_types::{BigInt, Double, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("receiver") {
        return receiver();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

/// The receiver process: answers every POST with 200 `ok` after reading the body.
fn receiver() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let _ = req.into_body().collect().await?;
                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"ok",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// PostgreSQL processes working for the benchmark: its database's backends and the shared
/// WAL writer, checkpointer and background writer.
async fn postgres_cpu(conn: &mut AsyncPgConnection, db: &str) -> anyhow::Result<HashMap<i32, f64>> {
    let pids: Vec<Pid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
            OR backend_type IN ('walwriter', 'checkpointer', 'background writer')",
    )
    .bind::<Text, _>(db)
    .load(conn)
    .await?;
    Ok(pids
        .into_iter()
        .filter_map(|p| cpu_seconds(&p.pid.to_string()).map(|c| (p.pid, c)))
        .collect())
}

fn cpu_delta(before: &HashMap<i32, f64>, after: &HashMap<i32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, c)| c - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

#[derive(diesel::QueryableByName)]
struct Latency {
    #[diesel(sql_type = Double)]
    p50: f64,
    #[diesel(sql_type = Double)]
    p99: f64,
    /// From the outbox's publish (RabbitMQ confirmed) to delivered: the worker's own share.
    #[diesel(sql_type = Double)]
    pub_p50: f64,
    #[diesel(sql_type = Double)]
    pub_p99: f64,
    /// From the start of the (last) attempt to delivered: the request and the recording.
    #[diesel(sql_type = Double)]
    send_p50: f64,
    #[diesel(sql_type = Double)]
    send_p99: f64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn latency(conn: &mut AsyncPgConnection, batches: &[i64]) -> anyhow::Result<Latency> {
    Ok(diesel::sql_query(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - occurred_at)) * 1000 AS p50, \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - occurred_at)) * 1000 AS p99, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - published_at)) * 1000 AS pub_p50, \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - published_at)) * 1000 AS pub_p99, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - d.attempted_at)) * 1000 AS send_p50, \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - d.attempted_at)) * 1000 AS send_p99, \
                count(*) AS n \
         FROM call_events e JOIN callback_deliveries d ON d.event_pk = e.id AND d.attempt = e.delivery_attempts \
         WHERE e.batch_pk = ANY($1) AND e.delivery_status = 'delivered'",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(batches)
    .get_result(conn)
    .await?)
}

const SEED_SQL: &str = "\
WITH c AS (
    INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, event_seq, custom_data)
    SELECT $1, $2, '98' || lpad(g::text, 8, '0'), '+9198' || lpad(g::text, 8, '0'), $4,
           '{\"customer_id\": \"CUST' || g || '\", \"campaign_id\": \"CAMP001\"}'
    FROM generate_series(1, $3) g
    RETURNING id, call_id, phone_raw, phone_e164, custom_data
), e AS (
    SELECT c.*, s, 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id,
           CASE WHEN s = 1 THEN 'call_started' WHEN s = 2 THEN 'call_answered' ELSE 'call_completed' END AS event_type
    FROM c, generate_series(1, $4) s
)
INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, event_type, body)
SELECT event_id, $1, $2, id, s, event_type,
       '{\"event_id\":\"' || event_id || '\",\"event_type\":\"' || event_type ||
       '\",\"accountcode\":\"BENCH\",\"batch_id\":' || $2 || ',\"call_id\":\"' || call_id ||
       '\",\"phone_number\":\"' || phone_raw || '\",\"phone_number_e164\":\"' || phone_e164 ||
       '\",\"call_status\":\"completed\",\"disposition\":\"answered\",\"duration\":120' ||
       ',\"start_time\":\"2024-01-01T10:00:00Z\",\"answer_time\":\"2024-01-01T10:00:07Z\"' ||
       ',\"end_time\":\"2024-01-01T10:02:07Z\",\"recording_url\":null,\"custom_data\":' || custom_data ||
       ',\"server_code\":\"ast1\",\"error_message\":null,\"attempt\":1,\"will_retry\":false,\"sequence\":' || s ||
       ',\"occurred_at\":\"2024-01-01T10:02:07Z\"}'
FROM e ORDER BY id, s";

async fn seed(
    conn: &mut AsyncPgConnection,
    account: i64,
    batch_id: i64,
    calls: i32,
    per_call: i32,
) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let batch: Id = diesel::sql_query(
        "INSERT INTO batches (account_id, batch_id) VALUES ($1, $2) RETURNING id",
    )
    .bind::<BigInt, _>(account)
    .bind::<BigInt, _>(batch_id)
    .get_result(conn)
    .await?;
    diesel::sql_query(SEED_SQL)
        .bind::<BigInt, _>(account)
        .bind::<BigInt, _>(batch.id)
        .bind::<Integer, _>(calls)
        .bind::<Integer, _>(per_call)
        .execute(conn)
        .await?;
    Ok(batch.id)
}

async fn bench() -> anyhow::Result<()> {
    let events = env_num("BENCH_EVENTS", 50_000) as i32;
    let n_accounts = env_num("BENCH_ACCOUNTS", 4).max(1) as i32;
    let steady_rate = env_num("BENCH_STEADY_RATE", 2_000);
    let steady_secs = env_num("BENCH_STEADY_SECS", 10);
    let per_call = 2;

    // The receiver, in its own process so its CPU is not counted as the worker's.
    let exe = std::env::current_exe()?;
    let mut receiver = Command::new(exe)
        .arg("receiver")
        .stdout(Stdio::piped())
        .spawn()
        .context("start the receiver")?;
    let mut line = String::new();
    BufReader::new(receiver.stdout.take().ok_or_else(|| anyhow!("no stdout"))?)
        .read_line(&mut line)?;
    let port: u16 = line.trim().parse().context("receiver port")?;
    let url = format!("http://127.0.0.1:{port}/cb");

    let env = TestEnv::new().await;
    let db_name = env
        .config
        .database_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut config = WorkerConfig::from_env().map_err(|e| anyhow!("{e}"))?;
    config.core = env.config.clone();
    config.core.allow_http_loopback_callbacks = true;
    config.core.db_pool_size = 6;
    let pool = db::build_pool(&config.core, "callback-bench")?;
    let mut conn = AsyncPgConnection::establish(&config.core.database_url).await?;

    // Baseline: unsigned POSTs of a same-size body, no database, one loop and as many loops
    // as the worker may have requests open.
    let body = Bytes::from(vec![b'x'; 620]);
    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut baseline = Vec::new();
    for loops in [
        1usize,
        (config.endpoint_concurrency * n_accounts as usize).min(128),
    ] {
        let window = Duration::from_secs(3);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..loops {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < window {
                    if let Ok(r) = client.post(&url).body(body.clone()).send().await {
                        let _ = r.bytes().await;
                        n += 1;
                    }
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await?;
        }
        baseline.push((loops, total as f64 / start.elapsed().as_secs_f64()));
    }

    // Full queue: every event written and published before the worker starts.
    let mut accounts = Vec::new();
    for i in 0..n_accounts {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let secret = dialer_core::credentials::generate_callback_secret()?;
        let row: Id = diesel::sql_query(
            "INSERT INTO accounts (accountcode, callback_url, callback_secret) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind::<Text, _>(format!("BENCH{i}"))
        .bind::<Text, _>(format!("{url}/{i}"))
        .bind::<Text, _>(secret)
        .get_result(&mut conn)
        .await?;
        accounts.push(row.id);
    }
    let calls_per_account = (events / per_call / n_accounts).max(1);
    let total = calls_per_account * per_call * n_accounts;
    let mut full_batches = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        full_batches.push(seed(&mut conn, *a, i as i64 + 1, calls_per_account, per_call).await?);
    }
    let amqp = topology::connect(&config.core.amqp_url, "callback-bench").await?;
    let channel = topology::confirm_channel(&amqp).await?;
    let topo = env.topology();
    topo.declare(&channel).await?;
    event_prompt::prompt(&channel, &topo, &full_batches).await?;
    diesel::sql_query("VACUUM ANALYZE call_events")
        .execute(&mut conn)
        .await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let engine = Engine::new(config.clone(), pool.clone());
    let shared = engine.shared();
    // Warm the pool so its backends exist before the CPU snapshot.
    {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.get().await?);
        }
    }
    let pg_before = postgres_cpu(&mut conn, &db_name).await?;
    let self_before = cpu_seconds("self").unwrap_or(0.0);
    let start = Instant::now();
    let engine_task = tokio::spawn(engine.run(stop_rx.clone()));
    let prompt_task = {
        let (shared, stop, topo) = (shared.clone(), stop_rx.clone(), topo.clone());
        let prefetch = config.prefetch;
        let amqp_url = config.core.amqp_url.clone();
        tokio::spawn(async move {
            let conn = topology::connect(&amqp_url, "callback-bench-prompts").await?;
            prompts::consume(&conn, &topo, prefetch, shared, stop).await?;
            anyhow::Ok(())
        })
    };
    while std::sync::atomic::AtomicU64::load(&shared.stats.delivered, Ordering::Relaxed)
        < total as u64
    {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "full-queue run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let full_elapsed = start.elapsed();
    // The last outcomes are being recorded; wait for the database to have them all.
    loop {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let n: N = diesel::sql_query(
            "SELECT count(*) AS n FROM call_events WHERE delivery_status = 'delivered'",
        )
        .get_result(&mut conn)
        .await?;
        if n.n >= total as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let self_cpu = cpu_seconds("self").unwrap_or(0.0) - self_before;
    let pg_after = postgres_cpu(&mut conn, &db_name).await?;
    let pg_cpu = cpu_delta(&pg_before, &pg_after);
    let attempts_recorded: i64 = {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT count(*) AS n FROM callback_deliveries")
            .get_result::<N>(&mut conn)
            .await?
            .n
    };
    let stats = &shared.stats;
    let claims = std::sync::atomic::AtomicU64::load(&stats.claim_statements, Ordering::Relaxed);
    let records = std::sync::atomic::AtomicU64::load(&stats.record_statements, Ordering::Relaxed);

    // Steady: events written (and published, as the platform does) at a fixed rate while the
    // worker runs; latency from written to delivered.
    let tick = Duration::from_millis(50);
    let per_tick = ((steady_rate as f64) * tick.as_secs_f64()).max(1.0) as i32;
    let mut steady_batches = Vec::new();
    let steady_pg_before = postgres_cpu(&mut conn, &db_name).await?;
    let steady_start = Instant::now();
    let mut next = Instant::now();
    let mut batch_id = 1000;
    let mut written = 0i64;
    while steady_start.elapsed() < Duration::from_secs(steady_secs) {
        let account = accounts[(batch_id as usize) % accounts.len()];
        let b = seed(
            &mut conn,
            account,
            batch_id,
            (per_tick / per_call).max(1),
            per_call,
        )
        .await?;
        event_prompt::prompt(&channel, &topo, &[b]).await?;
        written += i64::from((per_tick / per_call).max(1) * per_call);
        steady_batches.push(b);
        batch_id += 1;
        next += tick;
        tokio::time::sleep_until(next.into()).await;
    }
    let steady_offered = written as f64 / steady_start.elapsed().as_secs_f64();
    let wait_start = Instant::now();
    loop {
        let l = latency(&mut conn, &steady_batches).await?;
        if l.n >= written || wait_start.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let steady_latency = latency(&mut conn, &steady_batches).await?;
    let steady_pg_cpu = cpu_delta(&steady_pg_before, &postgres_cpu(&mut conn, &db_name).await?);

    let _ = stop_tx.send(true);
    let _ = engine_task.await;
    let _ = prompt_task.await;
    // What one claim costs now that the history is there: 3 events due, the claim explained
    // (and rolled back), its buffers counted.
    let delivered_before_claim = total as i64 + written;
    let three = seed(&mut conn, accounts[0], 999_999, 3, 1).await?;
    let claim_buffers = claim_buffers(&mut conn).await?;
    let _ = three;
    let _ = receiver.kill();
    let _ = receiver.wait();

    let rate = total as f64 / full_elapsed.as_secs_f64();
    println!(
        "callback-bench ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    for (loops, r) in &baseline {
        println!("  plain unsigned POST loop, {loops:>3} concurrent: {r:>8.0} req/s");
    }
    println!(
        "  worker, full queue: {total} events ({n_accounts} endpoints, {per_call} per call) in {:.2} s = {rate:.0} deliveries/s",
        full_elapsed.as_secs_f64()
    );
    println!(
        "  CPU per delivery: {:.3} ms (worker {:.3} + PostgreSQL {:.3}); {} attempts recorded; {} claim and {} record statements",
        (self_cpu + pg_cpu) * 1000.0 / total as f64,
        self_cpu * 1000.0 / total as f64,
        pg_cpu * 1000.0 / total as f64,
        attempts_recorded,
        claims,
        records
    );
    println!(
        "  steady {steady_offered:.0} events/s for {steady_secs} s ({} of {written} delivered):",
        steady_latency.n
    );
    println!(
        "    written -> delivered: p50 {:.1} ms, p99 {:.1} ms",
        steady_latency.p50, steady_latency.p99
    );
    println!(
        "    published (RabbitMQ confirmed) -> delivered: p50 {:.1} ms, p99 {:.1} ms",
        steady_latency.pub_p50, steady_latency.pub_p99
    );
    println!(
        "    attempt started -> recorded delivered: p50 {:.1} ms, p99 {:.1} ms",
        steady_latency.send_p50, steady_latency.send_p99
    );
    println!(
        "    PostgreSQL CPU per event written and delivered: {:.3} ms",
        steady_pg_cpu * 1000.0 / written.max(1) as f64
    );
    println!(
        "  claim of 3 due events after {delivered_before_claim} delivered: {claim_buffers} buffers (EXPLAIN ANALYZE, BUFFERS)"
    );
    let _ = Arc::strong_count(&shared);
    Ok(())
}

/// Shared buffers the claim statement touches (planning excluded), rolled back.
async fn claim_buffers(conn: &mut AsyncPgConnection) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Plan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        plan: String,
    }
    let mut text = String::new();
    let _ = conn
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            let plan: Plan = diesel::sql_query(format!(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
                callback_worker::claim::CLAIM_SQL
            ))
            .bind::<diesel::sql_types::Array<BigInt>, _>(Vec::<i64>::new())
            .bind::<BigInt, _>(500_i64)
            .bind::<Double, _>(120.0)
            .bind::<BigInt, _>(128_i64)
            .get_result(conn)
            .await?;
            text = plan.plan;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    let json: serde_json::Value = serde_json::from_str(&text).context("plan JSON")?;
    let top = &json[0]["Plan"];
    let n = |k: &str| top[k].as_i64().unwrap_or(0);
    Ok(n("Shared Hit Blocks") + n("Shared Read Blocks"))
}
