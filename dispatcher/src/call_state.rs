//! Where a dialed call's state changes: `call_started`, `call_answered` and the attempt's end,
//! each written with its callback event in one transaction, so the event outbox and the call
//! never disagree. (Claims, which start an attempt, are in [`crate::claim`].)
//!
//! Every transition is conditional on the attempt's current state, so a repeated or late signal
//! (a redelivered AMI event after a reconnect, a guard firing after the real end) changes
//! nothing and writes no event.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::value::RawValue;
use uuid::Uuid;

use dialer_core::domain::{CallStatus, Disposition, EventType};
use dialer_core::event_body::{CallEventBody, new_event_id, rfc3339};

use crate::outcome::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("event body: {0}")]
    Body(#[from] serde_json::Error),
}

/// A change the AMI (or a guard) reported for an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Started {
        attempt: Uuid,
        at: DateTime<Utc>,
    },
    Answered {
        attempt: Uuid,
        at: DateTime<Utc>,
    },
    Ended {
        attempt: Uuid,
        outcome: Outcome,
        /// The platform hung up an answered call at its maximum length.
        cut_by_platform: bool,
        at: DateTime<Utc>,
    },
}

impl Transition {
    pub fn attempt(&self) -> Uuid {
        match self {
            Transition::Started { attempt, .. }
            | Transition::Answered { attempt, .. }
            | Transition::Ended { attempt, .. } => *attempt,
        }
    }
}

/// What a transition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub batch_pk: i64,
    pub event_type: Option<EventType>,
    /// The batch has no call left to finish (its `batch_completed` is written).
    pub batch_completed: bool,
}

/// Everything an event body needs, read under lock with the attempt.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct CallRow {
    #[diesel(sql_type = BigInt)]
    pub call_pk: i64,
    #[diesel(sql_type = SqlUuid)]
    pub call_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub accountcode: String,
    #[diesel(sql_type = BigInt)]
    pub batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    pub batch_id: i64,
    #[diesel(sql_type = Text)]
    pub phone_raw: String,
    #[diesel(sql_type = Text)]
    pub phone_e164: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub custom_data: Option<String>,
    #[diesel(sql_type = Integer)]
    pub event_seq: i32,
    #[diesel(sql_type = Integer)]
    pub max_attempts: i32,
    #[diesel(sql_type = Integer)]
    pub retry_delay_seconds: i32,
    #[diesel(sql_type = Array<Text>)]
    pub retry_on: Vec<String>,
    #[diesel(sql_type = Bool)]
    pub batch_events: bool,
    #[diesel(sql_type = Text)]
    pub batch_status: String,
}

#[derive(Debug, Clone, QueryableByName)]
struct AttemptRow {
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Timestamptz)]
    originated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    answered_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    server_code: Option<String>,
}

const CALL_COLUMNS: &str = "c.id AS call_pk, c.call_id, c.account_id, a.accountcode, c.batch_pk, \
     b.batch_id, c.phone_raw, c.phone_e164, c.custom_data, c.event_seq, \
     COALESCE(b.max_attempts, a.max_attempts) AS max_attempts, \
     COALESCE(b.retry_delay_seconds, a.retry_delay_seconds) AS retry_delay_seconds, \
     COALESCE(b.retry_on, a.retry_on) AS retry_on, \
     a.callback_batch_events AS batch_events, b.status AS batch_status";

/// Applies one transition in its own transaction. `None` when it changed nothing (repeated or
/// late signal, unknown attempt).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    t: &Transition,
) -> Result<Option<Applied>, StateError> {
    let mut all = apply_all(conn, std::slice::from_ref(t)).await?;
    Ok(all.pop().flatten())
}

/// Applies several transitions, in order, in one transaction: one commit (one WAL flush) for
/// many calls. If it fails, nothing of it is kept; the caller applies them one by one.
///
/// The transitions go in waves: a wave holds at most one transition of each attempt, in
/// arrival order, and its statements are pipelined on the connection (they touch distinct calls
/// and attempts; a later transition of the same attempt is in a later wave and sees the earlier
/// one's changes). The batches whose calls reached their final outcome are then checked for
/// completion once each, in batch order.
pub async fn apply_all(
    conn: &mut AsyncPgConnection,
    ts: &[Transition],
) -> Result<Vec<Option<Applied>>, StateError> {
    conn.transaction::<_, StateError, _>(async |conn| {
        let mut out: Vec<Option<Applied>> = vec![None; ts.len()];
        let mut finished: Vec<CallRow> = Vec::new();
        let mut rows = lock_rows(conn, ts).await?;
        // One transition per call in a wave: the wave's writes are one row per call.
        let by_call = |i: usize, t: &Transition| match rows.get(&t.attempt()) {
            Some((call, _)) => call.call_pk,
            None => -1 - i as i64,
        };
        for wave in waves(ts, by_call) {
            let mut writes = Writes::default();
            let mut steps = Vec::with_capacity(wave.len());
            for &i in &wave {
                let t = &ts[i];
                let step = match rows.get(&t.attempt()) {
                    Some((call, attempt)) => plan(t, call, attempt, &mut writes)?,
                    None => None,
                };
                steps.push(step);
            }
            writes.execute(conn).await?;
            for (i, step) in wave.into_iter().zip(steps) {
                if let Some(step) = step {
                    // What the statements just wrote, for the attempt's next transition.
                    if let Some((call, attempt)) = rows.get_mut(&ts[i].attempt()) {
                        advance(call, attempt, &ts[i]);
                    }
                    out[i] = Some(step.applied);
                    finished.extend(step.finished);
                }
            }
        }
        finished.sort_by_key(|c| c.batch_pk);
        finished.dedup_by_key(|c| c.batch_pk);
        for call in &finished {
            if complete_batch_if_done(conn, call).await? {
                for a in out.iter_mut().flatten() {
                    if a.batch_pk == call.batch_pk {
                        a.batch_completed = true;
                    }
                }
            }
        }
        Ok(out)
    })
    .await
}

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = SqlUuid)]
    attempt_id: Uuid,
    #[diesel(embed)]
    call: CallRow,
    #[diesel(embed)]
    attempt: AttemptRow,
}

/// Reads and locks, in one statement, every attempt of the group and its call, in call order
/// (two writers locking calls in the same order cannot deadlock on them).
async fn lock_rows(
    conn: &mut AsyncPgConnection,
    ts: &[Transition],
) -> Result<std::collections::HashMap<Uuid, (CallRow, AttemptRow)>, StateError> {
    let mut ids: Vec<Uuid> = ts.iter().map(Transition::attempt).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<LockedRow> = diesel::sql_query(format!(
        "SELECT t.id AS attempt_id, {CALL_COLUMNS}, \
                t.attempt, t.state, t.originated_at, t.answered_at, s.code AS server_code \
         FROM call_attempts t JOIN calls c ON c.id = t.call_pk \
         JOIN batches b ON b.id = c.batch_pk JOIN accounts a ON a.id = c.account_id \
         LEFT JOIN asterisk_servers s ON s.id = t.server_id \
         WHERE t.id = ANY($1) ORDER BY c.id, t.id FOR UPDATE OF c, t"
    ))
    .bind::<Array<SqlUuid>, _>(&ids)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.attempt_id, (r.call, r.attempt)))
        .collect())
}

/// The rows as a transition that was applied left them.
fn advance(call: &mut CallRow, attempt: &mut AttemptRow, t: &Transition) {
    call.event_seq += 1;
    match t {
        Transition::Started { .. } => attempt.state = "started".to_owned(),
        Transition::Answered { at, .. } => {
            attempt.state = "answered".to_owned();
            attempt.answered_at.get_or_insert(*at);
        }
        Transition::Ended { .. } => attempt.state = "ended".to_owned(),
    }
}

/// Indexes of `ts` by wave: the n-th transition of a key (its call) goes in wave n, so a wave
/// holds at most one transition of each call, in arrival order.
fn waves<K: std::hash::Hash + Eq>(
    ts: &[Transition],
    key: impl Fn(usize, &Transition) -> K,
) -> Vec<Vec<usize>> {
    let mut seen: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, t) in ts.iter().enumerate() {
        let n = seen.entry(key(i, t)).or_insert(0);
        if waves.len() <= *n {
            waves.push(Vec::new());
        }
        waves[*n].push(i);
        *n += 1;
    }
    waves
}

/// What one transition did, and the call when it reached its final outcome (its batch may be
/// complete).
struct Step {
    applied: Applied,
    finished: Option<CallRow>,
}

impl Step {
    fn in_progress(call: &CallRow, event_type: EventType) -> Step {
        Step {
            applied: applied(call, event_type, false),
            finished: None,
        }
    }
}

/// One transition on the rows as its earlier transitions in the group left them (locked by
/// [`lock_rows`]): its writes go into `w`.
fn plan(
    t: &Transition,
    call: &CallRow,
    attempt: &AttemptRow,
    w: &mut Writes,
) -> Result<Option<Step>, StateError> {
    let attempt_id = t.attempt();
    match t {
        Transition::Started { at, .. } => {
            if attempt.state != "originating" {
                return Ok(None);
            }
            let event = EventFacts::in_progress(EventType::CallStarted, attempt, *at);
            w.attempt(attempt_id, "started", *at, None);
            w.event(call, &event, CallStatus::Started, None)?;
            Ok(Some(Step::in_progress(call, EventType::CallStarted)))
        }
        Transition::Answered { at, .. } => {
            if !matches!(attempt.state.as_str(), "originating" | "started") {
                return Ok(None);
            }
            let mut event = EventFacts::in_progress(EventType::CallAnswered, attempt, *at);
            event.disposition = Some(Disposition::Answered);
            event.answer_time = Some(*at);
            w.attempt(attempt_id, "answered", *at, None);
            w.event(call, &event, CallStatus::Answered, None)?;
            Ok(Some(Step::in_progress(call, EventType::CallAnswered)))
        }
        Transition::Ended {
            outcome,
            cut_by_platform,
            at,
            ..
        } => {
            if attempt.state == "ended" {
                return Ok(None);
            }
            plan_end(w, call, attempt_id, attempt, outcome, *cut_by_platform, *at).map(Some)
        }
    }
}

/// Ends a call that was never dialed (`call_skipped`, `call_expired`, `call_cancelled`), inside the caller's
/// transaction (the claim's).
pub(crate) async fn end_undialed(
    conn: &mut AsyncPgConnection,
    call_pk: i64,
    event_type: EventType,
    disposition: Option<Disposition>,
    at: DateTime<Utc>,
) -> Result<Option<Applied>, StateError> {
    let rows: Vec<UndialedRow> = diesel::sql_query(format!(
        "SELECT {CALL_COLUMNS}, c.attempts FROM calls c JOIN batches b ON b.id = c.batch_pk \
         JOIN accounts a ON a.id = c.account_id WHERE c.id = $1 FOR UPDATE OF c"
    ))
    .bind::<BigInt, _>(call_pk)
    .load(conn)
    .await?;
    let Some(UndialedRow { call, attempts }) = rows.into_iter().next() else {
        return Ok(None);
    };
    let status = event_type.call_status().unwrap_or(CallStatus::Failed);
    let event = EventFacts {
        event_type,
        disposition,
        attempt: attempts,
        start_time: None,
        answer_time: None,
        end_time: None,
        server_code: None,
        error_message: None,
        will_retry: false,
        occurred_at: at,
    };
    let mut w = Writes::default();
    w.event(&call, &event, status, disposition.map(|d| (d, None)))?;
    w.execute(conn).await?;
    let completed = complete_batch_if_done(conn, &call).await?;
    Ok(Some(applied(&call, event_type, completed)))
}

/// A call and how many attempts it had, read together under lock.
#[derive(QueryableByName)]
struct UndialedRow {
    #[diesel(embed)]
    call: CallRow,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

fn applied(call: &CallRow, event_type: EventType, batch_completed: bool) -> Applied {
    Applied {
        batch_pk: call.batch_pk,
        event_type: Some(event_type),
        batch_completed,
    }
}

fn plan_end(
    w: &mut Writes,
    call: &CallRow,
    attempt_id: Uuid,
    attempt: &AttemptRow,
    outcome: &Outcome,
    cut_by_platform: bool,
    at: DateTime<Utc>,
) -> Result<Step, StateError> {
    let event_type = EventType::for_outcome(outcome.disposition, cut_by_platform);
    // A cancelled batch starts no new call: its call in progress ends with this attempt.
    let will_retry = call.batch_status != "cancelled"
        && outcome.disposition.is_retryable()
        && call
            .retry_on
            .iter()
            .any(|d| d == outcome.disposition.as_str())
        && attempt.attempt < call.max_attempts;
    let final_status = event_type.call_status().unwrap_or(CallStatus::Failed);
    let (status, next_due) = if will_retry {
        (
            CallStatus::RetryWait,
            Some(at + ChronoDuration::seconds(i64::from(call.retry_delay_seconds.max(0)))),
        )
    } else {
        (final_status, None)
    };
    let event = EventFacts {
        event_type,
        disposition: Some(outcome.disposition),
        attempt: attempt.attempt,
        start_time: Some(attempt.originated_at),
        answer_time: attempt.answered_at,
        end_time: Some(at),
        server_code: attempt.server_code.clone(),
        error_message: outcome.error_message.clone(),
        will_retry,
        occurred_at: at,
    };
    w.attempt(attempt_id, "ended", at, Some(outcome));
    w.event(call, &event, status, Some((outcome.disposition, next_due)))?;
    Ok(Step {
        applied: applied(call, event_type, false),
        finished: (!will_retry).then(|| call.clone()),
    })
}

/// The facts of one event beyond the call's own fields.
struct EventFacts {
    event_type: EventType,
    disposition: Option<Disposition>,
    attempt: i32,
    start_time: Option<DateTime<Utc>>,
    answer_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    server_code: Option<String>,
    error_message: Option<String>,
    will_retry: bool,
    occurred_at: DateTime<Utc>,
}

impl EventFacts {
    fn in_progress(event_type: EventType, attempt: &AttemptRow, at: DateTime<Utc>) -> EventFacts {
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
        }
    }
}

/// The writes of one wave of transitions, sent as three set-based statements (one per table)
/// instead of three statements per transition. Raw SQL is parsed and planned at every use, so the
/// count of statements, not rows, is what a group costs.
#[derive(Default)]
struct Writes {
    a_id: Vec<Uuid>,
    a_state: Vec<String>,
    a_at: Vec<DateTime<Utc>>,
    a_disposition: Vec<Option<String>>,
    a_cause: Vec<Option<i32>>,
    a_error: Vec<Option<String>>,
    c_id: Vec<i64>,
    c_seq: Vec<i32>,
    c_status: Vec<String>,
    c_disposition: Vec<Option<String>>,
    c_due: Vec<Option<DateTime<Utc>>>,
    c_finished: Vec<bool>,
    e_id: Vec<String>,
    e_account: Vec<i64>,
    e_batch: Vec<i64>,
    e_call: Vec<i64>,
    e_seq: Vec<i32>,
    e_type: Vec<String>,
    e_body: Vec<String>,
    e_at: Vec<DateTime<Utc>>,
}

impl Writes {
    /// The attempt's new state: `started` and `answered` keep a time already set; `ended`
    /// records the outcome.
    fn attempt(&mut self, id: Uuid, state: &str, at: DateTime<Utc>, outcome: Option<&Outcome>) {
        self.a_id.push(id);
        self.a_state.push(state.to_owned());
        self.a_at.push(at);
        self.a_disposition
            .push(outcome.map(|o| o.disposition.as_str().to_owned()));
        self.a_cause
            .push(outcome.and_then(|o| o.cause.map(i32::from)));
        self.a_error
            .push(outcome.and_then(|o| o.error_message.clone()));
    }

    /// Bumps the call's sequence, sets its status (and, at an attempt's end, its disposition and
    /// due time), and writes the event with its body fixed now.
    fn event(
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
        let custom_data = match &call.custom_data {
            Some(text) => Some(RawValue::from_string(text.clone())?),
            None => None,
        };
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
            recording_url: None,
            custom_data,
            server_code: e.server_code.clone(),
            error_message: e.error_message.clone(),
            attempt: e.attempt,
            will_retry: e.will_retry,
            sequence,
            occurred_at: rfc3339(e.occurred_at),
        };
        self.e_body.push(serde_json::to_string(&body)?);
        self.c_id.push(call.call_pk);
        self.c_seq.push(sequence);
        self.c_status.push(status.as_str().to_owned());
        self.c_disposition
            .push(end.map(|(d, _)| d.as_str().to_owned()));
        self.c_due.push(end.and_then(|(_, due)| due));
        self.c_finished.push(status.is_final());
        self.e_id.push(event_id);
        self.e_account.push(call.account_id);
        self.e_batch.push(call.batch_pk);
        self.e_call.push(call.call_pk);
        self.e_seq.push(sequence);
        self.e_type.push(e.event_type.as_str().to_owned());
        self.e_at.push(e.occurred_at);
        Ok(())
    }

    /// Sends the three statements together (pipelined); the server runs them in this order.
    async fn execute(self, conn: &AsyncPgConnection) -> Result<(), StateError> {
        let attempts = async {
            if self.a_id.is_empty() {
                return Ok(0);
            }
            diesel::sql_query(
                "UPDATE call_attempts t SET state = u.state, \
                   started_at = CASE WHEN u.state = 'started' THEN COALESCE(t.started_at, u.at) ELSE t.started_at END, \
                   answered_at = CASE WHEN u.state = 'answered' THEN COALESCE(t.answered_at, u.at) ELSE t.answered_at END, \
                   ended_at = CASE WHEN u.state = 'ended' THEN u.at ELSE t.ended_at END, \
                   disposition = CASE WHEN u.state = 'ended' THEN u.disposition ELSE t.disposition END, \
                   hangup_cause = CASE WHEN u.state = 'ended' THEN u.cause ELSE t.hangup_cause END, \
                   error_message = CASE WHEN u.state = 'ended' THEN u.error ELSE t.error_message END \
                 FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::int[], $6::text[]) \
                      AS u(id, state, at, disposition, cause, error) \
                 WHERE t.id = u.id",
            )
            .bind::<Array<SqlUuid>, _>(&self.a_id)
            .bind::<Array<Text>, _>(&self.a_state)
            .bind::<Array<Timestamptz>, _>(&self.a_at)
            .bind::<Array<Nullable<Text>>, _>(&self.a_disposition)
            .bind::<Array<Nullable<Integer>>, _>(&self.a_cause)
            .bind::<Array<Nullable<Text>>, _>(&self.a_error)
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
                   updated_at = now(), finished_at = CASE WHEN u.finished THEN now() ELSE c.finished_at END \
                 FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::bool[]) \
                      AS u(id, seq, status, disposition, due, finished) \
                 WHERE c.id = u.id",
            )
            .bind::<Array<BigInt>, _>(&self.c_id)
            .bind::<Array<Integer>, _>(&self.c_seq)
            .bind::<Array<Text>, _>(&self.c_status)
            .bind::<Array<Nullable<Text>>, _>(&self.c_disposition)
            .bind::<Array<Nullable<Timestamptz>>, _>(&self.c_due)
            .bind::<Array<Bool>, _>(&self.c_finished)
            .execute(&mut &*conn)
            .await
        };
        let events = async {
            if self.e_id.is_empty() {
                return Ok(0);
            }
            diesel::sql_query(
                "INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, \
                   event_type, body, occurred_at) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], \
                   $5::int[], $6::text[], $7::text[], $8::timestamptz[])",
            )
            .bind::<Array<Text>, _>(&self.e_id)
            .bind::<Array<BigInt>, _>(&self.e_account)
            .bind::<Array<BigInt>, _>(&self.e_batch)
            .bind::<Array<BigInt>, _>(&self.e_call)
            .bind::<Array<Integer>, _>(&self.e_seq)
            .bind::<Array<Text>, _>(&self.e_type)
            .bind::<Array<Text>, _>(&self.e_body)
            .bind::<Array<Timestamptz>, _>(&self.e_at)
            .execute(&mut &*conn)
            .await
        };
        futures_util::future::try_join3(attempts, calls, events).await?;
        Ok(())
    }
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
pub(crate) async fn complete_batch_if_done(
    conn: &mut AsyncPgConnection,
    call: &CallRow,
) -> Result<bool, StateError> {
    let pending_states = CallStatus::sql_list(|s| !s.is_final());
    // Sent together; the server runs the lock first, so the probe sees every call that ended
    // before the lock was granted.
    let shared: &AsyncPgConnection = conn;
    let (locked, remaining): (Vec<Remaining>, Vec<Remaining>) = futures_util::future::try_join(
        diesel::sql_query(
            "SELECT 0::bigint AS pending FROM batches WHERE id = $1 \
             AND (status IN ('pending', 'dispatching', 'paused') \
                  OR (status = 'cancelled' AND completed_at IS NULL)) FOR UPDATE",
        )
        .bind::<BigInt, _>(call.batch_pk)
        .load(&mut &*shared),
        // Whether any call is left, not how many: this runs at every call's end, and counting
        // a large batch each time would make finishing it quadratic.
        diesel::sql_query(format!(
            "SELECT count(*) AS pending FROM (SELECT 1 FROM calls WHERE batch_pk = $1 \
             AND status IN ({pending_states}) LIMIT 1) x"
        ))
        .bind::<BigInt, _>(call.batch_pk)
        .load(&mut &*shared),
    )
    .await?;
    if locked.is_empty() {
        return Ok(false);
    }
    if remaining.into_iter().next().map_or(1, |r| r.pending) > 0 {
        return Ok(false);
    }
    diesel::sql_query(
        "UPDATE batches SET status = CASE WHEN status = 'cancelled' THEN status ELSE 'completed' END, \
         completed_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind::<BigInt, _>(call.batch_pk)
    .execute(conn)
    .await?;
    if call.batch_events {
        write_batch_completed(conn, call).await?;
    }
    Ok(true)
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn write_batch_completed(
    conn: &mut AsyncPgConnection,
    call: &CallRow,
) -> Result<(), StateError> {
    let counts: Vec<StatusCount> = diesel::sql_query(
        "SELECT status, count(*) AS n FROM calls WHERE batch_pk = $1 GROUP BY status",
    )
    .bind::<BigInt, _>(call.batch_pk)
    .load(conn)
    .await?;
    let parsed = counts
        .iter()
        .filter_map(|c| c.status.parse::<CallStatus>().ok().map(|s| (s, c.n)));
    let totals = dialer_core::domain::Totals::from_counts(parsed);
    let count_map: serde_json::Map<String, serde_json::Value> = counts
        .iter()
        .map(|c| (c.status.clone(), serde_json::Value::from(c.n)))
        .collect();
    let event_id = new_event_id();
    let now = Utc::now();
    let body = serde_json::json!({
        "event_id": event_id,
        "event_type": EventType::BatchCompleted.as_str(),
        "accountcode": call.accountcode,
        "batch_id": call.batch_id,
        "total_calls": totals.total_calls,
        "completed_calls": totals.completed_calls,
        "failed_calls": totals.failed_calls,
        "counts": count_map,
        "occurred_at": rfc3339(now),
    });
    diesel::sql_query(
        "INSERT INTO call_events (event_id, account_id, batch_pk, event_type, body, occurred_at) \
         VALUES ($1, $2, $3, 'batch_completed', $4, $5)",
    )
    .bind::<Text, _>(&event_id)
    .bind::<BigInt, _>(call.account_id)
    .bind::<BigInt, _>(call.batch_pk)
    .bind::<Text, _>(body.to_string())
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Transition, waves};
    use chrono::Utc;
    use uuid::Uuid;

    #[test]
    fn waves_hold_one_transition_per_attempt_in_arrival_order() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let at = Utc::now();
        let ts = [
            Transition::Started { attempt: a, at },
            Transition::Started { attempt: b, at },
            Transition::Answered { attempt: a, at },
            Transition::Started { attempt: c, at },
            Transition::Answered { attempt: b, at },
            Transition::Answered { attempt: a, at },
        ];
        let by_attempt = |_: usize, t: &Transition| t.attempt();
        assert_eq!(
            waves(&ts, by_attempt),
            vec![vec![0, 1, 3], vec![2, 4], vec![5]]
        );
        assert!(waves(&[], by_attempt).is_empty());
    }
}
