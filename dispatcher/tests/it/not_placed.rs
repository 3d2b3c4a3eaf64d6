//! The "not placed" transition on its own: an attempt whose Originate never reached a running
//! PBX is undone (no event, not counted) and its call waits to be dialed again, unless its batch
//! was cancelled or has expired meanwhile; an attempt placed after all is left alone.

use chrono::{Duration as ChronoDuration, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use dispatcher::state::{self, Transition};
use uuid::Uuid;

use crate::helpers::World;

#[derive(QueryableByName, Debug)]
struct Call {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    next_due_at: Option<chrono::DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    attempt_rows: i64,
    #[diesel(sql_type = BigInt)]
    events: i64,
}

/// A batch of one call, claimed as the dispatcher claims it (`dialing`, attempt 1
/// `originating`): the batch, the call and the attempt.
async fn dialing_call(world: &World, account: i64, batch_id: i64) -> (i64, i64, Uuid) {
    let number = format!("+1555{batch_id:07}");
    let batch = world.batch(account, batch_id, &[number]).await;
    let attempt = Uuid::new_v4();
    let call = world
        .count(&format!(
            "SELECT id AS n FROM calls WHERE batch_pk = {batch}"
        ))
        .await;
    world
        .exec(&format!(
            "UPDATE calls SET status = 'dialing', attempts = 1, last_dialed_at = now() \
             WHERE id = {call}; \
             INSERT INTO call_attempts (id, call_pk, attempt, server_id, state, account_id, \
             dispatcher_id) SELECT '{attempt}', {call}, 1, id, 'originating', {account}, 'd' \
             FROM asterisk_servers LIMIT 1"
        ))
        .await;
    (batch, call, attempt)
}

async fn call(world: &World, call: i64) -> Call {
    let mut conn = world.conn().await;
    diesel::sql_query(
        "SELECT c.status, c.attempts, c.next_due_at, \
         (SELECT count(*) FROM call_attempts t WHERE t.call_pk = c.id) AS attempt_rows, \
         (SELECT count(*) FROM call_events e WHERE e.call_pk = c.id) AS events \
         FROM calls c WHERE c.id = $1",
    )
    .bind::<BigInt, _>(call)
    .get_result(&mut conn)
    .await
    .expect("call")
}

async fn not_placed(world: &World, attempt: Uuid, due: chrono::DateTime<Utc>) -> bool {
    let mut conn = world.conn().await;
    state::apply(
        &mut conn,
        &Transition::NotPlaced { attempt, due },
        "http://127.0.0.1:8080",
    )
    .await
    .expect("apply")
    .is_some()
}

#[tokio::test]
async fn a_call_not_placed_waits_to_be_dialed_again_unless_its_batch_ended() {
    let world = World::answering(1, 0, 100, 10, 10).await;
    let account = world.account("ACME", 10, 10, "").await;
    let due = Utc::now() + ChronoDuration::seconds(30);

    // Dialing batch: undone, parked until `due`, no event; again changes nothing.
    let (_, c, a) = dialing_call(&world, account, 1).await;
    assert!(!not_placed(&world, a, due).await, "nothing to publish");
    let row = call(&world, c).await;
    assert_eq!((row.status.as_str(), row.attempts), ("scheduled", 0));
    assert_eq!((row.attempt_rows, row.events), (0, 0));
    let parked = row.next_due_at.expect("parked");
    assert!(
        (parked - due).num_milliseconds().abs() < 1000,
        "{parked} {due}"
    );
    not_placed(&world, a, due).await;
    assert_eq!(call(&world, c).await.status, "scheduled");

    // Expiring before `due`: parked until it expires, then the claim ends it.
    let (batch, c, a) = dialing_call(&world, account, 2).await;
    world
        .update_batch(batch, "expires_at = now() + interval '5 seconds'")
        .await;
    not_placed(&world, a, due).await;
    let row = call(&world, c).await;
    assert!(row.next_due_at.expect("parked") < due - ChronoDuration::seconds(20));

    // Already expired, or cancelled: ended now, undialed, with its one event.
    let (batch, c, a) = dialing_call(&world, account, 3).await;
    world
        .update_batch(batch, "expires_at = now() - interval '1 second'")
        .await;
    assert!(not_placed(&world, a, due).await);
    let row = call(&world, c).await;
    assert_eq!((row.status.as_str(), row.attempt_rows), ("expired", 0));
    assert_eq!(world.event_types(c).await, ["call_expired"]);
    let (batch, c, a) = dialing_call(&world, account, 4).await;
    world.update_batch(batch, "status = 'cancelled'").await;
    assert!(not_placed(&world, a, due).await);
    assert_eq!(call(&world, c).await.status, "cancelled");
    assert_eq!(world.event_types(c).await, ["call_cancelled"]);

    // Placed after all (its channel was seen): left alone.
    let (_, c, a) = dialing_call(&world, account, 5).await;
    world
        .exec(&format!(
            "UPDATE call_attempts SET state = 'started' WHERE id = '{a}'; \
             UPDATE calls SET status = 'started' WHERE id = {c}"
        ))
        .await;
    not_placed(&world, a, due).await;
    let row = call(&world, c).await;
    assert_eq!(
        (row.status.as_str(), row.attempts, row.attempt_rows),
        ("started", 1, 1)
    );
}
