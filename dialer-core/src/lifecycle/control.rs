//! The operator's batch controls (pause, resume, cancel): the rows each one changes.

use diesel::QueryResult;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::{BatchStatus, CallStatus, EventType};
use crate::event_body::never_dialed_body_sql;
use crate::lifecycle::schedule::open_status;

/// The batch becomes `paused`: no new call of it starts.
pub async fn pause(conn: &mut AsyncPgConnection, batch_pk: i64) -> QueryResult<()> {
    set_status(conn, batch_pk, BatchStatus::Paused, "paused_at = now()").await
}

/// The batch's `status` becomes `status`, with the time column the change also sets (`also`,
/// one of this module's assignments).
async fn set_status(
    conn: &mut AsyncPgConnection,
    batch_pk: i64,
    status: BatchStatus,
    also: &'static str,
) -> QueryResult<()> {
    diesel::sql_query(format!(
        "UPDATE batches SET status = $2, {also}, updated_at = now() WHERE id = $1"
    ))
    .bind::<BigInt, _>(batch_pk)
    .bind::<Text, _>(status.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// A paused batch dials again: `dispatching` when it was dispatched before, else `pending`.
/// The dispatcher drops jobs of paused batches (their calls stay `scheduled`), so the current
/// job of every scheduled call is re-armed for the outbox; a job still queued is then delivered
/// twice, which the dispatcher's claim makes harmless.
pub async fn resume(
    conn: &mut AsyncPgConnection,
    batch_pk: i64,
    was_dispatched: bool,
) -> QueryResult<()> {
    set_status(
        conn,
        batch_pk,
        open_status(was_dispatched),
        "paused_at = NULL",
    )
    .await?;
    diesel::sql_query(
        "UPDATE dial_jobs j SET published_at = NULL
         FROM calls c
         WHERE j.call_pk = c.id AND c.batch_pk = $1 AND c.status = 'scheduled'
           AND j.attempt = c.attempts + 1 AND j.published_at IS NOT NULL",
    )
    .bind::<BigInt, _>(batch_pk)
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch whose calls are being cancelled.
pub struct CancelledBatch<'a> {
    pub batch_pk: i64,
    pub batch_id: i64,
    pub account_id: i64,
    pub accountcode: &'a str,
}

/// The batch becomes `cancelled` and every call not yet dialed ends now with a
/// `call_cancelled` event, set-based (one statement for the calls and their events). Returns
/// how many calls were cancelled.
pub async fn cancel(conn: &mut AsyncPgConnection, batch: CancelledBatch<'_>) -> QueryResult<usize> {
    set_status(
        conn,
        batch.batch_pk,
        BatchStatus::Cancelled,
        "cancelled_at = now()",
    )
    .await?;
    let undialed = CallStatus::sql_list(CallStatus::is_undialed);
    let body = never_dialed_body_sql(EventType::CallCancelled, None, "$2", "$3");
    diesel::sql_query(format!(
        "WITH target AS (
            UPDATE calls SET status = 'cancelled', event_seq = event_seq + 1,
                   next_due_at = NULL, finished_at = now(), updated_at = now()
            WHERE batch_pk = $1 AND status IN ({undialed})
            RETURNING id, call_id, phone_raw, phone_e164, custom_data, attempts, event_seq
         ), ev AS (
            SELECT t.*, 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id FROM target t
         )
         INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, event_type, body)
         SELECT event_id, $4, $1, id, event_seq, 'call_cancelled', {body} FROM ev"
    ))
    .bind::<BigInt, _>(batch.batch_pk)
    .bind::<Text, _>(batch.accountcode)
    .bind::<BigInt, _>(batch.batch_id)
    .bind::<BigInt, _>(batch.account_id)
    .execute(conn)
    .await
}
