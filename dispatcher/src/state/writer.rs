//! The AMI-driven transitions of dialed calls (`call_started`, `call_answered`, the attempt's
//! end), each written with its callback event in one transaction, so the callback events and the
//! call never disagree.
//!
//! Every transition is conditional on the attempt's current state, so a repeated or late signal
//! (a redelivered AMI event after a reconnect, a guard firing after the real end) changes
//! nothing and writes no event.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use dialer_core::call_flow::Gather;
use dialer_core::domain::{AttemptState, BatchStatus, CallStatus, Disposition, EventType};
use dialer_core::event_body::{AnswerFacts, recording_url};
use dialer_core::lifecycle::{complete_batch_if_done, recording_ready_if_due};
use dialer_core::prepared::{GENERIC_PLANS_BELOW, plan_generically};

use super::not_placed::put_back;
use super::rows::{AttemptRow, CallRow, lock_rows};
use super::transition::{Applied, StateError, Transition};
use super::writes::{EventFacts, Writes};
use crate::outcome::Outcome;

/// Applies one transition in its own transaction. `None` when it changed nothing (repeated or
/// late signal, unknown attempt).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    t: &Transition,
    public_url: &str,
) -> Result<Option<Applied>, StateError> {
    let mut all = apply_all(conn, std::slice::from_ref(t), public_url).await?;
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
///
/// `public_url` is the API's address as clients reach it (`recording_url`).
pub async fn apply_all(
    conn: &mut AsyncPgConnection,
    ts: &[Transition],
    public_url: &str,
) -> Result<Vec<Option<Applied>>, StateError> {
    conn.transaction::<_, StateError, _>(async |conn| {
        if ts.len() < GENERIC_PLANS_BELOW {
            plan_generically(conn).await?;
        }
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
                    Some((call, attempt)) => plan(t, call, attempt, public_url, &mut writes)?,
                    None => None,
                };
                steps.push(step);
            }
            let queued = writes.execute(conn).await?;
            for (i, step) in wave.into_iter().zip(steps) {
                if let Some(mut step) = step {
                    step.applied.queued = queued.contains(&step.call_pk);
                    // What the statements just wrote, for the attempt's next transition.
                    if let Some((call, attempt)) = rows.get_mut(&ts[i].attempt()) {
                        advance(call, attempt, &ts[i]);
                    }
                    out[i] = Some(step.applied);
                    finished.extend(step.finished);
                }
            }
        }
        // Attempts never placed have no other transition: undone after the waves.
        let not_placed: Vec<(Uuid, DateTime<Utc>)> = ts
            .iter()
            .filter_map(|t| match t {
                Transition::NotPlaced { attempt, due } => Some((*attempt, *due)),
                _ => None,
            })
            .collect();
        for (attempt, ended) in put_back(conn, &not_placed, Utc::now()).await? {
            if let Some(i) = ts.iter().position(|t| t.attempt() == attempt) {
                out[i] = Some(ended);
            }
        }
        // Recordings that arrived before their attempt's end was written: their
        // `call_recording_ready` follows the terminal event now.
        for (t, applied) in ts.iter().zip(out.iter_mut()) {
            if let (Transition::Ended { attempt, .. }, Some(applied)) = (t, applied)
                && let Some((call, row)) = rows.get(attempt)
                && call.record
                && row.answered_at.is_some()
                && let Some(ready) = recording_ready_if_due(conn, call.call_pk, row.attempt).await?
            {
                applied.queued |= ready.queued;
            }
        }
        finished.sort_by_key(|c| c.batch_pk);
        finished.dedup_by_key(|c| c.batch_pk);
        for call in &finished {
            if complete_batch_if_done(conn, &call.batch()).await? {
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

/// The rows as a transition that was applied left them.
fn advance(call: &mut CallRow, attempt: &mut AttemptRow, t: &Transition) {
    call.event_seq += 1;
    match t {
        Transition::Started { .. } => attempt.state = AttemptState::Started,
        Transition::Answered { at, .. } => {
            attempt.state = AttemptState::Answered;
            attempt.answered_at.get_or_insert(*at);
        }
        Transition::Amd {
            answered_by, cause, ..
        } => {
            attempt.answered_by = Some(*answered_by);
            attempt.amd_cause.clone_from(cause);
        }
        Transition::Input { digits, .. } => {
            attempt.opted_out = Some(opted_out(call, digits));
            attempt.digits = Some(digits.clone());
        }
        Transition::Ended { .. } => attempt.state = AttemptState::Ended,
        Transition::NotPlaced { .. } => {}
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
    call_pk: i64,
    applied: Applied,
    finished: Option<CallRow>,
}

impl Step {
    fn in_progress(call: &CallRow, event_type: EventType) -> Step {
        Step {
            call_pk: call.call_pk,
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
    public_url: &str,
    w: &mut Writes,
) -> Result<Option<Step>, StateError> {
    let attempt_id = t.attempt();
    match t {
        Transition::Started { at, .. } => {
            if attempt.state != AttemptState::Originating {
                return Ok(None);
            }
            let event = EventFacts::in_progress(EventType::CallStarted, attempt, *at);
            w.attempt(attempt_id, AttemptState::Started, *at, None);
            w.event(call, &event, CallStatus::Started, None)?;
            Ok(Some(Step::in_progress(call, EventType::CallStarted)))
        }
        Transition::Answered { at, .. } => {
            if !matches!(
                attempt.state,
                AttemptState::Originating | AttemptState::Started
            ) {
                return Ok(None);
            }
            let mut event = EventFacts::in_progress(EventType::CallAnswered, attempt, *at);
            event.disposition = Some(Disposition::Answered);
            event.answer_time = Some(*at);
            w.attempt(attempt_id, AttemptState::Answered, *at, None);
            w.event(call, &event, CallStatus::Answered, None)?;
            Ok(Some(Step::in_progress(call, EventType::CallAnswered)))
        }
        Transition::Amd {
            answered_by,
            cause,
            at,
            ..
        } => {
            // Once, while the call is up: a repeat or a report after the end changes nothing.
            if attempt.state != AttemptState::Answered || attempt.answered_by.is_some() {
                return Ok(None);
            }
            let facts = AnswerFacts {
                answered_by: Some(*answered_by),
                amd_cause: cause.clone(),
                ..AnswerFacts::default()
            };
            report(
                w,
                call,
                attempt_id,
                attempt,
                facts,
                EventType::CallAmdResult,
                *at,
            )
            .map(Some)
        }
        Transition::Input { digits, at, .. } => {
            if attempt.state != AttemptState::Answered || attempt.digits.is_some() {
                return Ok(None);
            }
            let out = opted_out(call, digits);
            if out {
                w.do_not_call(call);
            }
            let facts = AnswerFacts {
                digits: Some(digits.clone()),
                opted_out: Some(out),
                ..AnswerFacts::default()
            };
            report(
                w,
                call,
                attempt_id,
                attempt,
                facts,
                EventType::CallInput,
                *at,
            )
            .map(Some)
        }
        Transition::Ended {
            outcome,
            cut_by_platform,
            at,
            ..
        } => {
            if attempt.state == AttemptState::Ended {
                return Ok(None);
            }
            let recording_url = (call.record && attempt.answered_at.is_some())
                .then(|| recording_url(public_url, call.call_id, attempt.attempt));
            plan_end(
                w,
                call,
                attempt_id,
                attempt,
                outcome,
                *cut_by_platform,
                *at,
                recording_url,
            )
            .map(Some)
        }
        // Not one of the waves' writes: see `put_back`.
        Transition::NotPlaced { .. } => Ok(None),
    }
}

/// Whether the keys gathered opt the number out (the batch's opt-out digit as the first key).
fn opted_out(call: &CallRow, digits: &str) -> bool {
    call.gather
        .as_ref()
        .and_then(|g| Gather::parse(g).ok())
        .is_some_and(|g| g.opted_out(digits))
}

/// A report of the flow on an answered attempt: its facts kept on the attempt (and the call),
/// and the event that carries them with those already known.
fn report(
    w: &mut Writes,
    call: &CallRow,
    attempt_id: Uuid,
    attempt: &AttemptRow,
    facts: AnswerFacts,
    event_type: EventType,
    at: DateTime<Utc>,
) -> Result<Step, StateError> {
    w.report(attempt_id, at, &facts);
    let mut event = EventFacts::in_progress(event_type, attempt, at);
    event.disposition = Some(Disposition::Answered);
    let known = &mut event.answer;
    known.answered_by = facts.answered_by.or(known.answered_by);
    known.amd_cause = facts.amd_cause.or(known.amd_cause.take());
    known.digits = facts.digits.or(known.digits.take());
    known.opted_out = facts.opted_out.or(known.opted_out);
    w.event(call, &event, CallStatus::Answered, None)?;
    Ok(Step::in_progress(call, event_type))
}

fn applied(call: &CallRow, event_type: EventType, batch_completed: bool) -> Applied {
    Applied {
        batch_pk: call.batch_pk,
        event_type: Some(event_type),
        batch_completed,
        queued: false,
        ended: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_end(
    w: &mut Writes,
    call: &CallRow,
    attempt_id: Uuid,
    attempt: &AttemptRow,
    outcome: &Outcome,
    cut_by_platform: bool,
    at: DateTime<Utc>,
    recording_url: Option<String>,
) -> Result<Step, StateError> {
    let event_type = EventType::for_outcome(outcome.disposition, cut_by_platform);
    // A cancelled batch starts no new call: its call in progress ends with this attempt.
    let will_retry = call.batch_status != BatchStatus::Cancelled
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
        answer: attempt.answer_facts(),
        recording_url,
    };
    w.attempt(attempt_id, AttemptState::Ended, at, Some(outcome));
    w.event(call, &event, status, Some((outcome.disposition, next_due)))?;
    Ok(Step {
        call_pk: call.call_pk,
        applied: Applied {
            ended: Some(outcome.disposition),
            ..applied(call, event_type, false)
        },
        finished: (!will_retry).then(|| call.clone()),
    })
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
