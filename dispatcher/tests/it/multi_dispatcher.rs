//! Several dispatchers against one RabbitMQ and one PostgreSQL: they share the servers, every
//! limit holds in aggregate (as the simulated PBX counts), and when one dies another takes its
//! servers within ten seconds.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{World, rule};
use ami_sim::OutcomeKind;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use dispatcher::Dispatcher;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(world: &World, sql: &str) -> i64 {
    let mut conn = world.conn().await;
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// One simulated PBX registered as two servers: the simulator counts what both receive.
async fn two_servers_one_pbx(talk_ms: u64) -> World {
    let world = World::new(
        1,
        vec![rule("+1555*", OutcomeKind::Answered, 0, talk_ms)],
        200,
        1000,
    )
    .await;
    world
        .exec(&format!(
            "INSERT INTO asterisk_servers (code, host, port, username, secret, max_channels, max_cps, \
             channel_template) VALUES ('ast2', '127.0.0.1', {}, 'dialer', 'dialer', 200, 1000, \
             'PJSIP/{{number}}@trunk')",
            world.sims[0].addr().port()
        ))
        .await;
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_share_the_servers_and_hold_the_account_rate_in_aggregate() {
    let world = two_servers_one_pbx(100).await;
    let account = world.account("ACME", 20, 100, "").await;
    let numbers: Vec<String> = (0..300).map(|i| format!("+1555{i:07}")).collect();
    let batch = world.batch(account, 1, &numbers).await;
    let mut ca = world.dispatcher_config();
    ca.id = "dispatcher-a".into();
    let mut cb = world.dispatcher_config();
    cb.id = "dispatcher-b".into();
    let a = Dispatcher::start(ca).await.expect("a");
    let b = Dispatcher::start(cb).await.expect("b");
    world.wait_final(batch, Duration::from_secs(60)).await;
    a.shutdown().await;
    b.shutdown().await;

    let sim = &world.sims[0];
    let max = sim.max_originates_in_window(Duration::from_secs(1));
    assert!(
        max <= 21,
        "{max} originates in one second across both dispatchers"
    );
    let times = sim.originate_times();
    assert_eq!(times.len(), 300);
    let span = (times[times.len() - 1] - times[0]).as_secs_f64();
    let rate = (times.len() - 1) as f64 / span;
    assert!((19.4..=20.6).contains(&rate), "average {rate:.2}/s");
    assert!(sim.stats().originates_by_number.values().all(|n| *n == 1));
    let dialers = count(
        &world,
        "SELECT count(DISTINCT dispatcher_id) AS n FROM call_attempts",
    )
    .await;
    assert_eq!(dialers, 2, "both dispatchers dialed");
}

fn spawn(world: &World, id: &str) -> Child {
    let c = &world.env.config;
    Command::new(env!("CARGO_BIN_EXE_dispatcher"))
        .env("DATABASE_URL", &c.database_url)
        .env("AMQP_URL", &c.amqp_url)
        .env("DIALER_QUEUE_PREFIX", &c.queue_prefix)
        .env("DIALER_DISPATCHER_ID", id)
        .env("DIALER_LEASE_TTL_SECS", "4")
        .env("RUST_LOG", "warn")
        .env("DIALER_DISPATCHER_METRICS_ADDR", "")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the dispatcher binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_dispatchers_servers_are_taken_over_within_ten_seconds() {
    let world = two_servers_one_pbx(500).await;
    let account = world.account("ACME", 20, 100, "").await;
    let numbers: Vec<String> = (0..300).map(|i| format!("+1555{i:07}")).collect();
    let batch = world.batch(account, 1, &numbers).await;
    let mut a = spawn(&world, "dispatcher-a");
    let mut b = spawn(&world, "dispatcher-b");
    // Wait until each holds one server.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a_held = count(
            &world,
            "SELECT count(*) AS n FROM server_leases WHERE holder = 'dispatcher-a'",
        )
        .await;
        let b_held = count(
            &world,
            "SELECT count(*) AS n FROM server_leases WHERE holder = 'dispatcher-b'",
        )
        .await;
        if a_held == 1 && b_held == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "servers never shared ({a_held}, {b_held})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.kill().expect("kill -9");
    let _ = a.wait();
    let killed = Instant::now();
    loop {
        let b_held = count(
            &world,
            "SELECT count(*) AS n FROM server_leases WHERE holder = 'dispatcher-b' AND expires_at > now()",
        )
        .await;
        if b_held == 2 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "takeover took more than ten seconds"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = killed.elapsed();
    world.wait_final(batch, Duration::from_secs(90)).await;
    let _ = b.kill();
    let _ = b.wait();
    assert!(took < Duration::from_secs(10), "{took:?}");
    let stats = world.sims[0].stats();
    assert!(
        stats.originates_by_number.values().all(|n| *n == 1),
        "no number dialed twice"
    );
}
