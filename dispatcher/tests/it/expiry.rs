//! A batch's `expires_at`: every call not dialed by then ends `call_expired` at that time,
//! whatever it waits for (never dispatched, batch paused, calling hours, a retry), and a call
//! ended before its next attempt (cancelled, skipped, expired) carries that attempt's number.

use std::time::Duration;

use crate::helpers::{CallRow, World};
use ami_sim::{OutcomeKind, Rule};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::RunQueryDsl;

fn rules() -> Vec<Rule> {
    vec![
        Rule::timed("+1555000*", OutcomeKind::Answered, 50, 300),
        Rule::timed("+1555111*", OutcomeKind::Busy, 50, 0),
    ]
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Bool)]
    ok: bool,
}

/// Calls of the batch that ended before its `expires_at` (none may).
async fn ended_before_expiry(world: &World, batch: i64) -> bool {
    let mut conn = world.conn().await;
    let row: Check = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM calls c JOIN batches b ON b.id = c.batch_pk \
         WHERE b.id = $1 AND c.finished_at < b.expires_at) AS ok",
    )
    .bind::<BigInt, _>(batch)
    .get_result(&mut conn)
    .await
    .expect("check");
    row.ok
}

async fn batch_status(world: &World, batch: i64) -> String {
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    let mut conn = world.conn().await;
    diesel::sql_query("SELECT status FROM batches WHERE id = $1")
        .bind::<BigInt, _>(batch)
        .get_result::<S>(&mut conn)
        .await
        .expect("batch")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undialed_calls_expire_at_their_time_whatever_they_wait_for() {
    let world = World::new(1, rules(), 50, 100).await;
    let account = world.account("ACME", 50, 20, "timezone = 'UTC'").await;
    // Never dispatched: pending, calls queued, no dial job.
    let never = world.batch(account, 1, &[]).await;
    world
        .update_batch(never, "status = 'pending', dispatched_at = NULL")
        .await;
    world
        .exec(&format!(
            "INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, phone_region) \
             VALUES ({account}, {never}, '+15550000001', '+15550000001', 'US'), \
                    ({account}, {never}, '+15550000002', '+15550000002', 'US')"
        ))
        .await;
    // Paused: its jobs are dropped by the dispatcher, its calls stay scheduled.
    let paused = world
        .batch(
            account,
            2,
            &["+15550000003".to_string(), "+15550000004".to_string()],
        )
        .await;
    world.update_batch(paused, "status = 'paused'").await;
    // Waiting for calling hours that open in two hours.
    let now = chrono::Utc::now();
    let (start, end) = (
        (now + chrono::Duration::hours(2)).format("%H:%M"),
        (now + chrono::Duration::hours(3)).format("%H:%M"),
    );
    let hours = world.batch(account, 3, &["+15550000005".to_string()]).await;
    world
        .update_batch(
            hours,
            &format!("calling_hours = '{{\"start\": \"{start}\", \"end\": \"{end}\"}}'"),
        )
        .await;
    let d = world.start().await;
    // The call outside calling hours is parked by its claim first.
    wait_parked(&world, hours).await;
    for b in [never, paused, hours] {
        world
            .update_batch(b, "expires_at = now() + interval '2 seconds'")
            .await;
    }
    let mut all: Vec<CallRow> = Vec::new();
    for b in [never, paused, hours] {
        all.extend(world.wait_final(b, Duration::from_secs(20)).await);
    }
    d.shutdown().await;
    assert_eq!(world.sims[0].stats().originates_total, 0);
    for c in &all {
        assert_eq!(c.status, "expired", "{}", c.phone_raw);
        assert_eq!(
            world.terminal_attempts(c.id).await,
            [("call_expired".to_string(), 1)],
            "{}: one terminal event, for the attempt that will not happen",
            c.phone_raw
        );
    }
    for b in [never, paused, hours] {
        assert!(!ended_before_expiry(&world, b).await, "expired early");
        assert_eq!(batch_status(&world, b).await, "completed");
    }
}

/// Waits until the batch's calls were parked by a claim (calling hours): `next_due_at` set.
async fn wait_parked(world: &World, batch: i64) {
    for _ in 0..200 {
        let parked = world
            .count(&format!(
                "SELECT count(*) AS n FROM calls WHERE batch_pk = {batch} AND next_due_at IS NOT NULL"
            ))
            .await;
        if parked > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the call outside calling hours was never parked");
}

/// Waits until the batch's calls are all `retry_wait` (their first attempt ended busy).
async fn wait_retry_wait(world: &World, batch: i64) {
    for _ in 0..200 {
        let calls = world.calls(batch).await;
        if calls.iter().all(|c| c.status == "retry_wait") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "calls never waited for a retry: {:?}",
        world.calls(batch).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ended_while_waiting_for_a_retry_carries_the_next_attempts_number() {
    let world = World::new(1, rules(), 50, 100).await;
    let account = world
        .account(
            "ACME",
            50,
            20,
            "max_attempts = 3, retry_delay_seconds = 3600, retry_on = '{busy}'",
        )
        .await;
    let cancelled = world.batch(account, 1, &["+15551110001".to_string()]).await;
    let expired = world.batch(account, 2, &["+15551110002".to_string()]).await;
    let skipped = world.batch(account, 3, &["+15551110003".to_string()]).await;
    let d = world.start().await;
    for b in [cancelled, expired, skipped] {
        wait_retry_wait(&world, b).await;
    }
    // Cancelled as the API does; expired by the sweep; skipped by the claim of its retry
    // (do-not-call added meanwhile, the retry released now).
    world.control_like_the_api(cancelled, true).await;
    world
        .update_batch(expired, "expires_at = now() + interval '1 second'")
        .await;
    world
        .exec(
            "INSERT INTO dnc_numbers (account_id, phone_e164) VALUES (NULL, '+15551110003'); \
             UPDATE calls SET next_due_at = now() WHERE phone_e164 = '+15551110003'",
        )
        .await;
    let mut ended = Vec::new();
    for (b, event) in [
        (cancelled, "call_cancelled"),
        (expired, "call_expired"),
        (skipped, "call_skipped"),
    ] {
        let calls = world.wait_final(b, Duration::from_secs(20)).await;
        ended.push((calls[0].id, event));
    }
    d.shutdown().await;
    for (call, event) in ended {
        assert_eq!(
            world.terminal_attempts(call).await,
            [("call_busy".to_string(), 1), (event.to_string(), 2)],
            "each attempt number has exactly one terminal event"
        );
    }
}
