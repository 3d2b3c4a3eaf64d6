//! Channel limits as the simulated PBX counts them, a pause taking effect within a second, and
//! the batch's completion.

use std::time::Duration;

use crate::helpers::{World, batch_under_way, numbers};
use ami_sim::{OutcomeKind, Rule};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_and_server_channel_limits_are_never_exceeded() {
    // Account limit 5 on a server of 50.
    let world = World::answering(1, 0, 500, 50, 200).await;
    let account = world.account("ACME", 50, 5, "").await;
    let numbers = numbers(40);
    world
        .dial_to_end(account, &numbers, Duration::from_secs(60))
        .await;
    let max = world.sims[0].stats().max_concurrent_channels;
    assert!(
        max <= 5,
        "{max} channels at once for an account limited to 5"
    );
    assert!(max >= 4, "the limit was not even approached ({max})");

    // Server limit 3 under an account allowed 50.
    let world = World::answering(1, 0, 500, 3, 200).await;
    let account = world.account("ACME", 50, 50, "").await;
    world
        .dial_to_end(account, &numbers, Duration::from_secs(60))
        .await;
    let max = world.sims[0].stats().max_concurrent_channels;
    assert!(max <= 3, "{max} channels at once on a server limited to 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_paused_mid_way_stops_dialing_within_a_second() {
    let (world, batch, d) = batch_under_way().await;
    // What the API's pause does to the batch.
    world
        .update_batch(batch, "status = 'paused', paused_at = now()")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_a_second = world.sims[0].stats().originates_total;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = world.sims[0].stats().originates_total;
    d.shutdown().await;
    assert_eq!(
        later, after_a_second,
        "still dialing a second after the pause"
    );
    assert!(later < 200);
    let scheduled = world.scheduled(batch).await.len();
    assert_eq!(scheduled as u64, 200 - later, "the rest waits, undialed");
}

#[derive(QueryableByName)]
struct Ev {
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_outcome_completes_the_batch_with_its_event_for_subscribers() {
    let rules = vec![
        Rule::timed("+1555000*", OutcomeKind::Answered, 0, 100),
        Rule::timed("+1555111*", OutcomeKind::Busy, 0, 0),
    ];
    let world = World::new(1, rules, 50, 200).await;
    let account = world
        .account("ACME", 50, 50, "callback_batch_events = true")
        .await;
    let numbers = vec![
        "+15550000001".to_string(),
        "+15550000002".to_string(),
        "+15551110003".to_string(),
    ];
    let (batch, d) = world.batch_and_dispatcher(account, 9, &numbers).await;
    world.wait_final(batch, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.shutdown().await;
    let mut conn = world.conn().await;
    let ev: Ev = diesel::sql_query(
        "SELECT e.body, b.status, (SELECT count(*) FROM call_events x WHERE x.batch_pk = b.id \
         AND x.event_type = 'batch_completed') AS n \
         FROM batches b LEFT JOIN call_events e ON e.batch_pk = b.id AND e.event_type = 'batch_completed' \
         WHERE b.id = $1",
    )
    .bind::<BigInt, _>(batch)
    .get_result(&mut conn)
    .await
    .expect("batch_completed");
    assert_eq!(ev.status, "completed");
    assert_eq!(ev.n, 1, "exactly one batch_completed");
    let body: serde_json::Value = serde_json::from_str(&ev.body).expect("json");
    assert_eq!(body["batch_id"], 9);
    assert_eq!(body["total_calls"], 3);
    assert_eq!(body["completed_calls"], 2);
    assert_eq!(body["failed_calls"], 1);
    assert_eq!(body["counts"]["busy"], 1);
    // Every status, zeros included, as batch status lists them, and the counts of after the
    // answer.
    assert_eq!(body["counts"]["queued"], 0);
    assert_eq!(body["counts"]["answered_human"], 0);
    assert_eq!(
        body["counts"].as_object().map(|m| m.len()),
        Some(
            dialer_core::domain::CallStatus::ALL.len()
                + dialer_core::domain::ANSWER_COUNT_KEYS.len()
        )
    );
}
