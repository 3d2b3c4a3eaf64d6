//! A platform that has been running: `events` delivered call events (three per call: started,
//! answered, completed, each with one delivery), their calls and attempts, in a completed batch
//! of their own account, written straight into the tables and vacuumed as autovacuum would have.
//! A benchmark's per-call figures must not depend on how much of this there is.

use diesel::sql_types::BigInt;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use dialer_core::db::DbPool;

const EVENTS_PER_CALL: usize = 3;
/// Rows per statement, so no single transaction grows huge.
const CALLS_PER_CHUNK: i64 = 50_000;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Writes about `events` delivered events for `account_id` (a batch numbered 999,998).
pub async fn write(pool: &DbPool, account_id: i64, events: usize) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let batch: Id = diesel::sql_query(
        "INSERT INTO batches (account_id, batch_id, status, completed_at) \
         VALUES ($1, 999998, 'completed', now()) RETURNING id",
    )
    .bind::<BigInt, _>(account_id)
    .get_result(&mut conn)
    .await?;
    let calls = events.div_ceil(EVENTS_PER_CALL) as i64;
    let mut from = 1i64;
    while from <= calls {
        let to = (from + CALLS_PER_CHUNK - 1).min(calls);
        let sql = format!(
            "WITH c AS (
                INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, phone_region,
                                   custom_data, status, disposition, attempts, event_seq,
                                   dispatched_at, finished_at, last_dialed_at)
                SELECT {account_id}, {batch}, '97' || lpad(g::text, 8, '0'),
                       '+9197' || lpad(g::text, 8, '0'), 'IN', '{{\"row\": ' || g || '}}',
                       'completed', 'answered', 1, 3, now(), now(), now()
                FROM generate_series({from}, {to}) g
                RETURNING id
            ), a AS (
                INSERT INTO call_attempts (call_pk, attempt, state, originated_at, sent_at,
                                           started_at, answered_at, ended_at, disposition,
                                           hangup_cause)
                SELECT id, 1, 'ended', now(), now(), now(), now(), now(), 'answered', 16 FROM c
            ), e AS (
                INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence,
                                         event_type, body, delivery_status, delivery_attempts,
                                         delivered_at, published_at)
                SELECT 'evt_history_' || c.id || '_' || s, {account_id}, {batch}, c.id, s,
                       (ARRAY['call_started', 'call_answered', 'call_completed'])[s],
                       rpad('{{\"history\": true, \"pad\": \"', 420, 'x') || '\"}}',
                       'delivered', 1, now(), now()
                FROM c CROSS JOIN generate_series(1, 3) s
                RETURNING id
            )
            INSERT INTO callback_deliveries (event_pk, attempt, url, status_code, latency_ms)
            SELECT id, 1, 'https://history.invalid/callbacks', 200, 5 FROM e",
            batch = batch.id,
        );
        conn.batch_execute(&sql).await?;
        from = to + 1;
    }
    for table in [
        "calls",
        "call_attempts",
        "call_events",
        "callback_deliveries",
    ] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await?;
    }
    // The history's pages written out now, not by a checkpoint during the measured run (a
    // million events are gigabytes of WAL: a checkpoint's worth of CPU billed to the run). Needs
    // a superuser or `pg_checkpoint`; without it the run pays for it, as it says.
    if let Err(e) = conn.batch_execute("CHECKPOINT").await {
        eprintln!("▸ CHECKPOINT after the history refused ({e}); the run may pay for it");
    }
    Ok(())
}
