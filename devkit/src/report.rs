//! What a local run reads back from the database for its summary: outcomes, attempts, events
//! and their delivery.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use dialer_core::db::{DbError, DbPool};

#[derive(Debug, diesel::QueryableByName)]
pub struct OutcomeCount {
    /// The final disposition, or the status when there is none (cancelled, expired...).
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
}

/// Calls of an account by final outcome, most frequent first.
pub async fn outcomes(pool: &DbPool, account_id: i64) -> Result<Vec<OutcomeCount>, DbError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT COALESCE(disposition, status) AS outcome, count(*) AS calls FROM calls \
         WHERE account_id = $1 GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .bind::<BigInt, _>(account_id)
    .load(&mut conn)
    .await?)
}

#[derive(Debug, Default, diesel::QueryableByName)]
pub struct Attempts {
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    /// Calls dialed at least once.
    #[diesel(sql_type = BigInt)]
    pub dialed_calls: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub first: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_end: Option<DateTime<Utc>>,
}

impl Attempts {
    pub fn retries(&self) -> i64 {
        self.attempts - self.dialed_calls
    }
}

pub async fn attempts(pool: &DbPool, account_id: i64) -> Result<Attempts, DbError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT count(*) AS attempts, count(DISTINCT call_pk) AS dialed_calls, \
                min(originated_at) AS first, max(ended_at) AS last_end \
         FROM call_attempts WHERE account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .get_result(&mut conn)
    .await?)
}

#[derive(Debug, Default, Clone, Copy, diesel::QueryableByName)]
pub struct EventTotals {
    #[diesel(sql_type = BigInt)]
    pub written: i64,
    #[diesel(sql_type = BigInt)]
    pub delivered: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
}

/// Events of an account and how many the worker has recorded delivered or failed.
pub async fn events(pool: &DbPool, account_id: i64) -> Result<EventTotals, DbError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT count(*) AS written, \
                count(*) FILTER (WHERE delivery_status = 'delivered') AS delivered, \
                count(*) FILTER (WHERE delivery_status = 'failed') AS failed \
         FROM call_events WHERE account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .get_result(&mut conn)
    .await?)
}

#[derive(Debug, diesel::QueryableByName)]
pub struct EventTime {
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
}

/// When each event of an account happened, to the microsecond (bodies carry whole seconds).
pub async fn event_times(pool: &DbPool, account_id: i64) -> Result<Vec<EventTime>, DbError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT event_id, event_type, occurred_at FROM call_events WHERE account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .load(&mut conn)
    .await?)
}

/// After the answer: who answered, what was pressed, the recordings stored.
#[derive(Debug, Default, diesel::QueryableByName)]
pub struct AfterAnswer {
    #[diesel(sql_type = BigInt)]
    pub human: i64,
    #[diesel(sql_type = BigInt)]
    pub machine: i64,
    #[diesel(sql_type = BigInt)]
    pub unknown: i64,
    /// Attempts whose gather got at least one key.
    #[diesel(sql_type = BigInt)]
    pub pressed: i64,
    #[diesel(sql_type = BigInt)]
    pub opted_out: i64,
    #[diesel(sql_type = BigInt)]
    pub recordings: i64,
    /// One stored recording's call and attempt, to fetch.
    #[diesel(sql_type = Nullable<Text>)]
    pub example_recording: Option<String>,
}

pub async fn after_answer(pool: &DbPool, account_id: i64) -> Result<AfterAnswer, DbError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT count(*) FILTER (WHERE t.answered_by = 'human') AS human, \
                count(*) FILTER (WHERE t.answered_by = 'machine') AS machine, \
                count(*) FILTER (WHERE t.answered_by = 'unknown') AS unknown, \
                count(*) FILTER (WHERE t.digits <> '') AS pressed, \
                count(*) FILTER (WHERE t.opted_out) AS opted_out, \
                (SELECT count(*) FROM recordings WHERE account_id = $1) AS recordings, \
                (SELECT c.call_id::text || '/' || r.attempt FROM recordings r \
                   JOIN calls c ON c.id = r.call_pk WHERE r.account_id = $1 LIMIT 1) \
                  AS example_recording \
         FROM call_attempts t WHERE t.account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .get_result(&mut conn)
    .await?)
}
