//! Test mode: a test twin's calls go to simulated PBXs only, a live account's never, whatever
//! the load, and the platform's rate is not spent on test calls.

use std::time::Duration;

use crate::helpers::{World, numbers};

/// ACME and its test twin ACME-test, each allowed 50 calls a second and 50 channels.
async fn live_and_twin(world: &World) -> (i64, i64) {
    let live = world.account("ACME", 50, 50, "").await;
    let twin = world.account("ACME-test", 50, 50, "").await;
    world
        .exec(&format!(
            "INSERT INTO test_twins (account_id, live_account_id) VALUES ({twin}, {live})"
        ))
        .await;
    (live, twin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_calls_reach_only_the_simulated_pbx_and_live_calls_never_do() {
    let world = World::answering(2, 0, 100, 50, 100).await;
    // ast2 is a simulator; ast1 stands for a real PBX.
    world
        .exec("UPDATE asterisk_servers SET simulated = (code = 'ast2')")
        .await;
    let (live, twin) = live_and_twin(&world).await;
    let test_numbers: Vec<String> = (0..20).map(|i| format!("+1555{:07}", 5000 + i)).collect();
    let live_batch = world.batch(live, 1, &numbers(30)).await;
    let test_batch = world.batch(twin, 1, &test_numbers).await;
    let d = world.start().await;
    world.wait_final(live_batch, Duration::from_secs(60)).await;
    world.wait_final(test_batch, Duration::from_secs(60)).await;
    d.shutdown().await;
    // What each PBX saw.
    assert_eq!(world.sims[0].stats().originates_total, 30, "the real PBX");
    assert_eq!(world.sims[1].stats().originates_total, 20, "the simulator");
    let misplaced = world
        .count(
            "SELECT count(*) AS n FROM call_attempts a JOIN asterisk_servers s ON s.id = a.server_id \
             WHERE s.simulated <> EXISTS (SELECT 1 FROM test_twins t WHERE t.account_id = a.account_id)",
        )
        .await;
    assert_eq!(misplaced, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_simulator_test_calls_wait_and_live_calls_go_on() {
    let world = World::answering(1, 0, 100, 50, 100).await;
    let (live, twin) = live_and_twin(&world).await;
    let test_numbers: Vec<String> = (0..5).map(|i| format!("+1555{:07}", 5000 + i)).collect();
    let test_batch = world.batch(twin, 1, &test_numbers).await;
    let live_batch = world.batch(live, 1, &numbers(10)).await;
    let d = world.start().await;
    world.wait_final(live_batch, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.shutdown().await;
    assert_eq!(
        world.sims[0].stats().originates_total,
        10,
        "no test call reached the real PBX"
    );
    let waiting = world.scheduled(test_batch).await;
    assert_eq!(waiting.len(), 5, "test calls wait for a simulator");
}
