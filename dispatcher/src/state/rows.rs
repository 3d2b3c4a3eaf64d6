//! The rows a transition is planned on, read under lock with its attempt.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use dialer_core::domain::{AnsweredBy, AttemptState, BatchStatus};
use dialer_core::event_body::AnswerFacts;
use dialer_core::lifecycle::BatchRef;
use dialer_core::prepared::PrepareOnce;

use super::transition::Transition;

/// Everything an event body needs, read under lock with the attempt.
#[derive(Debug, Clone, QueryableByName)]
pub(super) struct CallRow {
    // The call.
    #[diesel(sql_type = BigInt)]
    pub call_pk: i64,
    #[diesel(sql_type = SqlUuid)]
    pub call_id: Uuid,
    #[diesel(sql_type = Text)]
    pub phone_raw: String,
    #[diesel(sql_type = Text)]
    pub phone_e164: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub custom_data: Option<String>,
    #[diesel(sql_type = Integer)]
    pub event_seq: i32,
    // Its batch and account.
    #[diesel(sql_type = BigInt)]
    pub batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    pub batch_id: i64,
    #[diesel(sql_type = Text)]
    pub batch_status: BatchStatus,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub accountcode: String,
    #[diesel(sql_type = Bool)]
    pub batch_events: bool,
    // The retry policy (the batch's, else the account's).
    #[diesel(sql_type = Integer)]
    pub max_attempts: i32,
    #[diesel(sql_type = Integer)]
    pub retry_delay_seconds: i32,
    #[diesel(sql_type = Array<Text>)]
    pub retry_on: Vec<String>,
    /// The batch's gather (its opt-out digit).
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub gather: Option<serde_json::Value>,
    /// The batch records its answered attempts.
    #[diesel(sql_type = Bool)]
    pub record: bool,
}

impl CallRow {
    /// Its batch, for the completion check after its final outcome.
    pub fn batch(&self) -> BatchRef<'_> {
        BatchRef {
            batch_pk: self.batch_pk,
            account_id: self.account_id,
            accountcode: &self.accountcode,
            batch_id: self.batch_id,
            batch_events: self.batch_events,
        }
    }
}

#[derive(Debug, Clone, QueryableByName)]
pub(super) struct AttemptRow {
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Text)]
    pub state: AttemptState,
    #[diesel(sql_type = Timestamptz)]
    pub originated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub answered_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub server_code: Option<String>,
    // What the flow reported after the answer.
    #[diesel(sql_type = Nullable<Text>)]
    pub answered_by: Option<AnsweredBy>,
    #[diesel(sql_type = Nullable<Text>)]
    pub amd_cause: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub digits: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    pub opted_out: Option<bool>,
}

impl AttemptRow {
    /// What its events carry of after the answer.
    pub fn answer_facts(&self) -> AnswerFacts {
        AnswerFacts {
            answered_by: self.answered_by,
            amd_cause: self.amd_cause.clone(),
            digits: self.digits.clone(),
            opted_out: self.opted_out,
            recording_duration: None,
        }
    }
}

const CALL_COLUMNS: &str = "c.id AS call_pk, c.call_id, c.account_id, a.accountcode, c.batch_pk, \
     b.batch_id, c.phone_raw, c.phone_e164, c.custom_data, c.event_seq, \
     COALESCE(b.max_attempts, a.max_attempts) AS max_attempts, \
     COALESCE(b.retry_delay_seconds, a.retry_delay_seconds) AS retry_delay_seconds, \
     COALESCE(b.retry_on, a.retry_on) AS retry_on, \
     a.callback_batch_events AS batch_events, b.status AS batch_status, b.gather, b.record";

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = SqlUuid)]
    attempt_id: Uuid,
    #[diesel(embed)]
    call: CallRow,
    #[diesel(embed)]
    attempt: AttemptRow,
}

/// Reads and locks, in one statement, every attempt of the group and its call, in attempt order
/// (two writers locking in the same order cannot deadlock on these rows). Not in call order:
/// sorting by `c.id` let the planner walk `calls_pkey` from its start in a merge join, every
/// row of a small table for a handful of attempts (243 buffers for 8 attempts of a 1,500-call
/// table, 87 in attempt order).
pub(super) async fn lock_rows(
    conn: &mut AsyncPgConnection,
    ts: &[Transition],
) -> Result<HashMap<Uuid, (CallRow, AttemptRow)>, diesel::result::Error> {
    let mut ids: Vec<Uuid> = ts.iter().map(Transition::attempt).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<LockedRow> = diesel::sql_query(format!(
        "SELECT t.id AS attempt_id, {CALL_COLUMNS}, \
                t.attempt, t.state, t.originated_at, t.answered_at, s.code AS server_code, \
                t.answered_by, t.amd_cause, t.digits, t.opted_out \
         FROM call_attempts t JOIN calls c ON c.id = t.call_pk \
         JOIN batches b ON b.id = c.batch_pk JOIN accounts a ON a.id = c.account_id \
         LEFT JOIN asterisk_servers s ON s.id = t.server_id \
         WHERE t.id = ANY($1) ORDER BY t.id FOR UPDATE OF c, t"
    ))
    .bind::<Array<SqlUuid>, _>(&ids)
    .prepared()
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.attempt_id, (r.call, r.attempt)))
        .collect())
}
