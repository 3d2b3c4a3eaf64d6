//! The statements of a wave of transitions: set-based writes (attempts, calls, events, and the
//! do-not-call entries of opt-outs).

use std::collections::HashSet;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use dialer_core::domain::{
    AnsweredBy, AttemptState, CallStatus, DeliveryStatus, Disposition, EventType,
};
use dialer_core::event_body::{AnswerFacts, CallEventBody, new_event_id, raw_custom_data, rfc3339};

use super::rows::{AttemptRow, CallRow};
use super::transition::StateError;
use crate::outcome::Outcome;
use dialer_core::prepared::PrepareOnce;

/// The attempts' new states, with the column each state sets (`started_at` and `answered_at`
/// keep a time already set).
static ATTEMPTS_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE call_attempts t SET state = u.state, \
           started_at = CASE WHEN u.state = '{started}' THEN COALESCE(t.started_at, u.at) ELSE t.started_at END, \
           answered_at = CASE WHEN u.state = '{answered}' THEN COALESCE(t.answered_at, u.at) ELSE t.answered_at END, \
           ended_at = CASE WHEN u.state = '{ended}' THEN u.at ELSE t.ended_at END, \
           disposition = CASE WHEN u.state = '{ended}' THEN u.disposition ELSE t.disposition END, \
           hangup_cause = CASE WHEN u.state = '{ended}' THEN u.cause ELSE t.hangup_cause END, \
           error_message = CASE WHEN u.state = '{ended}' THEN u.error ELSE t.error_message END, \
           answered_by = COALESCE(u.answered_by, t.answered_by), \
           amd_cause = COALESCE(u.amd_cause, t.amd_cause), \
           digits = COALESCE(u.digits, t.digits), opted_out = COALESCE(u.opted_out, t.opted_out) \
         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::int[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::bool[]) \
              AS u(id, state, at, disposition, cause, error, answered_by, amd_cause, digits, opted_out) \
         WHERE t.id = u.id",
        started = AttemptState::Started,
        answered = AttemptState::Answered,
        ended = AttemptState::Ended,
    )
});

/// The events, returning the calls of those that entered the delivery queue (the insert
/// triggers store an event `skipped` when no one will deliver it).
static EVENTS_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH written AS ( \
           INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, \
             event_type, body, occurred_at) \
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], \
             $5::int[], $6::text[], $7::text[], $8::timestamptz[]) \
           RETURNING call_pk, delivery_status) \
         SELECT call_pk FROM written WHERE delivery_status = '{pending}'",
        pending = DeliveryStatus::Pending,
    )
});

#[derive(diesel::QueryableByName)]
struct QueuedCall {
    #[diesel(sql_type = BigInt)]
    call_pk: i64,
}

/// The facts of one event beyond the call's own fields.
pub(super) struct EventFacts {
    pub event_type: EventType,
    pub disposition: Option<Disposition>,
    pub attempt: i32,
    pub start_time: Option<DateTime<Utc>>,
    pub answer_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub server_code: Option<String>,
    pub error_message: Option<String>,
    pub will_retry: bool,
    pub occurred_at: DateTime<Utc>,
    /// What the flow reported after the answer, as of this event.
    pub answer: AnswerFacts,
    /// The attempt's recording (terminal events of a batch that records).
    pub recording_url: Option<String>,
}

impl EventFacts {
    pub fn in_progress(
        event_type: EventType,
        attempt: &AttemptRow,
        at: DateTime<Utc>,
    ) -> EventFacts {
        EventFacts {
            event_type,
            disposition: None,
            attempt: attempt.attempt,
            start_time: Some(attempt.originated_at),
            answer_time: attempt.answered_at,
            end_time: None,
            server_code: attempt.server_code.clone(),
            error_message: None,
            will_retry: false,
            occurred_at: at,
            answer: attempt.answer_facts(),
            recording_url: None,
        }
    }
}

/// The writes of one wave of transitions, sent as three set-based statements (one per table)
/// instead of three statements per transition. Raw SQL is parsed and planned at every use, so the
/// count of statements, not rows, is what a group costs.
#[derive(Default)]
pub(super) struct Writes {
    a_id: Vec<Uuid>,
    a_state: Vec<AttemptState>,
    a_at: Vec<DateTime<Utc>>,
    a_disposition: Vec<Option<Disposition>>,
    a_cause: Vec<Option<i32>>,
    a_error: Vec<Option<String>>,
    a_answered_by: Vec<Option<AnsweredBy>>,
    a_amd_cause: Vec<Option<String>>,
    a_digits: Vec<Option<String>>,
    a_opted_out: Vec<Option<bool>>,
    c_id: Vec<i64>,
    c_seq: Vec<i32>,
    c_status: Vec<CallStatus>,
    c_disposition: Vec<Option<Disposition>>,
    c_due: Vec<Option<DateTime<Utc>>>,
    c_finished: Vec<bool>,
    c_answered_by: Vec<Option<AnsweredBy>>,
    c_opted_out: Vec<bool>,
    e_id: Vec<String>,
    e_account: Vec<i64>,
    e_batch: Vec<i64>,
    e_call: Vec<i64>,
    e_seq: Vec<i32>,
    e_type: Vec<EventType>,
    e_body: Vec<String>,
    e_at: Vec<DateTime<Utc>>,
    /// Numbers that opted out, onto their account's do-not-call list.
    dnc_account: Vec<i64>,
    dnc_phone: Vec<String>,
}

impl Writes {
    /// The attempt's new state: `started` and `answered` keep a time already set; `ended`
    /// records the outcome.
    pub fn attempt(
        &mut self,
        id: Uuid,
        state: AttemptState,
        at: DateTime<Utc>,
        outcome: Option<&Outcome>,
    ) {
        self.push_attempt(id, state, at, outcome, &AnswerFacts::default());
    }

    /// What the flow reported about an answered attempt (its state stays `answered`): the
    /// facts set here are written, those left `None` keep their value.
    pub fn report(&mut self, id: Uuid, at: DateTime<Utc>, facts: &AnswerFacts) {
        self.push_attempt(id, AttemptState::Answered, at, None, facts);
    }

    fn push_attempt(
        &mut self,
        id: Uuid,
        state: AttemptState,
        at: DateTime<Utc>,
        outcome: Option<&Outcome>,
        facts: &AnswerFacts,
    ) {
        self.a_id.push(id);
        self.a_state.push(state);
        self.a_at.push(at);
        self.a_disposition.push(outcome.map(|o| o.disposition));
        self.a_cause
            .push(outcome.and_then(|o| o.cause.map(i32::from)));
        self.a_error
            .push(outcome.and_then(|o| o.error_message.clone()));
        self.a_answered_by.push(facts.answered_by);
        self.a_amd_cause.push(facts.amd_cause.clone());
        self.a_digits.push(facts.digits.clone());
        self.a_opted_out.push(facts.opted_out);
    }

    /// Puts the call's number on its account's do-not-call list (an opt-out), in the same
    /// transaction as the event that reports it.
    pub fn do_not_call(&mut self, call: &CallRow) {
        self.dnc_account.push(call.account_id);
        self.dnc_phone.push(call.phone_e164.clone());
    }

    /// Bumps the call's sequence, sets its status (and, at an attempt's end, its disposition and
    /// due time), and writes the event with its body fixed now.
    pub fn event(
        &mut self,
        call: &CallRow,
        e: &EventFacts,
        status: CallStatus,
        end: Option<(Disposition, Option<DateTime<Utc>>)>,
    ) -> Result<(), StateError> {
        let sequence = call.event_seq + 1;
        let duration = match (e.answer_time, e.end_time) {
            (Some(a), Some(z)) if z > a => (z - a).num_seconds(),
            _ => 0,
        };
        let custom_data = raw_custom_data(call.custom_data.as_deref())?;
        let event_id = new_event_id();
        let body = CallEventBody {
            event_id: event_id.clone(),
            event_type: e.event_type,
            accountcode: call.accountcode.clone(),
            batch_id: call.batch_id,
            call_id: call.call_id,
            phone_number: call.phone_raw.clone(),
            phone_number_e164: call.phone_e164.clone(),
            call_status: e.event_type.call_status().unwrap_or(status),
            disposition: e.disposition,
            duration,
            start_time: e.start_time.map(rfc3339),
            answer_time: e.answer_time.map(rfc3339),
            end_time: e.end_time.map(rfc3339),
            recording_url: e.recording_url.clone(),
            custom_data,
            server_code: e.server_code.clone(),
            error_message: e.error_message.clone(),
            attempt: e.attempt,
            will_retry: e.will_retry,
            sequence,
            occurred_at: rfc3339(e.occurred_at),
            answered_by: e.answer.answered_by,
            amd_cause: e.answer.amd_cause.clone(),
            digits: e.answer.digits.clone(),
            opted_out: e.answer.opted_out,
            recording_duration: e.answer.recording_duration,
        };
        self.e_body.push(serde_json::to_string(&body)?);
        self.c_id.push(call.call_pk);
        self.c_seq.push(sequence);
        self.c_status.push(status);
        self.c_disposition.push(end.map(|(d, _)| d));
        self.c_due.push(end.and_then(|(_, due)| due));
        self.c_finished.push(status.is_final());
        self.c_answered_by.push(e.answer.answered_by);
        self.c_opted_out.push(e.answer.opted_out == Some(true));
        self.e_id.push(event_id);
        self.e_account.push(call.account_id);
        self.e_batch.push(call.batch_pk);
        self.e_call.push(call.call_pk);
        self.e_seq.push(sequence);
        self.e_type.push(e.event_type);
        self.e_at.push(e.occurred_at);
        Ok(())
    }

    /// Sends the three statements together (pipelined); the server runs them in this order.
    /// Returns the calls whose event entered the delivery queue (the account has a callback
    /// URL): the callback worker is to be prompted for those.
    pub async fn execute(self, conn: &AsyncPgConnection) -> Result<HashSet<i64>, StateError> {
        let attempts = async {
            if self.a_id.is_empty() {
                return Ok(0);
            }
            diesel::sql_query(ATTEMPTS_UPDATE.as_str())
                .bind::<Array<SqlUuid>, _>(&self.a_id)
                .bind::<Array<Text>, _>(&self.a_state)
                .bind::<Array<Timestamptz>, _>(&self.a_at)
                .bind::<Array<Nullable<Text>>, _>(&self.a_disposition)
                .bind::<Array<Nullable<Integer>>, _>(&self.a_cause)
                .bind::<Array<Nullable<Text>>, _>(&self.a_error)
                .bind::<Array<Nullable<Text>>, _>(&self.a_answered_by)
                .bind::<Array<Nullable<Text>>, _>(&self.a_amd_cause)
                .bind::<Array<Nullable<Text>>, _>(&self.a_digits)
                .bind::<Array<Nullable<Bool>>, _>(&self.a_opted_out)
                .prepared()
                .execute(&mut &*conn)
                .await
        };
        let calls = async {
            if self.c_id.is_empty() {
                return Ok(0);
            }
            diesel::sql_query(
                "UPDATE calls c SET event_seq = u.seq, status = u.status, \
                   disposition = COALESCE(u.disposition, c.disposition), next_due_at = u.due, \
                   updated_at = now(), finished_at = CASE WHEN u.finished THEN now() ELSE c.finished_at END, \
                   answered_by = COALESCE(u.answered_by, c.answered_by), opted_out = c.opted_out OR u.opted_out \
                 FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::bool[], \
                             $7::text[], $8::bool[]) \
                      AS u(id, seq, status, disposition, due, finished, answered_by, opted_out) \
                 WHERE c.id = u.id",
            )
            .bind::<Array<BigInt>, _>(&self.c_id)
            .bind::<Array<Integer>, _>(&self.c_seq)
            .bind::<Array<Text>, _>(&self.c_status)
            .bind::<Array<Nullable<Text>>, _>(&self.c_disposition)
            .bind::<Array<Nullable<Timestamptz>>, _>(&self.c_due)
            .bind::<Array<Bool>, _>(&self.c_finished)
            .bind::<Array<Nullable<Text>>, _>(&self.c_answered_by)
            .bind::<Array<Bool>, _>(&self.c_opted_out)
            .prepared()
            .execute(&mut &*conn)
            .await
        };
        let events = async {
            if self.e_id.is_empty() {
                return Ok(Vec::new());
            }
            diesel::sql_query(EVENTS_INSERT.as_str())
                .bind::<Array<Text>, _>(&self.e_id)
                .bind::<Array<BigInt>, _>(&self.e_account)
                .bind::<Array<BigInt>, _>(&self.e_batch)
                .bind::<Array<BigInt>, _>(&self.e_call)
                .bind::<Array<Integer>, _>(&self.e_seq)
                .bind::<Array<Text>, _>(&self.e_type)
                .bind::<Array<Text>, _>(&self.e_body)
                .bind::<Array<Timestamptz>, _>(&self.e_at)
                .prepared()
                .load::<QueuedCall>(&mut &*conn)
                .await
        };
        let dnc = async {
            if self.dnc_phone.is_empty() {
                return Ok(0);
            }
            diesel::sql_query(
                // An entry the account made itself becomes the callee's: the account may no
                // longer remove it (only an operator may). DISTINCT: an update may not touch a
                // row twice, and one group can hold two opt-outs of one number.
                "INSERT INTO dnc_numbers (account_id, phone_e164, reason, source) \
                 SELECT DISTINCT a, p, 'opted out during a call', 'opt_out' \
                 FROM unnest($1::bigint[], $2::text[]) AS u(a, p) \
                 ON CONFLICT (account_id, phone_e164) WHERE account_id IS NOT NULL \
                 DO UPDATE SET source = 'opt_out', reason = EXCLUDED.reason",
            )
            .bind::<Array<BigInt>, _>(&self.dnc_account)
            .bind::<Array<Text>, _>(&self.dnc_phone)
            .prepared()
            .execute(&mut &*conn)
            .await
        };
        let (_, _, queued, _) =
            futures_util::future::try_join4(attempts, calls, events, dnc).await?;
        // A set: each transition of the wave looks its call up in it.
        Ok(queued.into_iter().map(|q| q.call_pk).collect())
    }
}
