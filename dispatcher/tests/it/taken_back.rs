//! Pause and cancel against calls already claimed and waiting in the dispatcher for their
//! pacing slot: once the control has answered, the simulator receives no Originate of the batch;
//! the calls taken back are dialed after a resume (once each), or end `call_cancelled`.

use std::time::Duration;

use crate::helpers::{World, numbers};
use dialer_core::lifecycle;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, RunQueryDsl};

/// Slack for an Originate confirmed just before the control committed (it started before the
/// pause: whichever commits first wins) and still on its way to the simulator.
const IN_FLIGHT: Duration = Duration::from_millis(300);

/// A batch of 100 calls at 10 per second with calls claimed ahead and waiting for their slots
/// (about a second of them): the world, the batch, the dispatcher.
async fn slow_batch_under_way() -> (World, i64, dispatcher::Dispatcher) {
    let world = World::answering(1, 0, 100, 50, 100).await;
    let account = world.account("ACME", 10, 50, "").await;
    let (batch, d) = world.batch_and_dispatcher(account, 1, &numbers(100)).await;
    world.wait_originates(2, 30, 20, "never got going").await;
    let mut waiting = 0;
    for _ in 0..100 {
        waiting = world
            .count(&format!(
                "SELECT count(*) AS n FROM call_attempts t JOIN calls c ON c.id = t.call_pk \
                 WHERE c.batch_pk = {batch} AND t.sent_at IS NULL AND t.state = 'originating'"
            ))
            .await;
        if waiting >= 3 {
            return (world, batch, d);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("only {waiting} calls claimed ahead: nothing to test");
}

/// Originates the simulator received after `reset_stats` later than [`IN_FLIGHT`].
fn late_originates(world: &World) -> Vec<Duration> {
    let times = world.sims[0].originate_times();
    times.into_iter().filter(|t| *t > IN_FLIGHT).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_originate_after_a_pause_answered_and_the_calls_taken_back_are_dialed_on_resume() {
    let (world, batch, d) = slow_batch_under_way().await;
    world.control_like_the_api(batch, false).await;
    world.sims[0].reset_stats();
    // More than the second of calls that were claimed ahead.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late = late_originates(&world);
    assert!(
        late.is_empty(),
        "Originates after the pause answered: {late:?}"
    );
    let dialing = world
        .count(&format!(
            "SELECT count(*) AS n FROM calls WHERE batch_pk = {batch} AND status = 'dialing'"
        ))
        .await;
    assert_eq!(
        dialing, 0,
        "calls taken back are scheduled again, not left dialing"
    );

    // Resumed as the API does: each call is dialed exactly once in all.
    let mut conn = world.conn().await;
    conn.transaction::<(), diesel::result::Error, _>(async |conn| {
        diesel::sql_query("SELECT id FROM batches WHERE id = $1 FOR UPDATE")
            .bind::<BigInt, _>(batch)
            .execute(conn)
            .await?;
        lifecycle::control::resume(conn, batch, true).await
    })
    .await
    .expect("resume");
    world.publish_jobs(batch).await;
    let calls = world.wait_final(batch, Duration::from_secs(60)).await;
    d.shutdown().await;
    let attempts = world
        .count(&format!(
            "SELECT count(*) AS n FROM call_attempts t JOIN calls c ON c.id = t.call_pk \
             WHERE c.batch_pk = {batch}"
        ))
        .await;
    assert_eq!(attempts, 100, "one attempt row per call");
    for c in &calls {
        assert_eq!(c.status, "completed", "{}", c.phone_raw);
        assert_eq!(c.attempts, 1, "{}", c.phone_raw);
        assert_eq!(
            world.terminal_attempts(c.id).await,
            [("call_completed".to_string(), 1)],
            "{}",
            c.phone_raw
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_originate_after_a_cancel_answered_and_the_calls_taken_back_end_cancelled() {
    let (world, batch, d) = slow_batch_under_way().await;
    world.control_like_the_api(batch, true).await;
    world.sims[0].reset_stats();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late = late_originates(&world);
    assert!(
        late.is_empty(),
        "Originates after the cancel answered: {late:?}"
    );
    let calls = world.wait_final(batch, Duration::from_secs(20)).await;
    d.shutdown().await;
    let mut cancelled = 0;
    for c in &calls {
        let terminal = world.terminal_attempts(c.id).await;
        match c.status.as_str() {
            "completed" => assert_eq!(terminal, [("call_completed".to_string(), 1)]),
            "cancelled" => {
                cancelled += 1;
                assert_eq!(c.attempts, 0, "{}: no attempt left", c.phone_raw);
                assert_eq!(
                    terminal,
                    [("call_cancelled".to_string(), 1)],
                    "{}",
                    c.phone_raw
                );
            }
            other => panic!("{}: {other}", c.phone_raw),
        }
    }
    assert!(cancelled >= 20, "only {cancelled} cancelled");
}

/// Originates the simulator received for `numbers` so far.
fn originated(world: &World, numbers: &[String]) -> u64 {
    let stats = world.sims[0].stats();
    numbers
        .iter()
        .map(|n| stats.originates_by_number.get(n).copied().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_originate_after_a_pause_while_accounts_queue_for_a_shared_server() {
    // Three accounts at 20 calls/s each on one server that takes 20/s: every call waits for
    // the server's own pace, seconds of them queued in the dispatcher at once.
    let world = World::answering(1, 0, 100, 300, 20).await;
    let mut batches = Vec::new();
    for (i, code) in ["ACME", "BETA", "GAMMA"].into_iter().enumerate() {
        let account = world.account(code, 20, 100, "").await;
        let numbers: Vec<String> = (0..100).map(|n| format!("+1555{}{n:06}", i + 1)).collect();
        let batch = world.batch(account, 1, &numbers).await;
        batches.push((batch, numbers));
    }
    let d = world.start().await;
    world.wait_originates(30, 30, 20, "never got going").await;
    let (paused, numbers) = &batches[0];
    world.control_like_the_api(*paused, false).await;
    tokio::time::sleep(IN_FLIGHT).await;
    let at_answer = originated(&world, numbers);
    // Longer than the queue in front of the server (three accounts' claims ahead).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = originated(&world, numbers);
    d.shutdown().await;
    assert_eq!(
        later, at_answer,
        "Originates of the paused batch after the pause answered"
    );
    assert!(
        originated(&world, &batches[1].1) > 0,
        "the other accounts kept dialing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_claimed_ahead_are_not_dialed_after_their_batch_expired() {
    let world = World::answering(1, 0, 100, 50, 100).await;
    let account = world.account("ACME", 10, 50, "").await;
    let numbers = numbers(100);
    let batch = world.batch(account, 1, &numbers).await;
    world
        .update_batch(batch, "expires_at = now() + interval '2 seconds'")
        .await;
    let d = world.start().await;
    world.wait_originates(2, 30, 20, "never got going").await;
    // From the moment it expires (plus an Originate already on its way), nothing more.
    let expired = "SELECT count(*) AS n FROM batches WHERE expires_at <= now()";
    while world.count(expired).await == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(IN_FLIGHT).await;
    let at_expiry = originated(&world, &numbers);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        originated(&world, &numbers),
        at_expiry,
        "Originates after the batch expired"
    );
    let calls = world.wait_final(batch, Duration::from_secs(30)).await;
    d.shutdown().await;
    let expired_calls = calls.iter().filter(|c| c.status == "expired").count() as u64;
    assert_eq!(
        expired_calls + at_expiry,
        100,
        "every call dialed before its batch expired or ended expired"
    );
    for c in calls.iter().filter(|c| c.status == "expired") {
        assert_eq!(
            world.event_types(c.id).await,
            ["call_expired"],
            "{}",
            c.phone_raw
        );
    }
}
