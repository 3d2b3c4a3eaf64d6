//! The platform on a RabbitMQ cluster of three nodes of the test's own (every service is given
//! all three addresses), scaled out: two APIs, two dispatchers, two callback workers, two
//! simulated servers, two accounts. A node is killed in the middle of the batches and started
//! again. Nothing is lost, dialed twice or stuck (the run's checks); the node rejoins; and the
//! limits hold in aggregate over both dispatchers and both servers, as the simulators saw the
//! calls: each account's calls per second and channels, and the platform's calls per second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use dialer_devkit::platform::Scale;

use crate::run::{FaultRun, Own, OwnBroker, Spec};

const ACCOUNT_CPS: u64 = 4;
const ACCOUNT_CHANNELS: u64 = 8;
const GLOBAL_CPS: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_killed_mid_batch_loses_nothing_and_every_limit_holds_in_aggregate() {
    let mut spec = Spec::of(Own {
        postgres: false,
        broker: OwnBroker::Cluster,
    });
    spec.scale = Scale {
        apis: 2,
        dispatchers: 2,
        workers: 2,
    };
    spec.accounts = 2;
    spec.settings.calls_per_second = Some(ACCOUNT_CPS as i32);
    spec.settings.max_concurrent_calls = Some(ACCOUNT_CHANNELS as i32);
    spec.env
        .push(("DIALER_GLOBAL_CPS".into(), GLOBAL_CPS.to_string()));
    let mut run = FaultRun::start_spec("mq-cluster", spec).await;

    // Every queue of the platform is a quorum queue with a member on each node.
    let prefix = run.prefix.clone();
    let queues = run.cluster().queues(&prefix).await.expect("queues");
    assert!(queues.len() >= 4, "{queues:?}");
    for q in &queues {
        assert_eq!(q.kind, "quorum", "{q:?}");
        assert_eq!(q.members.len(), 3, "{q:?}");
    }
    let leaders: Vec<&str> = queues.iter().map(|q| q.leader.as_str()).collect();
    eprintln!("mq-cluster: queue leaders {leaders:?}");

    // Both accounts submit, each through another API.
    run.submit_through(0, 0, 60).await;
    run.submit_through(1, 1, 60).await;
    run.until_ended(10).await;

    // Kill the node most dispatchers and workers are connected to (each was given all three
    // addresses and logged the one it took): they must fail over to the others, and the queues
    // it led elect other leaders. (The APIs' connections are opened per hand-off, without
    // recovery, and reopened on the next request.)
    let victim = busiest_node(&mut run);
    let victim_name = run.cluster().node(victim).name().to_owned();
    let led: Vec<&str> = queues
        .iter()
        .filter(|q| q.leader == victim_name)
        .map(|q| q.name.as_str())
        .collect();
    eprintln!("mq-cluster: killing {victim_name}, leader of {led:?}");
    run.cluster()
        .node(victim)
        .stop_node(true)
        .await
        .expect("node killed");
    let killed = Instant::now();
    // Batches submitted while it is down, through the other API each.
    run.submit_through(0, 1, 20).await;
    run.submit_through(1, 0, 20).await;
    let running = run.cluster().running_nodes().await.expect("cluster status");
    assert_eq!(running.len(), 2, "{running:?}");
    let before = run.originated().await;
    let deadline = killed + Duration::from_secs(30);
    while run.originated().await < before + 10 {
        run.processes
            .check_alive()
            .expect("platform processes alive");
        assert!(Instant::now() < deadline, "no dialing with a node down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "mq-cluster: 10 more calls dialed {} ms after the node was killed",
        killed.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(killed.elapsed())).await;
    run.cluster()
        .node(victim)
        .start_node()
        .await
        .expect("node back");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = run.cluster().running_nodes().await.unwrap_or_default();
        if running.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not rejoin: {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    run.settle(Duration::from_secs(180)).await;
    // Services connected to the killed node moved to another one (and said so).
    let logs = std::fs::read_dir(run.processes.log_dir())
        .expect("log dir")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter(|text| text.contains("failed over to another node"))
        .count();
    assert!(logs > 0, "no service logged a failover");
    check_limits(&run).await;
    run.finish().await;
}

/// The node (index) most of the run's dispatchers and workers connected to, from their logs
/// ("RabbitMQ: connected node=127.0.0.1:PORT", the first connection of each).
fn busiest_node(run: &mut FaultRun) -> usize {
    let logs: Vec<String> = std::fs::read_dir(run.processes.log_dir())
        .expect("log dir")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.to_owned();
            let recovering =
                name.starts_with("dispatcher-") || name.starts_with("callback-worker-");
            recovering.then(|| std::fs::read_to_string(&path).ok())?
        })
        .collect();
    let mut counts = [0usize; 3];
    for (i, count) in counts.iter_mut().enumerate() {
        // The field comes last on the line (the logs may colour `node=`).
        let node = format!("127.0.0.1:{}", run.cluster().node(i).port());
        *count = logs
            .iter()
            .filter(|text| {
                text.lines()
                    .any(|l| l.contains("RabbitMQ: connected") && l.trim_end().ends_with(&node))
            })
            .count();
    }
    eprintln!("mq-cluster: dispatchers and workers per node {counts:?}");
    let victim = (0..3).max_by_key(|i| counts[*i]).unwrap_or(0);
    assert!(
        counts[victim] > 0,
        "no dispatcher or worker logged its node"
    );
    victim
}

/// Each account's calls per second and channels, and the platform's calls per second, over
/// both simulated servers together.
async fn check_limits(run: &FaultRun) {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        id: String,
        #[diesel(sql_type = BigInt)]
        account_id: i64,
    }
    let mut conn = run.pool.get().await.expect("conn");
    let rows: Vec<Row> =
        diesel::sql_query(
            "SELECT a.id::text AS id, c.account_id FROM call_attempts a JOIN calls c ON c.id = a.call_pk",
        )
            .load(&mut conn)
            .await
            .expect("attempts");
    let account_of: HashMap<String, i64> = rows.into_iter().map(|r| (r.id, r.account_id)).collect();

    let mut originates: Vec<(u64, i64)> = Vec::new();
    let mut channels: Vec<(u64, i64, bool)> = Vec::new();
    for sim in &run.sims {
        let t = sim.timeline().await;
        for (at, id) in t.originates {
            let account = account_of
                .get(&id)
                .copied()
                .expect("an Originate of an attempt");
            originates.push((at, account));
        }
        for (at, id, up) in t.channels {
            // The second leg of a call (if any) is not an attempt.
            if let Some(account) = account_of.get(&id) {
                channels.push((at, *account, up));
            }
        }
    }
    assert_eq!(
        originates.len(),
        account_of.len(),
        "an attempt never originated"
    );
    originates.sort();
    // Ends before starts at the same millisecond: the dispatcher frees a channel on the
    // Hangup, so the next call of the account may start in the same millisecond.
    channels.sort_by_key(|(at, _, up)| (*at, *up));

    // Slots are reserved in PostgreSQL for all dispatchers; the simulators stamp an
    // Originate when they read it, which on a loaded 2-core machine can be tens of
    // milliseconds late: one more in a sliding second is that, not a broken limit.
    let all: Vec<u64> = originates.iter().map(|o| o.0).collect();
    let platform_max = max_in_second(&all);
    eprintln!("mq-cluster: most Originates in one second, platform: {platform_max}");
    assert!(
        platform_max <= GLOBAL_CPS + 1,
        "platform: {platform_max} in one second"
    );
    for t in &run.tenants {
        let id = t.account.account.id;
        let times: Vec<u64> = originates
            .iter()
            .filter(|o| o.1 == id)
            .map(|o| o.0)
            .collect();
        let max = max_in_second(&times);
        let mut up = 0i64;
        let mut peak = 0i64;
        for (_, _, created) in channels.iter().filter(|c| c.1 == id) {
            up += if *created { 1 } else { -1 };
            peak = peak.max(up);
        }
        eprintln!(
            "mq-cluster: account {id}: {} calls, most in one second {max}, peak channels {peak}",
            times.len()
        );
        assert!(max <= ACCOUNT_CPS + 1, "account {id}: {max} in one second");
        assert!(
            peak as u64 <= ACCOUNT_CHANNELS,
            "account {id}: {peak} channels at once"
        );
        // The limit bound: a peak below it would not show that it held.
        assert_eq!(peak as u64, ACCOUNT_CHANNELS, "account {id}: peak channels");
    }
}

/// Most of the sorted Unix-millisecond `times` inside any window `[t, t + 1000)`.
fn max_in_second(times: &[u64]) -> u64 {
    let mut best = 0;
    let mut start = 0;
    for (end, t) in times.iter().enumerate() {
        while *t >= times[start] + 1000 {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}
