//! Ingestion benchmark: submits a 1,000,000-number batch in 20 requests of 50,000 rows to the
//! real API (in this process, on port 0) and prints rows per second, beside a plain `COPY` of
//! the same rows into the same table (through `psql \copy`).
//!
//! `cargo run --release -p dialer-devkit --example ingest_bench` (needs PostgreSQL, RabbitMQ and
//! `psql`; makes and drops its own database). `BENCH_ROWS` and `BENCH_REQUESTS` change the size.

use std::time::Instant;

use anyhow::bail;
use dialer_api::ops::accounts::AccountUpdate;
use dialer_api::startup::Application;
use dialer_core::db;
use dialer_core::test_support::TestEnv;
use dialer_devkit::bench::{copy_rows, number};
use dialer_devkit::seed;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let per_request = rows.div_ceil(requests);
    let mut env = TestEnv::new().await;
    env.config.max_rows_per_request = per_request.max(50_000);
    env.config.max_body_bytes = 256 * 1024 * 1024;
    env.config.api_workers = 1;
    let pool = db::build_pool(&env.config, "bench")?;
    let big = (rows * 3) as i64;
    let limits = AccountUpdate {
        max_rows_per_request: Some(i32::try_from(per_request)?),
        max_queued_calls: Some(big),
        max_calls_per_day: Some(big),
        api_requests_per_second: Some(1000),
        ..AccountUpdate::default()
    };
    let created = seed::account(&pool, "BENCH", "IN", limits).await?;

    // 1. plain COPY of the same rows into the same table (another batch)
    let copy_rate = copy_rows(&pool, &env.config.database_url, created.account.id, rows).await?;
    let copy_secs = rows as f64 / copy_rate;

    // 2. the API, 20 requests of 50,000 rows
    let app = Application::build(env.config.clone()).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let bodies: Vec<String> = (0..requests)
        .map(|r| {
            let rows_json: Vec<String> = (r * per_request..((r + 1) * per_request).min(rows))
                .map(|i| {
                    format!(
                        "{{\"phone_number\":\"{}\",\"custom_data\":{{\"row\": {i}}}}}",
                        number(i)
                    )
                })
                .collect();
            format!("{{\"batch_id\":1,\"data\":[{}]}}", rows_json.join(","))
        })
        .collect();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut accepted = 0u64;
    for body in bodies {
        let res = http
            .post(format!("{base}/api/v1/queues/insertdataincallqueue/"))
            .header("X-API-KEY", &created.api_key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = res.status();
        let v: serde_json::Value = res.json().await?;
        if !status.is_success() {
            bail!("request failed: {status} {v}");
        }
        accepted += v["accepted"].as_u64().unwrap_or(0);
        if v["accepted"].as_u64() == Some(0) {
            bail!(
                "nothing accepted: duplicates {}, first rejection {}",
                v["duplicates"],
                v["rejected"][0]
            );
        }
    }
    let api_secs = started.elapsed().as_secs_f64();
    if accepted != rows as u64 {
        bail!("accepted {accepted} of {rows}");
    }
    let api_rate = rows as f64 / api_secs;
    println!("rows: {rows} in {requests} requests of {per_request}");
    println!("COPY: {copy_secs:.2} s, {copy_rate:.0} rows/s");
    println!(
        "API:  {api_secs:.2} s, {api_rate:.0} rows/s (validation, E.164, DNC, duplicates, one transaction per request)"
    );
    println!("API / COPY: {:.2}", api_rate / copy_rate);
    Ok(())
}
