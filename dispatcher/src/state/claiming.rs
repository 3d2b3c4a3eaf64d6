//! The claim's writes: a claimed call becomes `dialing` with its attempt row, and a call outside
//! its calling hours is parked until its due time (a call that cannot be dialed any more ends
//! undialed through the core's lifecycle, re-exported by the state module); right before its
//! Originate, a claimed attempt is confirmed as sent.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use dialer_core::call_flow::CallFlow;
use dialer_core::dial_outbox::DialJob;
use dialer_core::domain::{AmdPolicy, AttemptState, CallStatus};
use dialer_core::prepared::PrepareOnce;

use super::transition::StateError;

/// A claimed attempt, with what the Originate needs.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub attempt_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub call_pk: i64,
    #[diesel(sql_type = SqlUuid)]
    pub call_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub accountcode: String,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Text)]
    pub phone_e164: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub caller_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub dial_context: String,
    #[diesel(sql_type = Text)]
    pub dial_exten: String,
    #[diesel(sql_type = Integer)]
    pub ring_timeout_seconds: i32,
    #[diesel(sql_type = Integer)]
    pub max_call_seconds: i32,
    #[diesel(sql_type = Integer)]
    pub calls_per_second: i32,
    #[diesel(sql_type = BigInt)]
    pub server_id: i64,
    // The batch's flow after the answer.
    #[diesel(sql_type = Text)]
    pub amd: AmdPolicy,
    #[diesel(sql_type = Nullable<Text>)]
    pub message_prompt: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub voicemail_prompt: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub gather: Option<serde_json::Value>,
    #[diesel(sql_type = Bool)]
    pub record: bool,
}

impl Claimed {
    pub fn call_flow(&self) -> CallFlow {
        CallFlow::from_columns(
            self.amd,
            self.message_prompt.clone(),
            self.voicemail_prompt.clone(),
            self.gather.as_ref(),
            self.record,
        )
    }
}

/// The claim proper, built once from the state names.
static START_ATTEMPTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH j AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::uuid[]) \
                    AS j(call_pk, attempt, attempt_id)), \
         upd AS ( \
           UPDATE calls c SET status = '{dialing}', attempts = c.attempts + 1, last_dialed_at = $4, \
                  next_due_at = NULL, updated_at = now() \
           FROM j WHERE c.id = j.call_pk AND c.status = '{scheduled}' AND c.attempts = j.attempt - 1 \
           RETURNING c.id, c.call_id, c.account_id, c.batch_pk, c.attempts, c.phone_e164, j.attempt_id), \
         ins AS ( \
           INSERT INTO call_attempts (id, call_pk, attempt, server_id, state, originated_at, \
                                      account_id, dispatcher_id) \
           SELECT attempt_id, id, attempts, $5, '{originating}', $4, account_id, $6 FROM upd) \
         SELECT upd.attempt_id, upd.id AS call_pk, upd.call_id, upd.account_id, a.accountcode, \
                upd.attempts AS attempt, upd.phone_e164, COALESCE(b.caller_id, a.caller_id) AS caller_id, \
                a.dial_context, a.dial_exten, a.ring_timeout_seconds, a.max_call_seconds, \
                a.calls_per_second, $5 AS server_id, \
                b.amd, b.message_prompt, b.voicemail_prompt, b.gather, b.record \
         FROM upd JOIN accounts a ON a.id = upd.account_id JOIN batches b ON b.id = upd.batch_pk",
        dialing = CallStatus::Dialing,
        scheduled = CallStatus::Scheduled,
        originating = AttemptState::Originating,
    )
});

/// The conditional update and the attempt rows, for all the jobs to dial at once: the claim
/// proper. A call no longer `scheduled` for exactly this attempt is simply not returned.
pub async fn start_attempts(
    conn: &mut AsyncPgConnection,
    jobs: &[&DialJob],
    server_id: i64,
    dispatcher_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, StateError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let call_pks: Vec<i64> = jobs.iter().map(|j| j.call_pk).collect();
    let attempts: Vec<i32> = jobs.iter().map(|j| j.attempt).collect();
    let ids: Vec<Uuid> = jobs.iter().map(|_| Uuid::new_v4()).collect();
    let rows: Vec<Claimed> = diesel::sql_query(START_ATTEMPTS.as_str())
        .bind::<Array<BigInt>, _>(&call_pks)
        .bind::<Array<Integer>, _>(&attempts)
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(server_id)
        .bind::<Text, _>(dispatcher_id)
        .prepared()
        .load(conn)
        .await?;
    Ok(rows)
}

/// Parks a call outside its calling hours (or of a suspended account) until `until`, when the
/// due-call sweep gives it its job again.
pub async fn park_until(
    conn: &mut AsyncPgConnection,
    call_pk: i64,
    until: DateTime<Utc>,
) -> Result<(), StateError> {
    diesel::sql_query("UPDATE calls SET next_due_at = $2, updated_at = now() WHERE id = $1")
        .bind::<BigInt, _>(call_pk)
        .bind::<Timestamptz, _>(until)
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

/// Confirms, right before their Originates, the claimed attempts still to be sent: those a pause
/// or a cancel took back meanwhile (their rows deleted) are not returned, nor are attempts
/// already ended. One statement for all the attempts whose slots came together; the row locks
/// make a concurrent pause wait for it (or it for the pause), so exactly one of them wins. Only
/// attempts still this dispatcher's: one adopted by another while this process was stopped is
/// never sent by it (see `recovery::adopt_orphans`).
pub async fn confirm_sends(
    conn: &mut AsyncPgConnection,
    attempts: &[Uuid],
    dispatcher_id: &str,
) -> Result<Vec<Uuid>, StateError> {
    #[derive(QueryableByName)]
    struct Sent {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    // Nor attempts of a batch whose `expires_at` passed while they waited: nothing is dialed
    // after it (the caller puts them back, which ends them `call_expired`).
    let rows: Vec<Sent> = diesel::sql_query(format!(
        "UPDATE call_attempts t SET sent_at = now() FROM calls c JOIN batches b ON b.id = c.batch_pk \
         WHERE t.id = ANY($1) AND t.state = '{}' AND t.sent_at IS NULL AND t.dispatcher_id = $2 \
           AND c.id = t.call_pk AND (b.expires_at IS NULL OR b.expires_at > now()) \
         RETURNING t.id",
        AttemptState::Originating
    ))
    .bind::<Array<SqlUuid>, _>(attempts)
    .bind::<Text, _>(dispatcher_id)
    .prepared()
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}
