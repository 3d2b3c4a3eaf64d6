//! PostgreSQL stopped under a running batch: killed (as a crash: `pg_ctl stop -m immediate`,
//! recovery at the next start) and unreachable for a while, or restarted at once. Calls in
//! flight end while it is away: their transitions wait in the dispatcher's writer and are
//! written once it is back (none dropped, issue 15); the API answers `503` with `Retry-After`
//! meanwhile; the batch completes with nothing lost, dialed twice or stuck.

use std::time::{Duration, Instant};

use dialer_devkit::partition::Partition;

use crate::run::{FaultRun, Own, OwnBroker};

const OWN_PG: Own = Own {
    postgres: true,
    broker: OwnBroker::Shared,
};

/// Down for `down` while calls are up and ending.
async fn outage_mid_batch(name: &str, down: Duration) {
    let mut run = FaultRun::start(name, OWN_PG).await;
    run.submit(120).await;
    // Calls have ended and others are up (2.5 s of talk, 20 calls/s).
    run.until_ended(10).await;
    let ended_before = run.ended_attempts().await;
    run.pg().stop_server(true).await.expect("PostgreSQL killed");
    // Let calls in flight end while it is away, then ask the API.
    tokio::time::sleep(down.min(Duration::from_secs(4))).await;
    for _ in 0..3 {
        let (code, retry_after, body) = run.status_raw().await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["code"], "unavailable", "{body}");
        let secs: u64 = retry_after
            .as_deref()
            .and_then(|s| s.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
    }
    tokio::time::sleep(down.saturating_sub(Duration::from_secs(4))).await;
    run.pg().start_server().await.expect("PostgreSQL back");
    // What ended while it was away is written once it is back (the writer's pause between
    // tries is 5 s at most).
    let back = Instant::now();
    run.until_ended(ended_before + 1).await;
    eprintln!(
        "{name}: call state written again {} ms after PostgreSQL was back",
        back.elapsed().as_millis()
    );
    run.settle_and_check(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_for_ten_seconds_mid_batch_loses_nothing() {
    outage_mid_batch("pg-10s", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long fault test: scripts/faults runs it"]
async fn postgres_killed_for_thirty_seconds_mid_batch_loses_nothing() {
    outage_mid_batch("pg-30s", Duration::from_secs(30)).await;
}

/// A fast restart (sessions ended cleanly, back at once): every pooled connection of every
/// service is dead and is found so only by its next statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_batch_loses_nothing() {
    let mut run = FaultRun::start("pg-restart", OWN_PG).await;
    run.submit(120).await;
    run.until_ended(10).await;
    run.pg()
        .stop_server(false)
        .await
        .expect("PostgreSQL stopped");
    run.pg().start_server().await.expect("PostgreSQL back");
    run.until_ended(40).await;
    run.pg()
        .stop_server(false)
        .await
        .expect("PostgreSQL stopped again");
    run.pg()
        .start_server()
        .await
        .expect("PostgreSQL back again");
    run.settle_and_check(Duration::from_secs(120)).await;
}

/// PostgreSQL unreachable (packets to and from it dropped, as when its host or the link goes
/// away: connections hang instead of being refused) for `down`, then reachable again.
async fn partition_mid_batch(name: &str, down: Duration) {
    let mut run = FaultRun::start(name, OWN_PG).await;
    run.submit(120).await;
    run.until_ended(10).await;
    let ended_before = run.ended_attempts().await;
    let mut cut = Partition::of_port(run.pg().port());
    cut.block().await.expect("partition");
    let cut_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    let (code, retry_after, body) = run.status_raw().await;
    eprintln!(
        "{name}: the API answered {code} in {} ms, {} s into the partition",
        asked.elapsed().as_millis(),
        asked.duration_since(cut_at).as_secs()
    );
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(retry_after.is_some(), "no Retry-After");
    tokio::time::sleep(down.saturating_sub(cut_at.elapsed())).await;
    cut.heal().await.expect("partition healed");
    let back = Instant::now();
    run.until_ended(ended_before + 1).await;
    eprintln!(
        "{name}: call state written again {} ms after PostgreSQL was reachable",
        back.elapsed().as_millis()
    );
    run.settle_and_check(Duration::from_secs(180)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long fault test: scripts/faults runs it"]
async fn postgres_partitioned_for_thirty_seconds_mid_batch_loses_nothing() {
    partition_mid_batch("pg-partition-30s", Duration::from_secs(30)).await;
}
