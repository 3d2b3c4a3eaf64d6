//! Dispatcher benchmark: with every limit off and the simulator answering at once, how many
//! Originates per second one dispatcher sustains from a backlog, and the p50/p99 time from a dial
//! job's publication to its attempt being claimed and sent, at a steady offered load.
//!
//! `cargo run --release -p dispatcher --example dispatch_bench -- [backlog] [steady_per_second]`
//! (defaults 20000 and 500). Uses a throwaway database and queue prefix, like the tests.

use std::time::{Duration, Instant};

use ami_sim::{SimConfig, Simulator};
use dialer_core::dial_outbox;
use dialer_core::test_support::TestEnv;
use dialer_core::topology;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Double, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use dispatcher::{Dispatcher, DispatcherConfig};

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Pct {
    #[diesel(sql_type = Double)]
    p50: f64,
    #[diesel(sql_type = Double)]
    p99: f64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let backlog: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let steady: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(500);

    let env = TestEnv::new().await;
    let sim = Simulator::start(SimConfig {
        listen: "127.0.0.1:0".parse()?,
        instant_answer: true,
        max_channels: 1_000_000,
        ..SimConfig::default()
    })
    .await?;
    let mut conn = AsyncPgConnection::establish(&env.config.database_url).await?;
    conn.batch_execute(&format!(
        "INSERT INTO asterisk_servers (code, host, port, username, secret, max_channels, max_cps, \
         channel_template) VALUES ('ast1', '127.0.0.1', {}, 'dialer', 'dialer', 1000000, 1000000, \
         'PJSIP/{{number}}@trunk'); \
         INSERT INTO accounts (accountcode, callback_secret, calls_per_second, max_concurrent_calls, \
         ring_timeout_seconds) VALUES ('BENCH', 'whsec_dGVzdA==', 1000000, 1000000, 30);",
        sim.addr().port()
    ))
    .await?;
    let pool = dialer_core::db::build_pool(&env.config, "bench")?;
    let amqp = topology::connect(&env.config.amqp_url, "bench").await?;
    let channel = topology::confirm_channel(&amqp).await?;
    let topo = env.topology();
    topo.declare(&channel).await?;

    // Phase 1: a backlog, drained as fast as the dispatcher goes.
    let numbers: Vec<String> = (0..backlog).map(|i| format!("+1555{i:07}")).collect();
    let batch = insert_batch(&mut conn, 1, &numbers).await?;
    let t = Instant::now();
    dial_outbox::publish_pending(
        &pool,
        &channel,
        &topo,
        dial_outbox::Scope::Batches(&[batch]),
    )
    .await?;
    println!(
        "published {backlog} dial jobs in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let mut config = DispatcherConfig::with_core(env.config.clone());
    config.prefetch = 2000;
    let d = Dispatcher::start(config).await?;
    let t = Instant::now();
    while (sim.stats().originates_total as usize) < backlog {
        if t.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("backlog not drained in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "backlog: {backlog} Originates in {secs:.2} s = {:.0} originates/s (limits off, instant answer)",
        backlog as f64 / secs
    );

    // Phase 2: a steady offered load; latency from publication to the claimed attempt.
    let seconds = 5;
    let mut batch_ids = Vec::new();
    let t = Instant::now();
    for s in 0..seconds {
        for tick in 0..10 {
            let per_tick = steady / 10;
            let base = 1_000_000 + (s * 10 + tick) * per_tick;
            let numbers: Vec<String> = (base..base + per_tick)
                .map(|i| format!("+1556{i:07}"))
                .collect();
            let b = insert_batch(&mut conn, 100 + (s * 10 + tick) as i64, &numbers).await?;
            dial_outbox::publish_pending(&pool, &channel, &topo, dial_outbox::Scope::Batches(&[b]))
                .await?;
            batch_ids.push(b);
            let next = Duration::from_millis(((s * 10 + tick + 1) * 100) as u64);
            if let Some(wait) = next.checked_sub(t.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pct: Pct = diesel::sql_query(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, count(*) AS n \
         FROM (SELECT extract(epoch FROM (t.originated_at - j.published_at)) * 1000 AS ms \
               FROM call_attempts t JOIN dial_jobs j ON j.call_pk = t.call_pk AND j.attempt = t.attempt \
               JOIN calls c ON c.id = t.call_pk WHERE c.batch_pk = ANY($1)) x",
    )
    .bind::<Array<BigInt>, _>(&batch_ids)
    .get_result(&mut conn)
    .await?;
    println!(
        "steady {steady}/s for {seconds} s: {} calls, publication to claimed Originate p50 {:.1} ms, p99 {:.1} ms",
        pct.n, pct.p50, pct.p99
    );
    d.shutdown().await;
    Ok(())
}

async fn insert_batch(
    conn: &mut AsyncPgConnection,
    batch_id: i64,
    numbers: &[String],
) -> anyhow::Result<i64> {
    let b: Id = diesel::sql_query(
        "INSERT INTO batches (account_id, batch_id, status, dispatched_at) \
         VALUES (1, $1, 'dispatching', now()) RETURNING id",
    )
    .bind::<BigInt, _>(batch_id)
    .get_result(conn)
    .await?;
    diesel::sql_query(
        "WITH c AS (INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, status) \
           SELECT 1, $1, p, p, 'scheduled' FROM unnest($2::text[]) AS p RETURNING id) \
         INSERT INTO dial_jobs (call_pk, attempt) SELECT id, 1 FROM c",
    )
    .bind::<BigInt, _>(b.id)
    .bind::<Array<Text>, _>(numbers)
    .execute(conn)
    .await?;
    Ok(b.id)
}
