//! Calls whose due time came: retries get the job of their next attempt; calls parked for
//! calling hours get their job again. Each row is taken by one dispatcher only (the update's
//! condition); the caller publishes the jobs through the dial outbox.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use dialer_core::domain::CallStatus;
use dialer_core::prepared::PrepareOnce;

use super::transition::StateError;

#[derive(QueryableByName)]
struct DueCall {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Releases up to a thousand retries and a thousand parked calls whose time came; returns the
/// calls whose dial job is to be published.
pub async fn release_due_calls(conn: &mut AsyncPgConnection) -> Result<Vec<i64>, StateError> {
    let (scheduled, retry_wait) = (CallStatus::Scheduled, CallStatus::RetryWait);
    let retries: Vec<DueCall> = diesel::sql_query(format!(
        "WITH due AS ( \
           UPDATE calls SET status = '{scheduled}', next_due_at = NULL, updated_at = now() \
           WHERE id IN (SELECT id FROM calls WHERE status = '{retry_wait}' AND next_due_at <= now() \
                        ORDER BY next_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED) \
           RETURNING id, attempts) \
         INSERT INTO dial_jobs (call_pk, attempt) SELECT id, attempts + 1 FROM due \
         ON CONFLICT (call_pk, attempt) DO UPDATE SET published_at = NULL \
         RETURNING call_pk AS id"
    ))
    .prepared()
    .load(conn)
    .await?;
    let parked: Vec<DueCall> = diesel::sql_query(format!(
        "WITH due AS ( \
           UPDATE calls SET next_due_at = NULL, updated_at = now() \
           WHERE id IN (SELECT id FROM calls WHERE status = '{scheduled}' AND next_due_at <= now() \
                        ORDER BY next_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED) \
           RETURNING id, attempts) \
         UPDATE dial_jobs j SET published_at = NULL FROM due \
         WHERE j.call_pk = due.id AND j.attempt = due.attempts + 1 RETURNING j.call_pk AS id"
    ))
    .prepared()
    .load(conn)
    .await?;
    Ok(retries.iter().chain(&parked).map(|d| d.id).collect())
}
