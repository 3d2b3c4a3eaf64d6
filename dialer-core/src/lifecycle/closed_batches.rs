//! Undialed calls of batches that closed before dialing them end set-based, whatever they wait
//! for (never dispatched, batch paused, calling hours, a retry):
//! - **expired**: the batch's `expires_at` passed; each ends `call_expired`;
//! - **cancelled**: a cancel ends the first [`crate::lifecycle::control::CANCEL_AT_ONCE`] calls
//!   in its own transaction (all of a small batch); the rest of a large one end `call_cancelled`
//!   here, a few thousand per transaction, so no statement outlives `statement_timeout` (a
//!   1,000,000-call cancel in one statement took more than 60 s).
//!
//! A sweep (every dispatcher's, every API's) calls it; the claim still ends a job it finds past
//! its time or cancelled.
//!
//! Safe against a concurrent claim: calls are taken `FOR UPDATE SKIP LOCKED` and only in an
//! undialed state, so a call being claimed is either dialed (the claim won) or ended here (the
//! sweep won), never both. Batches are locked first (`SKIP LOCKED` too), in the order pause and
//! cancel lock them, and the sweep never waits on a lock, so it cannot deadlock with either.

use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::completion::{BatchRef, LifecycleError, complete_batch_if_done};
use crate::domain::{BatchStatus, CallStatus, EventType};
use crate::event_body::never_dialed_body_sql;
use crate::prepared::PrepareOnce;

/// Batches looked at per sweep.
const BATCHES_PER_SWEEP: i64 = 100;

/// What one sweep ended in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedBatchCalls {
    pub batch_pk: i64,
    /// `CallExpired` or `CallCancelled`.
    pub event: EventType,
    pub ended: i64,
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
    #[diesel(sql_type = Bool)]
    cancelled: bool,
}

/// Calls ended in one batch by [`end_undialed_calls`].
#[derive(QueryableByName)]
pub(super) struct PerBatch {
    #[diesel(sql_type = BigInt)]
    pub(super) batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    pub(super) n: i64,
}

/// What [`end_undialed_calls`] does with a call row another transaction holds.
#[derive(Debug, Clone, Copy)]
pub(super) enum LockedRows {
    /// Waits for it (a cancel, which must end the calls it can see).
    Wait,
    /// Leaves it to the next sweep (a sweep never waits on a lock).
    Skip,
}

/// Ends up to `max_calls` undialed calls of expired and of cancelled batches, each with its event
/// in the same statement, then completes each batch left with no call to finish. Inside the
/// caller's transaction; idempotent (only undialed calls are taken).
pub async fn end_calls_of_closed_batches(
    conn: &mut AsyncPgConnection,
    max_calls: i64,
) -> Result<Vec<ClosedBatchCalls>, LifecycleError> {
    let undialed_c = CallStatus::sql_unfinished("c.", CallStatus::is_undialed);
    let open = [
        BatchStatus::Pending,
        BatchStatus::Dispatching,
        BatchStatus::Paused,
    ]
    .map(|s| format!("'{s}'"))
    .join(",");
    let due: Vec<DueBatch> = diesel::sql_query(format!(
        "SELECT b.id, b.account_id, a.accountcode, b.batch_id, \
                a.callback_batch_events AS batch_events, b.status = '{cancelled}' AS cancelled \
         FROM batches b JOIN accounts a ON a.id = b.account_id \
         WHERE ((b.expires_at <= now() AND b.status IN ({open})) \
                OR (b.status = '{cancelled}' AND b.completed_at IS NULL)) \
           AND EXISTS (SELECT 1 FROM calls c WHERE c.batch_pk = b.id AND {undialed_c}) \
         ORDER BY b.id LIMIT $1 FOR UPDATE OF b SKIP LOCKED",
        cancelled = BatchStatus::Cancelled,
    ))
    .bind::<BigInt, _>(BATCHES_PER_SWEEP)
    .prepared()
    .load(conn)
    .await?;
    let mut out = Vec::new();
    let mut budget = max_calls;
    for (cancelled, event, status) in [
        (false, EventType::CallExpired, CallStatus::Expired),
        (true, EventType::CallCancelled, CallStatus::Cancelled),
    ] {
        let pks: Vec<i64> = due
            .iter()
            .filter(|b| b.cancelled == cancelled)
            .map(|b| b.id)
            .collect();
        if pks.is_empty() || budget <= 0 {
            continue;
        }
        let ended = end_undialed_calls(conn, &pks, event, status, budget, LockedRows::Skip).await?;
        for e in ended {
            budget -= e.n;
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
            out.push(ClosedBatchCalls {
                batch_pk: e.batch_pk,
                event,
                ended: e.n,
                batch_completed,
            });
        }
    }
    Ok(out)
}

/// Ends up to `max_calls` undialed calls of batches `pks` (lowest ids first) as `status`, each
/// with its `event`, in one statement; how many per batch. The sweep's and a cancel's.
pub(super) async fn end_undialed_calls(
    conn: &mut AsyncPgConnection,
    pks: &[i64],
    event: EventType,
    status: CallStatus,
    max_calls: i64,
    locked: LockedRows,
) -> QueryResult<Vec<PerBatch>> {
    // One condition, stated for the selection and again for the row updated (it may have been
    // dialed or ended between the two).
    let undialed = |alias| CallStatus::sql_unfinished(alias, CallStatus::is_undialed);
    let (inner, outer) = (undialed(""), undialed("c."));
    let body = never_dialed_body_sql(event, None, "accountcode", "batch_id");
    let lock = match locked {
        LockedRows::Wait => "FOR UPDATE",
        LockedRows::Skip => "FOR UPDATE SKIP LOCKED",
    };
    diesel::sql_query(format!(
        "WITH target AS (
            UPDATE calls c SET status = '{status}', event_seq = c.event_seq + 1,
                   next_due_at = NULL, finished_at = now(), updated_at = now()
            WHERE c.id IN (SELECT id FROM calls WHERE batch_pk = ANY($1) AND {inner}
                           ORDER BY id LIMIT $2 {lock})
              AND {outer}
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
         SELECT batch_pk, count(*) AS n FROM target GROUP BY batch_pk ORDER BY batch_pk"
    ))
    .bind::<Array<BigInt>, _>(pks)
    .bind::<BigInt, _>(max_calls)
    .prepared()
    .load(conn)
    .await
}
