//! The operator's batch controls (pause, resume, cancel): the rows each one changes.
//!
//! Pause and cancel take back the calls a dispatcher claimed but has not sent yet (waiting for
//! their pacing slot): their attempt rows are deleted and the calls are `scheduled` again (then
//! cancelled, by a cancel). A dispatcher confirms each attempt in PostgreSQL right before its
//! Originate (`call_attempts.sent_at`), so whichever commits first wins: an attempt confirmed
//! first is sent (it started before the pause), one taken back first is never sent. The caller
//! holds the account's claim lock ([`lock_account_claims`], before the batch's row lock), so no
//! claim of the batch is in flight while its state changes.

use diesel::QueryResult;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::{AttemptState, BatchStatus, CallStatus, EventType};
use crate::lifecycle::closed_batches::{LockedRows, end_undialed_calls};
use crate::lifecycle::schedule::open_status;
use crate::prepared::PrepareOnce;

/// Namespace of the per-account claim lock (first key of `pg_advisory_xact_lock(int, int)`).
const CLAIM_LOCK_SPACE: i32 = 0x4449_414c; // "DIAL"

/// Takes the account's claim lock until the end of the transaction: dispatchers claim an
/// account's calls under it (one claim at a time across dispatchers, so the channel limit holds
/// in aggregate), and pause and cancel take it before the batch's row lock, so a claim is
/// either committed before they look at the batch's calls or sees the batch paused.
pub async fn lock_account_claims(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2::int4)")
        .bind::<Integer, _>(CLAIM_LOCK_SPACE)
        .bind::<Integer, _>((account_id % i64::from(i32::MAX)) as i32)
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

/// The batch becomes `paused`: no new call of it starts, and calls claimed but not sent yet go
/// back to `scheduled` (resume re-arms their jobs). The caller holds [`lock_account_claims`].
pub async fn pause(conn: &mut AsyncPgConnection, batch_pk: i64) -> QueryResult<()> {
    set_status(conn, batch_pk, BatchStatus::Paused, "paused_at = now()").await?;
    take_back_unsent(conn, batch_pk).await?;
    Ok(())
}

/// Calls of the batch claimed by a dispatcher whose Originate has not been confirmed yet
/// become `scheduled` again for the attempt they had: the attempt row is deleted (it never
/// happened), the attempt count and last dial time are restored. An attempt a dispatcher is
/// confirming right now is locked: the delete waits for it and then skips it (sent). Returns
/// how many calls were taken back.
async fn take_back_unsent(conn: &mut AsyncPgConnection, batch_pk: i64) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "WITH unsent AS (
            DELETE FROM call_attempts t USING calls c
            WHERE c.batch_pk = $1 AND {dialing} AND t.call_pk = c.id
              AND t.state = '{originating}' AND t.sent_at IS NULL
            RETURNING t.id, t.call_pk
         )
         UPDATE calls c SET status = '{scheduled}', attempts = c.attempts - 1,
                last_dialed_at = (SELECT max(p.originated_at) FROM call_attempts p
                                  WHERE p.call_pk = c.id AND p.id NOT IN (SELECT id FROM unsent)),
                updated_at = now()
         FROM unsent u WHERE c.id = u.call_pk",
        dialing = CallStatus::sql_unfinished("c.", |s| s == CallStatus::Dialing),
        originating = AttemptState::Originating,
        scheduled = CallStatus::Scheduled,
    ))
    .bind::<BigInt, _>(batch_pk)
    .prepared()
    .execute(conn)
    .await
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
    .prepared()
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
    diesel::sql_query(format!(
        "UPDATE dial_jobs j SET published_at = NULL
         FROM calls c
         WHERE j.call_pk = c.id AND c.batch_pk = $1 AND {scheduled}
           AND j.attempt = c.attempts + 1 AND j.published_at IS NOT NULL",
        scheduled = CallStatus::sql_unfinished("c.", |s| s == CallStatus::Scheduled),
    ))
    .bind::<BigInt, _>(batch_pk)
    .prepared()
    .execute(conn)
    .await?;
    Ok(())
}

/// Calls a cancel ends in its own transaction; the closing sweep ends the rest of a larger
/// batch, the same way, within seconds (`crate::lifecycle::end_calls_of_closed_batches`).
pub const CANCEL_AT_ONCE: i64 = 10_000;

/// The batch becomes `cancelled` and its calls not yet dialed end with a `call_cancelled`
/// event, set-based (one statement for the calls and their events), those claimed but not sent
/// yet included: up to [`CANCEL_AT_ONCE`] now, the rest by the closing sweep. Returns how many
/// calls were cancelled now. The caller holds [`lock_account_claims`].
pub async fn cancel(conn: &mut AsyncPgConnection, batch_pk: i64) -> QueryResult<usize> {
    set_status(
        conn,
        batch_pk,
        BatchStatus::Cancelled,
        "cancelled_at = now()",
    )
    .await?;
    take_back_unsent(conn, batch_pk).await?;
    let ended = end_undialed_calls(
        conn,
        &[batch_pk],
        EventType::CallCancelled,
        CallStatus::Cancelled,
        CANCEL_AT_ONCE,
        LockedRows::Wait,
    )
    .await?;
    Ok(ended.iter().map(|b| b.n as usize).sum())
}
