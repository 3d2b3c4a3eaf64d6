//! Batch priority: of one account's batches dispatched together, the higher-priority batch's
//! calls are dialed first (fairness between accounts is the fairness tests').

use std::time::Duration;

use crate::helpers::World;
use dialer_core::dial_outbox;
use dialer_core::lifecycle::schedule::schedule_queued;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

#[derive(QueryableByName)]
struct Started {
    #[diesel(sql_type = Text)]
    phone_raw: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_higher_priority_batch_is_dialed_first() {
    let world = World::answering(1, 0, 100, 50, 100).await;
    // Five calls per second: twenty calls take four seconds, one after the other.
    let account = world.account("ACME", 5, 50, "").await;
    // The low-priority batch is created first, so its calls come first in every other order.
    let mut batches = Vec::new();
    for (batch_id, priority, prefix) in [(1, 0, "+1555000"), (2, 10, "+1555100")] {
        world
            .exec(&format!(
                "WITH b AS (INSERT INTO batches (account_id, batch_id, priority) \
                   VALUES ({account}, {batch_id}, {priority}) RETURNING id) \
                 INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, phone_region) \
                 SELECT {account}, b.id, p, p, 'US' FROM b, \
                   generate_series(0, 9) AS i, LATERAL (SELECT '{prefix}' || lpad(i::text, 4, '0') AS p) n"
            ))
            .await;
        let pk = world
            .count(&format!(
                "SELECT id AS n FROM batches WHERE account_id = {account} AND batch_id = {batch_id}"
            ))
            .await;
        batches.push(pk);
    }
    // Dispatched together, as the API's dispatch of the account does, and published together.
    let mut conn = world.conn().await;
    let scheduled = schedule_queued(&mut conn, account, None)
        .await
        .expect("dispatch");
    assert_eq!(scheduled.len(), 2);
    dial_outbox::publish_pending(
        &world.pool,
        &world.channel,
        &world.env.topology(),
        dial_outbox::Scope::Batches(&batches),
    )
    .await
    .expect("publish");
    let d = world.start().await;
    for b in &batches {
        world.wait_final(*b, Duration::from_secs(30)).await;
    }
    d.shutdown().await;
    let order: Vec<Started> = diesel::sql_query(
        "SELECT c.phone_raw FROM call_attempts t JOIN calls c ON c.id = t.call_pk \
         WHERE c.account_id = $1 ORDER BY t.started_at, t.id",
    )
    .bind::<BigInt, _>(account)
    .load(&mut conn)
    .await
    .expect("order");
    let order: Vec<&str> = order.iter().map(|s| s.phone_raw.as_str()).collect();
    assert_eq!(order.len(), 20);
    assert!(
        order[..10].iter().all(|p| p.starts_with("+1555100")),
        "the higher-priority batch first: {order:?}"
    );
}
