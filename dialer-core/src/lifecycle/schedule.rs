//! Calls handed to the dialer (`queued` -> `scheduled`, with their dial jobs) and the batch
//! states that follow from new calls: `dispatching` once dispatched, reopened when calls are
//! added to a completed batch.

use diesel::QueryResult;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::{BatchStatus, CallStatus};
use crate::prepared::PrepareOnce;

/// Calls of one batch scheduled by [`schedule_queued`].
#[derive(Debug, diesel::QueryableByName)]
pub struct ScheduledCalls {
    #[diesel(sql_type = BigInt)]
    pub batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    pub batch_id: i64,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Schedules the queued calls of the account's dispatchable batches (or of one batch) and
/// writes their dial jobs to the outbox, in one statement; each batch that got calls becomes
/// `dispatching`. Only `queued` rows are taken, so concurrent dispatches cannot schedule a call
/// twice (row locks make the second re-check them after the first commits).
pub async fn schedule_queued(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    only_batch_pk: Option<i64>,
) -> QueryResult<Vec<ScheduledCalls>> {
    diesel::sql_query(format!(
        "WITH eligible AS (
            SELECT id, batch_id, priority FROM batches
            WHERE account_id = $1 AND ($2::bigint IS NULL OR id = $2)
              AND status IN ('pending', 'dispatching', 'completed')
         ), sched AS (
            UPDATE calls c SET status = 'scheduled', dispatched_at = now(), updated_at = now()
            FROM eligible b
            WHERE c.batch_pk = b.id AND {queued}
            RETURNING c.id, c.batch_pk, c.attempts
         ), jobs AS (
            -- Higher-priority batches' jobs first: ids, hence publish order, follow priority.
            INSERT INTO dial_jobs (call_pk, attempt)
            SELECT s.id, s.attempts + 1 FROM sched s JOIN eligible b ON b.id = s.batch_pk
            ORDER BY b.priority DESC, s.id
            ON CONFLICT (call_pk, attempt) DO NOTHING
         ), marked AS (
            UPDATE batches SET status = 'dispatching', dispatched_at = coalesce(dispatched_at, now()),
                   completed_at = NULL, updated_at = now()
            WHERE id IN (SELECT batch_pk FROM sched) AND status IN ('pending', 'dispatching', 'completed')
         )
         SELECT s.batch_pk, b.batch_id, count(*) AS n
         FROM sched s JOIN eligible b ON b.id = s.batch_pk
         GROUP BY s.batch_pk, b.batch_id ORDER BY b.batch_id",
        queued = CallStatus::sql_unfinished("c.", |s| s == CallStatus::Queued),
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<Nullable<BigInt>, _>(only_batch_pk)
    .prepared()
    .load(conn)
    .await
}

/// New calls reopen a completed batch: `dispatching` when it was dispatched before, else
/// `pending`.
pub async fn reopen(
    conn: &mut AsyncPgConnection,
    batch_pk: i64,
    was_dispatched: bool,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE batches SET status = $2, completed_at = NULL, updated_at = now() WHERE id = $1",
    )
    .bind::<BigInt, _>(batch_pk)
    .bind::<Text, _>(open_status(was_dispatched).as_str())
    .prepared()
    .execute(conn)
    .await?;
    Ok(())
}

/// The state of a batch that may dial: `dispatching` once it was dispatched, else `pending`.
pub fn open_status(was_dispatched: bool) -> BatchStatus {
    if was_dispatched {
        BatchStatus::Dispatching
    } else {
        BatchStatus::Pending
    }
}
