//! Calls late for their moment: put back and claimed again a few times at most, so a dispatcher
//! whose database is slow all the time still dials every call, once.

use std::time::Duration;

use crate::helpers::{World, numbers};

#[derive(diesel::QueryableByName)]
struct PutBacks {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    call_pk: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_slow_all_the_time_delays_calls_but_dials_each_once() {
    let world = World::answering(1, 0, 100, 50, 200).await;
    let account = world.account("ACME", 10, 50, "").await;
    // Every confirmation takes 200 ms per call (longer than the 100 ms it is asked ahead), so
    // every call the account's rate held back is late; every put back is recorded.
    world
        .exec(
            "CREATE TABLE put_backs (call_pk BIGINT NOT NULL);
             CREATE FUNCTION slow_confirm() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF OLD.sent_at IS NULL AND NEW.sent_at IS NOT NULL THEN PERFORM pg_sleep(0.2); END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER slow_confirm BEFORE UPDATE ON call_attempts
               FOR EACH ROW EXECUTE FUNCTION slow_confirm();
             CREATE FUNCTION count_put_back() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO put_backs VALUES (OLD.call_pk); RETURN OLD; END $$;
             CREATE TRIGGER count_put_back AFTER DELETE ON call_attempts
               FOR EACH ROW EXECUTE FUNCTION count_put_back();",
        )
        .await;
    let calls = world
        .dial_to_end(account, &numbers(20), Duration::from_secs(120))
        .await;

    for c in &calls {
        assert_eq!(c.status, "completed", "{}", c.phone_raw);
        assert_eq!(c.attempts, 1, "{}", c.phone_raw);
    }
    let stats = world.sims[0].stats();
    assert_eq!(stats.originates_total, 20, "each call dialed once");
    assert!(stats.originates_by_number.values().all(|n| *n == 1));
    let mut conn = world.conn().await;
    let put_backs: Vec<PutBacks> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT call_pk, count(*) AS n FROM put_backs GROUP BY call_pk ORDER BY call_pk",
        ),
        &mut conn,
    )
    .await
    .expect("put backs");
    let total: i64 = put_backs.iter().map(|p| p.n).sum();
    eprintln!("{total} put backs over {} calls", put_backs.len());
    assert!(
        total >= 10,
        "the slow confirmations put back only {total} calls"
    );
    for p in &put_backs {
        assert!(p.n <= 3, "call {} put back {} times", p.call_pk, p.n);
    }
}
