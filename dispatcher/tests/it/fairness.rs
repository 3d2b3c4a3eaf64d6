//! Fairness: while one account has a long batch queued, another account's small batch starts
//! dialing within two seconds and gets its share of a shared server.

use std::time::{Duration, Instant};

use crate::helpers::{World, numbers};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::RunQueryDsl;

#[derive(QueryableByName)]
struct First {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    first: Option<chrono::DateTime<chrono::Utc>>,
    #[diesel(sql_type = BigInt)]
    dialed: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_batch_is_not_stuck_behind_a_big_one() {
    // The server takes 20 calls per second; each account may use all of it.
    let world = World::answering(1, 0, 100, 200, 20).await;
    let big = world.account("BIG", 20, 100, "").await;
    let small = world.account("SMALL", 20, 100, "").await;
    let big_batch = world.batch(big, 1, &numbers(600)).await;
    let d = world.start().await;
    // Let the big batch get going.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let submitted = chrono::Utc::now();
    let started = Instant::now();
    let small_numbers: Vec<String> = (0..10).map(|i| format!("+1555900{i:04}")).collect();
    let small_batch = world.batch(small, 1, &small_numbers).await;
    world.wait_final(small_batch, Duration::from_secs(20)).await;
    let small_took = started.elapsed();

    let mut conn = world.conn().await;
    let first: First = diesel::sql_query(
        "SELECT min(t.originated_at) AS first, count(*) AS dialed FROM call_attempts t \
         JOIN calls c ON c.id = t.call_pk WHERE c.batch_pk = $1",
    )
    .bind::<BigInt, _>(small_batch)
    .get_result(&mut conn)
    .await
    .expect("first");
    let waited = first.first.expect("dialed") - submitted;
    assert!(
        waited < chrono::Duration::seconds(2),
        "the small batch waited {waited} for its first call"
    );
    assert_eq!(first.dialed, 10);
    // Its share: ten calls at about half of 20/s take about one second, not the thirty seconds
    // the big batch still needs.
    assert!(
        small_took < Duration::from_secs(6),
        "small batch took {small_took:?}"
    );
    let big_left = world.scheduled(big_batch).await.len();
    assert!(
        big_left > 300,
        "the big batch was nearly done ({big_left} left): no contention shown"
    );
    d.shutdown().await;
}
