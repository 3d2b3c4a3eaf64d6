//! Calls not dialed by their batch's `expires_at` end `call_expired` at that time, whatever they
//! wait for: never dispatched, batch paused, calling hours, a retry. A sweep (the dispatcher's)
//! ends them set-based; the claim still expires a job it finds past its time.
//!
//! Safe against a concurrent claim: calls are taken `FOR UPDATE SKIP LOCKED` and only in an
//! undialed state, so a call being claimed is either dialed (the claim won) or expired (the
//! sweep won), never both. Batches are locked first (`SKIP LOCKED` too), in the order pause and
//! cancel lock them, and the sweep never waits on a lock, so it cannot deadlock with either.

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::completion::{BatchRef, LifecycleError, complete_batch_if_done};
use crate::domain::{BatchStatus, CallStatus, EventType};
use crate::event_body::never_dialed_body_sql;
use crate::prepared::PrepareOnce;

/// Batches looked at per sweep.
const BATCHES_PER_SWEEP: i64 = 100;

/// What one sweep expired in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredCalls {
    pub batch_pk: i64,
    pub expired: i64,
    /// It ended the batch's last call (the batch is `completed`, its `batch_completed` written).
    pub batch_completed: bool,
}

#[derive(QueryableByName)]
struct DueBatch {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = Text)]
    accountcode: String,
    #[diesel(sql_type = BigInt)]
    batch_id: i64,
    #[diesel(sql_type = Bool)]
    batch_events: bool,
}

#[derive(QueryableByName)]
struct PerBatch {
    #[diesel(sql_type = BigInt)]
    batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Ends with `call_expired` (and its event, in the same statement) up to `max_calls` undialed
/// calls of batches whose `expires_at` has passed, then completes each batch left with no call
/// to finish. Inside the caller's transaction; idempotent (only undialed calls are taken).
pub async fn expire_due_calls(
    conn: &mut AsyncPgConnection,
    max_calls: i64,
) -> Result<Vec<ExpiredCalls>, LifecycleError> {
    let undialed = CallStatus::sql_list(CallStatus::is_undialed);
    let open = [
        BatchStatus::Pending,
        BatchStatus::Dispatching,
        BatchStatus::Paused,
    ]
    .map(|s| format!("'{s}'"))
    .join(",");
    let due: Vec<DueBatch> = diesel::sql_query(format!(
        "SELECT b.id, b.account_id, a.accountcode, b.batch_id, \
                a.callback_batch_events AS batch_events \
         FROM batches b JOIN accounts a ON a.id = b.account_id \
         WHERE b.expires_at <= now() AND b.status IN ({open}) \
           AND EXISTS (SELECT 1 FROM calls c WHERE c.batch_pk = b.id AND c.status IN ({undialed})) \
         ORDER BY b.id LIMIT $1 FOR UPDATE OF b SKIP LOCKED"
    ))
    .bind::<BigInt, _>(BATCHES_PER_SWEEP)
    .prepared()
    .load(conn)
    .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let pks: Vec<i64> = due.iter().map(|b| b.id).collect();
    let body = never_dialed_body_sql(EventType::CallExpired, None, "accountcode", "batch_id");
    let expired: Vec<PerBatch> = diesel::sql_query(format!(
        "WITH target AS (
            UPDATE calls c SET status = '{expired}', event_seq = c.event_seq + 1,
                   next_due_at = NULL, finished_at = now(), updated_at = now()
            WHERE c.id IN (SELECT id FROM calls WHERE batch_pk = ANY($1) AND status IN ({undialed})
                           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
              AND c.status IN ({undialed})
            RETURNING c.id, c.call_id, c.account_id, c.batch_pk, c.phone_raw, c.phone_e164,
                      c.custom_data, c.attempts, c.event_seq
         ), ev AS (
            SELECT t.*, b.batch_id, a.accountcode,
                   'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id
            FROM target t JOIN batches b ON b.id = t.batch_pk JOIN accounts a ON a.id = t.account_id
         ), ins AS (
            INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, event_type, body)
            SELECT event_id, account_id, batch_pk, id, event_seq, '{event}', {body} FROM ev
         )
         SELECT batch_pk, count(*) AS n FROM target GROUP BY batch_pk ORDER BY batch_pk",
        expired = CallStatus::Expired,
        event = EventType::CallExpired,
    ))
    .bind::<Array<BigInt>, _>(&pks)
    .bind::<BigInt, _>(max_calls)
    .prepared()
    .load(conn)
    .await?;
    let mut out = Vec::with_capacity(expired.len());
    for e in expired {
        let Some(b) = due.iter().find(|b| b.id == e.batch_pk) else {
            continue;
        };
        let batch = BatchRef {
            batch_pk: b.id,
            account_id: b.account_id,
            accountcode: &b.accountcode,
            batch_id: b.batch_id,
            batch_events: b.batch_events,
        };
        let batch_completed = complete_batch_if_done(conn, &batch).await?;
        out.push(ExpiredCalls {
            batch_pk: e.batch_pk,
            expired: e.n,
            batch_completed,
        });
    }
    Ok(out)
}
