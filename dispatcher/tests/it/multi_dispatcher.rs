//! Several dispatchers against one RabbitMQ and one PostgreSQL: they share the servers, every
//! limit holds in aggregate (as the simulated PBX counts), and when one dies another takes its
//! servers within ten seconds.

use std::time::{Duration, Instant};

use crate::helpers::{World, numbers};
use dispatcher::Dispatcher;

/// One simulated PBX registered as two servers: the simulator counts what both receive.
async fn two_servers_one_pbx(talk_ms: u64) -> World {
    let world = World::answering(1, 0, talk_ms, 200, 1000).await;
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
    let batch = world.batch(account, 1, &numbers(300)).await;
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
    // Slots are reserved in PostgreSQL 50 ms apart for both dispatchers; the simulator stamps
    // each Originate at its read, which on a loaded 2-core machine can be tens of milliseconds
    // late (as in `crash_and_rate`'s 20 calls/s): one more in a sliding second, the average
    // below holds the rate to 3 %.
    let max = sim.max_originates_in_window(Duration::from_secs(1));
    assert!(
        max <= 22,
        "{max} originates in one second across both dispatchers"
    );
    let times = sim.originate_times();
    assert_eq!(times.len(), 300);
    let span = (times[times.len() - 1] - times[0]).as_secs_f64();
    let rate = (times.len() - 1) as f64 / span;
    assert!((19.4..=20.6).contains(&rate), "average {rate:.2}/s");
    assert!(sim.stats().originates_by_number.values().all(|n| *n == 1));
    world.assert_two_dispatchers_dialed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_dispatchers_servers_are_taken_over_within_ten_seconds() {
    let world = two_servers_one_pbx(500).await;
    let account = world.account("ACME", 20, 100, "").await;
    let batch = world.batch(account, 1, &numbers(300)).await;
    let mut a = world.spawn_dispatcher("dispatcher-a", "4", "");
    let mut b = world.spawn_dispatcher("dispatcher-b", "4", "");
    // Wait until each holds one server.
    world.wait_servers_shared("").await;
    a.kill().expect("kill -9");
    let _ = a.wait();
    let killed = Instant::now();
    loop {
        let b_held = world.count("SELECT count(*) AS n FROM server_leases WHERE holder = 'dispatcher-b' AND expires_at > now()",
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
