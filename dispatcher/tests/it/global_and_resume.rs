//! The platform calls per second and an account's channel limit held in aggregate by two
//! dispatchers on two servers (counted at the simulators), and a paused batch resumed the way the
//! API resumes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::helpers::{World, batch_under_way, numbers};
use ami_sim::stats::max_in_window;
use dialer_core::lifecycle;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use dispatcher::{Dispatcher, DispatcherConfig};

/// Two dispatchers, started and waited for until each holds one of the two servers, so both
/// dial from the first call on.
async fn two_dispatchers(
    world: &World,
    tweak: impl Fn(&mut DispatcherConfig),
) -> (Dispatcher, Dispatcher) {
    let mut ca = world.dispatcher_config();
    ca.id = "dispatcher-a".into();
    tweak(&mut ca);
    let mut cb = world.dispatcher_config();
    cb.id = "dispatcher-b".into();
    tweak(&mut cb);
    let a = Dispatcher::start(ca).await.expect("a");
    let b = Dispatcher::start(cb).await.expect("b");
    world.wait_servers_shared(" AND expires_at > now()").await;
    (a, b)
}

/// Two servers, two dispatchers under a platform limit of 10 calls/s, and a batch of `n`
/// numbers for each of two accounts at 20 calls/s, the simulators counting from the same
/// instant (so their times merge): the world, the dispatchers, the batches and ACME's id.
async fn two_accounts_under_a_platform_limit(
    n: usize,
) -> (Arc<World>, (Dispatcher, Dispatcher), (i64, i64), i64) {
    let world = Arc::new(World::answering(2, 0, 100, 200, 1000).await);
    let acme = world.account("ACME", 20, 100, "").await;
    let globex = world.account("GLOBEX", 20, 100, "").await;
    let dispatchers = two_dispatchers(&world, |c| c.global_cps = Some(10.0)).await;
    world.sims[0].reset_stats();
    world.sims[1].reset_stats();
    let globex_numbers: Vec<String> = (0..n).map(|i| format!("+1555{:07}", 1000 + i)).collect();
    let b1 = world.batch(acme, 1, &numbers(n)).await;
    let b2 = world.batch(globex, 1, &globex_numbers).await;
    (world, dispatchers, (b1, b2), acme)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_rate_holds_across_accounts_and_dispatchers() {
    let (world, (a, b), (b1, b2), acme) = two_accounts_under_a_platform_limit(75).await;
    // Each dispatcher publishes its live state while it dials: the platform limit it applies,
    // the rate of each account and of its server (what the API's dry run reads).
    let live = "SELECT count(*) AS n FROM dispatchers d WHERE d.global_cps = 10 \
                AND d.status_at > now() - interval '3 seconds' \
                AND (d.account_rates ->> '{acme}')::float8 > 0 \
                AND (d.account_rates ->> '{acme}')::float8 <= 10.5 \
                AND EXISTS (SELECT 1 FROM server_status s WHERE s.holder = d.id \
                            AND s.calls_per_second > 0)";
    let live = live.replace("{acme}", &acme.to_string());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while world.count(&live).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both dispatchers report their rates"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    world.wait_final(b1, Duration::from_secs(90)).await;
    world.wait_final(b2, Duration::from_secs(60)).await;
    a.shutdown().await;
    b.shutdown().await;

    let mut times = world.sims[0].originate_times();
    let on_first = times.len();
    times.extend(world.sims[1].originate_times());
    times.sort();
    assert_eq!(times.len(), 150, "every call originated once");
    assert!(
        on_first > 0 && on_first < 150,
        "both servers dialed ({on_first} on the first)"
    );
    let max = max_in_window(&times, Duration::from_secs(1));
    let span = (times[times.len() - 1] - times[0]).as_secs_f64();
    let rate = (times.len() - 1) as f64 / span;
    eprintln!(
        "global 10/s: max {max} in 1 s, average {rate:.2}/s over {span:.1} s, {on_first}/150 on ast1"
    );
    assert!(
        max <= 11,
        "{max} originates in one second, platform limit 10"
    );
    assert!((9.0..=11.0).contains(&rate), "average {rate:.2}/s");
    for sim in &world.sims {
        assert!(sim.stats().originates_by_number.values().all(|n| *n == 1));
    }
    world.assert_two_dispatchers_dialed().await;
}

/// PostgreSQL stalls its writers now and then, as a slow disk makes a commit wait: every
/// confirmation, claim and outcome held up for `stall`, every `every`, until `stop`.
async fn stall_writes(
    world: &World,
    stall: Duration,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut conn = world.conn().await;
    let mut stalls = 0;
    while !AtomicBool::load(&stop, Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        conn.batch_execute("BEGIN; LOCK TABLE call_attempts IN EXCLUSIVE MODE")
            .await
            .expect("lock");
        tokio::time::sleep(stall).await;
        conn.batch_execute("COMMIT").await.expect("unlock");
        stalls += 1;
    }
    stalls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_held_up_by_a_stalled_database_do_not_leave_together() {
    let (world, (a, b), (b1, b2), _) = two_accounts_under_a_platform_limit(60).await;
    world
        .wait_originates(5, 30, 50, "the dispatchers never got going")
        .await;
    // Stalls of 400 ms: four calls' worth of the platform's rate held up each time.
    let stop = Arc::new(AtomicBool::new(false));
    let stalls = {
        let (world, stop) = (world.clone(), stop.clone());
        tokio::spawn(async move {
            stall_writes(
                &world,
                Duration::from_millis(400),
                Duration::from_millis(1200),
                stop,
            )
            .await
        })
    };
    world.wait_final(b1, Duration::from_secs(120)).await;
    world.wait_final(b2, Duration::from_secs(60)).await;
    stop.store(true, Ordering::SeqCst);
    let stalls = stalls.await.expect("stalls");
    a.shutdown().await;
    b.shutdown().await;

    let mut times = world.sims[0].originate_times();
    times.extend(world.sims[1].originate_times());
    times.sort();
    let max = max_in_window(&times, Duration::from_secs(1));
    eprintln!(
        "{stalls} stalls: max {max} originates in 1 s, {} in all",
        times.len()
    );
    assert!(stalls >= 5, "only {stalls} stalls while dialing");
    assert!(
        max <= 11,
        "{max} originates in one second, platform limit 10"
    );
    for sim in &world.sims {
        assert!(sim.stats().originates_by_number.values().all(|n| *n == 1));
    }
    assert_eq!(times.len(), 120, "every call originated once");
    for batch in [b1, b2] {
        for c in world.calls(batch).await {
            assert_eq!(c.status, "completed", "call {}", c.phone_raw);
            assert_eq!(c.attempts, 1, "call {}", c.phone_raw);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_channel_limit_holds_across_two_dispatchers() {
    let world = World::answering(2, 0, 1500, 50, 200).await;
    let account = world.account("ACME", 50, 6, "").await;
    let (a, b) = two_dispatchers(&world, |_| {}).await;
    world.sims[0].reset_stats();
    world.sims[1].reset_stats();
    let batch = world.batch(account, 1, &numbers(48)).await;

    // Both simulators' channels up now, summed, sampled every few milliseconds until the end.
    let s0 = world.sims[0].handle();
    let s1 = world.sims[1].handle();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut max, mut samples) = (0usize, 0u64);
            while !AtomicBool::load(&stop, Ordering::Relaxed) {
                let sum = s0.current_channels() + s1.current_channels();
                max = max.max(sum);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            (max, samples)
        })
    };
    let calls = world.wait_final(batch, Duration::from_secs(90)).await;
    AtomicBool::store(&stop, true, Ordering::Relaxed);
    let (max, samples) = sampler.await.expect("sampler");
    a.shutdown().await;
    b.shutdown().await;

    let (st0, st1) = (world.sims[0].stats(), world.sims[1].stats());
    eprintln!(
        "limit 6: at most {max} channels summed over {samples} samples; per server peaks {} and {}, \
         originates {} and {}",
        st0.max_concurrent_channels,
        st1.max_concurrent_channels,
        st0.originates_total,
        st1.originates_total
    );
    assert!(
        calls.iter().all(|c| c.status == "completed"),
        "every call answered and completed"
    );
    assert_eq!(st0.originates_total + st1.originates_total, 48);
    assert!(
        st0.originates_total > 0 && st1.originates_total > 0,
        "both servers dialed"
    );
    assert!(
        max <= 6,
        "{max} channels at once for an account limited to 6"
    );
    assert!(max >= 5, "the limit was not even approached ({max})");
    assert!(st0.max_concurrent_channels + st1.max_concurrent_channels >= 6);
    world.assert_two_dispatchers_dialed().await;
}

/// What the API's resume does to a paused, dispatched batch (the core's
/// `lifecycle::control::resume` under the batch's lock, in one transaction), then its publish
/// of the re-armed jobs (`dispatch::publish_committed`).
async fn resume_like_the_api(world: &World, batch_pk: i64) {
    let mut conn = world.conn().await;
    conn.transaction::<(), diesel::result::Error, _>(async |conn| {
        diesel::sql_query("SELECT id FROM batches WHERE id = $1 FOR UPDATE")
            .bind::<BigInt, _>(batch_pk)
            .execute(conn)
            .await?;
        lifecycle::control::resume(conn, batch_pk, true).await
    })
    .await
    .expect("resume");
    world.publish_jobs(batch_pk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_batch_resumed_finishes_without_dialing_anyone_twice() {
    let (world, batch, d) = batch_under_way().await;
    // What the API's pause does to the batch.
    world
        .update_batch(
            batch,
            "status = 'paused', paused_at = now(), updated_at = now()",
        )
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_a_second = world.sims[0].stats().originates_total;
    // Long enough for every queued job to be taken and dropped.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before_resume = world.sims[0].stats().originates_total;
    assert_eq!(
        before_resume, after_a_second,
        "dialed while paused (after the first second)"
    );
    assert!(before_resume < 200, "the pause came too late to test");
    let undialed = world.scheduled(batch).await;
    assert_eq!(undialed.len() as u64, 200 - before_resume);

    resume_like_the_api(&world, batch).await;
    let calls = world.wait_final(batch, Duration::from_secs(60)).await;
    d.shutdown().await;

    let stats = world.sims[0].stats();
    eprintln!(
        "paused after {after_a_second} originates ({} still scheduled), {} after the resume",
        undialed.len(),
        stats.originates_total
    );
    assert_eq!(stats.originates_total, 200);
    for c in &calls {
        assert_eq!(c.status, "completed", "{}", c.phone_raw);
        assert_eq!(c.attempts, 1, "{}", c.phone_raw);
        assert_eq!(
            stats.originates_by_number.get(&c.phone_raw).copied(),
            Some(1),
            "{} dialed once",
            c.phone_raw
        );
    }
    let status = world
        .count(&format!(
            "SELECT count(*) AS n FROM batches WHERE id = {batch} AND status = 'completed'"
        ))
        .await;
    assert_eq!(status, 1, "the batch completed");
}
