//! A batch's completion: the batch row's final state and its `batch_completed` event, whose body
//! is built here only (the dispatcher after a call's last outcome, the API after a cancel).

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::{AnsweredBy, BatchStatus, CallStatus, Disposition, EventType, StateCounts};
use crate::event_body::{new_event_id, rfc3339};
use crate::prepared::PrepareOnce;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("event body: {0}")]
    Body(#[from] serde_json::Error),
}

/// The batch facts a completion needs, as its caller already holds them.
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    /// `batches.id`.
    pub batch_pk: i64,
    pub account_id: i64,
    pub accountcode: &'a str,
    /// The client's batch id.
    pub batch_id: i64,
    /// The account subscribes to batch events (`batch_completed`).
    pub batch_events: bool,
}

#[derive(QueryableByName)]
struct Remaining {
    #[diesel(sql_type = BigInt)]
    pending: i64,
}

/// After a call's final outcome: when no call of the batch is left to finish, the batch is
/// `completed` and (for accounts that subscribe) its `batch_completed` event is written. The
/// batch row is locked first, so two calls ending at once cannot both (or neither) complete it.
/// A cancelled batch stays `cancelled`; its last call in progress sets `completed_at` (once).
pub async fn complete_batch_if_done(
    conn: &mut AsyncPgConnection,
    batch: &BatchRef<'_>,
) -> Result<bool, LifecycleError> {
    let unfinished = CallStatus::sql_unfinished("", |_| true);
    let (pending, dispatching, paused, cancelled, completed) = (
        BatchStatus::Pending,
        BatchStatus::Dispatching,
        BatchStatus::Paused,
        BatchStatus::Cancelled,
        BatchStatus::Completed,
    );
    // Sent together; the server runs the lock first, so the probe sees every call that ended
    // before the lock was granted.
    let shared: &AsyncPgConnection = conn;
    let (locked, remaining): (Vec<Remaining>, Vec<Remaining>) = futures_util::future::try_join(
        diesel::sql_query(format!(
            "SELECT 0::bigint AS pending FROM batches WHERE id = $1 \
             AND (status IN ('{pending}', '{dispatching}', '{paused}') \
                  OR (status = '{cancelled}' AND completed_at IS NULL)) FOR UPDATE"
        ))
        .bind::<BigInt, _>(batch.batch_pk)
        .prepared()
        .load(&mut &*shared),
        // Whether any call is left, not how many: this runs at every call's end, and counting
        // a large batch each time would make finishing it quadratic.
        diesel::sql_query(format!(
            "SELECT count(*) AS pending FROM (SELECT 1 FROM calls WHERE batch_pk = $1 \
             AND {unfinished} LIMIT 1) x"
        ))
        .bind::<BigInt, _>(batch.batch_pk)
        .prepared()
        .load(&mut &*shared),
    )
    .await?;
    if locked.is_empty() {
        return Ok(false);
    }
    if remaining.into_iter().next().map_or(1, |r| r.pending) > 0 {
        return Ok(false);
    }
    diesel::sql_query(format!(
        "UPDATE batches SET status = CASE WHEN status = '{cancelled}' THEN status ELSE '{completed}' END, \
         completed_at = now(), updated_at = now() WHERE id = $1"
    ))
    .bind::<BigInt, _>(batch.batch_pk)
    .prepared()
    .execute(conn)
    .await?;
    if batch.batch_events {
        let counts = state_counts(conn, batch.batch_pk).await?;
        write_batch_completed(conn, batch, &counts).await?;
    }
    Ok(true)
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: CallStatus,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    answered: i64,
    #[diesel(sql_type = BigInt)]
    human: i64,
    #[diesel(sql_type = BigInt)]
    machine: i64,
    #[diesel(sql_type = BigInt)]
    opted_out: i64,
}

/// The batch's calls per state (the states present only), the one query behind batch status and
/// `batch_completed`.
pub async fn state_counts(
    conn: &mut AsyncPgConnection,
    batch_pk: i64,
) -> Result<StateCounts, LifecycleError> {
    let rows: Vec<StatusCount> = diesel::sql_query(format!(
        "SELECT status, count(*) AS n, count(*) FILTER (WHERE disposition = '{}') AS answered, \
           count(*) FILTER (WHERE answered_by = '{}') AS human, \
           count(*) FILTER (WHERE answered_by = '{}') AS machine, \
           count(*) FILTER (WHERE opted_out) AS opted_out \
         FROM calls WHERE batch_pk = $1 GROUP BY status",
        Disposition::Answered,
        AnsweredBy::Human,
        AnsweredBy::Machine,
    ))
    .bind::<BigInt, _>(batch_pk)
    .prepared()
    .load(conn)
    .await?;
    Ok(StateCounts {
        answered_timeouts: rows
            .iter()
            .filter(|r| r.status == CallStatus::Timeout)
            .map(|r| r.answered)
            .sum(),
        answered_human: rows.iter().map(|r| r.human).sum(),
        answered_machine: rows.iter().map(|r| r.machine).sum(),
        opted_out: rows.iter().map(|r| r.opted_out).sum(),
        by_status: rows.into_iter().map(|r| (r.status, r.n)).collect(),
    })
}

/// Writes the batch's `batch_completed` event (the caller checked that the account subscribes)
/// from its calls per state, as the caller counted them.
pub async fn write_batch_completed(
    conn: &mut AsyncPgConnection,
    batch: &BatchRef<'_>,
    counts: &StateCounts,
) -> Result<(), LifecycleError> {
    let event_id = new_event_id();
    let now = Utc::now();
    let body = batch_completed_body(&event_id, batch, counts, now);
    diesel::sql_query(format!(
        "INSERT INTO call_events (event_id, account_id, batch_pk, event_type, body, occurred_at) \
         VALUES ($1, $2, $3, '{}', $4, $5)",
        EventType::BatchCompleted
    ))
    .bind::<Text, _>(&event_id)
    .bind::<BigInt, _>(batch.account_id)
    .bind::<BigInt, _>(batch.batch_pk)
    .bind::<Text, _>(body.to_string())
    .bind::<Timestamptz, _>(now)
    .prepared()
    .execute(conn)
    .await?;
    Ok(())
}

/// The contract's `batch_completed` body: totals by the one bucket mapping, and the count of
/// every state, zeros included, as batch status shows them.
pub fn batch_completed_body(
    event_id: &str,
    batch: &BatchRef<'_>,
    counts: &StateCounts,
    at: DateTime<Utc>,
) -> serde_json::Value {
    let totals = counts.totals();
    // Every status, zeros included, as batch status lists them: the two must agree.
    let count_map: serde_json::Map<String, serde_json::Value> = counts
        .count_map()
        .into_iter()
        .map(|(k, n)| (k.to_owned(), serde_json::Value::from(n)))
        .collect();
    serde_json::json!({
        "event_id": event_id,
        "event_type": EventType::BatchCompleted.as_str(),
        "accountcode": batch.accountcode,
        "batch_id": batch.batch_id,
        "total_calls": totals.total_calls,
        "completed_calls": totals.completed_calls,
        "failed_calls": totals.failed_calls,
        "counts": count_map,
        "occurred_at": rfc3339(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_counts_every_state_zeros_included() {
        let batch = BatchRef {
            batch_pk: 7,
            account_id: 3,
            accountcode: "ACME",
            batch_id: 42,
            batch_events: true,
        };
        let counts = StateCounts {
            by_status: vec![
                (CallStatus::Completed, 2),
                (CallStatus::Busy, 1),
                (CallStatus::Queued, 0),
            ],
            answered_timeouts: 0,
            answered_human: 1,
            answered_machine: 1,
            opted_out: 0,
        };
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let body = batch_completed_body("evt_1", &batch, &counts, at);
        assert_eq!(body["event_type"], "batch_completed");
        assert_eq!(body["accountcode"], "ACME");
        assert_eq!(body["batch_id"], 42);
        assert_eq!(body["total_calls"], 3);
        assert_eq!(body["completed_calls"], 2);
        assert_eq!(body["failed_calls"], 1);
        let expected: serde_json::Map<String, serde_json::Value> = CallStatus::ALL
            .iter()
            .map(|s| {
                let n = match s {
                    CallStatus::Completed => 2,
                    CallStatus::Busy => 1,
                    _ => 0,
                };
                (s.as_str().to_owned(), n.into())
            })
            .chain([
                ("answered_human".to_owned(), 1.into()),
                ("answered_machine".to_owned(), 1.into()),
                ("opted_out".to_owned(), 0.into()),
            ])
            .collect();
        assert_eq!(body["counts"], serde_json::Value::Object(expected));
        assert_eq!(body["occurred_at"], "2023-11-14T22:13:20Z");
    }
}
