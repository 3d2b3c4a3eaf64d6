//! A batch cancelled while calls are in flight or waiting: calls in progress finish without a
//! retry, calls not dialed end `call_cancelled`, and the batch finishes once with its
//! `batch_completed`.

use std::time::Duration;

use crate::helpers::World;
use ami_sim::{OutcomeKind, Rule};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

#[derive(QueryableByName)]
struct BatchEnd {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn batch_end(world: &World, batch: i64) -> (String, i64) {
    let mut conn = world.conn().await;
    let row: BatchEnd = diesel::sql_query(
        "SELECT b.status, (SELECT count(*) FROM call_events e WHERE e.batch_pk = b.id \
         AND e.event_type = 'batch_completed') AS n FROM batches b WHERE b.id = $1",
    )
    .bind::<BigInt, _>(batch)
    .get_result(&mut conn)
    .await
    .expect("batch");
    (row.status, row.n)
}

/// What the API's cancel does: the batch is cancelled and its undialed calls end.
async fn cancel(world: &World, batch: i64) {
    world
        .exec(&format!(
            "UPDATE batches SET status = 'cancelled', cancelled_at = now() WHERE id = {batch}; \
             UPDATE calls SET status = 'cancelled', finished_at = now() WHERE batch_pk = {batch} \
             AND status IN ('queued', 'scheduled', 'retry_wait')"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_at_cancel_finish_without_retry_and_complete_the_batch() {
    let rules = vec![
        Rule::timed("+1555111*", OutcomeKind::Busy, 1500, 0),
        Rule::timed("+1555000*", OutcomeKind::Answered, 0, 2000),
    ];
    let world = World::new(1, rules, 50, 100).await;
    let account = world
        .account(
            "ACME",
            50,
            20,
            "max_attempts = 3, retry_delay_seconds = 1, retry_on = '{busy}', \
             callback_batch_events = true",
        )
        .await;
    let numbers = [
        "+15551110001".to_string(),
        "+15551110002".to_string(),
        "+15550000003".to_string(),
    ];
    let (batch, d) = world.batch_and_dispatcher(account, 1, &numbers).await;
    world.wait_originates(3, 20, 20, "never dialed").await;
    cancel(&world, batch).await;
    let calls = world.wait_final(batch, Duration::from_secs(20)).await;
    // Let a wrongly scheduled retry show itself.
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.shutdown().await;
    assert_eq!(world.sims[0].stats().originates_total, 3, "nothing retried");
    let got: Vec<(&str, i32)> = calls
        .iter()
        .map(|c| (c.status.as_str(), c.attempts))
        .collect();
    assert_eq!(got, [("busy", 1), ("busy", 1), ("completed", 1)]);
    for c in &calls[..2] {
        let last = world.last_event(c.id).await;
        assert_eq!(last.event_type, "call_busy");
        let body: serde_json::Value = serde_json::from_str(&last.body).expect("json");
        assert_eq!(body["will_retry"], false, "{body}");
        assert_eq!(body["disposition"], "busy");
    }
    assert_eq!(
        batch_end(&world, batch).await,
        ("cancelled".to_string(), 1),
        "still cancelled, with one batch_completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_cancelled_batch_ends_its_call_cancelled() {
    let world = World::answering(1, 0, 100, 50, 100).await;
    let account = world
        .account("ACME", 50, 20, "callback_batch_events = true")
        .await;
    let batch = world.batch(account, 1, &["+15550000001".to_string()]).await;
    // The batch cancelled, its call still `scheduled` (a retry released as the cancel ran).
    world
        .update_batch(batch, "status = 'cancelled', cancelled_at = now()")
        .await;
    let calls = world.final_calls(batch, Duration::from_secs(20)).await;
    assert_eq!(calls[0].status, "cancelled");
    let types = world.event_types(calls[0].id).await;
    assert_eq!(types, ["call_cancelled"]);
    assert_eq!(world.sims[0].stats().originates_total, 0);
    assert_eq!(batch_end(&world, batch).await, ("cancelled".to_string(), 1));
}
