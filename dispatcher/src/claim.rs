//! Claiming dial jobs before any side effect: one transaction per account decides, for each job,
//! by the rules of [`dialer_core::dial_rules`], whether its call is dialed now, waits (calling
//! hours, re-dial window, suspended account), is skipped (do-not-call, destination no longer
//! allowed) or cancelled (batch cancelled), expires, or is dropped (already claimed, batch
//! paused). Only a call still `scheduled` for exactly this attempt is claimed, and the claim
//! writes the attempt row, so a redelivered or duplicated job never dials a number twice.
//!
//! Claims of one account are serialized across dispatchers by an advisory lock, so its channel
//! limit holds in aggregate: the live attempts are counted under the lock.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use dialer_core::dial_outbox::DialJob;
use dialer_core::domain::{BatchStatus, CallStatus, Disposition, EventType};
use dialer_core::lifecycle::control;

use crate::state::{self, Applied, Claimed, StateError};

use dialer_core::calling_hours::CallingHours;
use dialer_core::calling_window::zone_for;
use dialer_core::dial_rules::{self, CallFacts, Hold, Verdict};
use dialer_core::prepared::PrepareOnce;

/// What became of one job.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Claimed: originate it now.
    Dial(Box<Claimed>),
    /// Outside calling hours: parked in PostgreSQL until `until` (the job is done with).
    Wait {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Never dialed: ended with this event (`call_skipped`, `call_expired`, `call_cancelled`).
    Ended(Applied),
    /// Nothing to do: claimed elsewhere, already past this attempt, batch paused.
    Drop,
    /// The account's channel limit is reached: keep the job and try again later.
    NoCapacity,
}

#[derive(Debug, QueryableByName)]
struct JobState {
    #[diesel(sql_type = BigInt)]
    call_pk: i64,
    #[diesel(sql_type = Text)]
    status: CallStatus,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Text)]
    phone_e164: String,
    #[diesel(sql_type = Nullable<Text>)]
    phone_region: Option<String>,
    #[diesel(sql_type = Text)]
    batch_status: BatchStatus,
    #[diesel(sql_type = Bool)]
    expired: bool,
    #[diesel(sql_type = Nullable<Jsonb>)]
    calling_hours: Option<serde_json::Value>,
    #[diesel(sql_type = Text)]
    timezone: String,
    #[diesel(sql_type = Array<Text>)]
    allowed_countries: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    allowed_prefixes: Vec<String>,
    #[diesel(sql_type = Bool)]
    dnc: bool,
    #[diesel(sql_type = Text)]
    account_status: String,
    #[diesel(sql_type = Integer)]
    redial_window_hours: i32,
    /// The account is a test twin: its calls may go to a simulated PBX only.
    #[diesel(sql_type = Bool)]
    test_mode: bool,
    /// When another call of the account last dialed this number, plus the re-dial window.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    redial_until: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Integer)]
    max: i32,
}

/// Claims `jobs` (all of one account), placing dialed calls on `server_id` (a PBX simulator
/// when `simulated`). The result is in the order of `jobs`.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    jobs: &[DialJob],
    server_id: i64,
    simulated: bool,
    dispatcher_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Decision>, StateError> {
    conn.transaction::<_, StateError, _>(async |conn| {
        // Pause and cancel take it too: they never see a claim of the batch half done.
        control::lock_account_claims(conn, account_id).await?;
        let call_pks: Vec<i64> = jobs.iter().map(|j| j.call_pk).collect();
        let states: Vec<JobState> = diesel::sql_query(
            "SELECT c.id AS call_pk, c.status, c.attempts, c.phone_e164, c.phone_region, \
             b.status AS batch_status, (b.expires_at IS NOT NULL AND b.expires_at <= $2) AS expired, \
             COALESCE(b.calling_hours, a.calling_hours) AS calling_hours, a.timezone, \
             a.allowed_countries, a.allowed_prefixes, a.status AS account_status, \
             a.redial_window_hours, \
             EXISTS (SELECT 1 FROM test_twins t WHERE t.account_id = a.id) AS test_mode, \
             CASE WHEN a.redial_window_hours > 0 THEN \
               (SELECT max(o.last_dialed_at) FROM calls o WHERE o.account_id = c.account_id \
                AND o.phone_e164 = c.phone_e164 AND o.id <> c.id) \
               + make_interval(hours => a.redial_window_hours) END AS redial_until, \
             EXISTS (SELECT 1 FROM dnc_numbers d WHERE d.phone_e164 = c.phone_e164 \
                     AND (d.account_id IS NULL OR d.account_id = c.account_id)) AS dnc \
             FROM calls c JOIN batches b ON b.id = c.batch_pk JOIN accounts a ON a.id = c.account_id \
             WHERE c.id = ANY($1) FOR UPDATE OF c SKIP LOCKED",
        )
        .bind::<Array<BigInt>, _>(&call_pks)
        .bind::<Timestamptz, _>(now)
        .prepared()
        .load(conn)
        .await?;
        // `ended_at IS NULL`: the predicate of the index of live attempts (not `state`).
        let live: Vec<Count> = diesel::sql_query(
            "SELECT (SELECT count(*) FROM call_attempts WHERE account_id = $1 AND ended_at IS NULL) AS n, \
             max_concurrent_calls AS max FROM accounts WHERE id = $1",
        )
        .bind::<BigInt, _>(account_id)
        .prepared()
        .load(conn)
        .await?;
        let mut headroom = live
            .into_iter()
            .next()
            .map_or(0, |c| (i64::from(c.max) - c.n).max(0));

        // Numbers this claim dials: a second call to one of them in the same claim is held by
        // the re-dial window like a call dialed earlier.
        let mut dialing: Vec<&str> = Vec::new();
        let pending: Vec<Pending> = jobs
            .iter()
            .map(|job| match states.iter().find(|s| s.call_pk == job.call_pk) {
                // Never a test call on a real PBX, nor a live one on a simulator: the scheduler
                // chooses by the job, this holds whatever the job said.
                Some(state) if state.test_mode != simulated => Pending::NoCapacity,
                Some(state) => decide(state, job, now, &mut headroom, &mut dialing),
                // Locked by another claim right now, or gone.
                None => Pending::Drop,
            })
            .collect();
        // Every dial of the batch in one statement.
        let to_dial: Vec<&DialJob> = jobs
            .iter()
            .zip(&pending)
            .filter(|(_, p)| matches!(p, Pending::Dial))
            .map(|(j, _)| j)
            .collect();
        let mut claimed = state::start_attempts(conn, &to_dial, server_id, dispatcher_id, now).await?;
        let mut decisions = Vec::with_capacity(jobs.len());
        for (job, decision) in jobs.iter().zip(pending) {
            let decision = match decision {
                Pending::Dial => match claimed.iter().position(|c| c.call_pk == job.call_pk) {
                    Some(i) => Decision::Dial(Box::new(claimed.swap_remove(i))),
                    None => Decision::Drop,
                },
                Pending::Wait(hold) => {
                    let until = hold.until(now);
                    let reason = hold.text();
                    state::park_until(conn, job.call_pk, until).await?;
                    Decision::Wait { until, reason }
                }
                Pending::End(event_type, disposition) => {
                    match state::end_undialed(conn, job.call_pk, event_type, disposition, now).await? {
                        Some(ended) => Decision::Ended(Applied::from(ended)),
                        None => Decision::Drop,
                    }
                }
                Pending::Drop => Decision::Drop,
                Pending::NoCapacity => Decision::NoCapacity,
            };
            decisions.push(decision);
        }
        Ok(decisions)
    })
    .await
}

enum Pending {
    Dial,
    Wait(Hold),
    End(EventType, Option<Disposition>),
    Drop,
    NoCapacity,
}

/// Stale jobs are dropped; then the rules of [`dial_rules::judge`]; then the channel limit.
fn decide<'s>(
    state: &'s JobState,
    job: &DialJob,
    now: DateTime<Utc>,
    headroom: &mut i64,
    dialing: &mut Vec<&'s str>,
) -> Pending {
    if state.status != CallStatus::Scheduled || state.attempts != job.attempt - 1 {
        return Pending::Drop;
    }
    let hours = state
        .calling_hours
        .as_ref()
        .and_then(|v| CallingHours::from_json(v).ok());
    let window = chrono::Duration::hours(i64::from(state.redial_window_hours));
    let dialed_in_this_claim =
        state.redial_window_hours > 0 && dialing.contains(&state.phone_e164.as_str());
    let facts = CallFacts {
        batch_status: state.batch_status,
        account_active: state.account_status == "active",
        expired: state.expired,
        dnc: state.dnc,
        destination_allowed: dial_rules::destination_allowed(
            &state.allowed_countries,
            &state.allowed_prefixes,
            &state.phone_e164,
            state.phone_region.as_deref(),
        ),
        calling_hours: hours.as_ref(),
        zone: zone_for(state.phone_region.as_deref(), &state.timezone),
        redial_until: if dialed_in_this_claim {
            Some(now + window)
        } else {
            state.redial_until
        },
    };
    match dial_rules::judge(&facts, now) {
        Verdict::Dial => {}
        Verdict::Wait(hold) => return Pending::Wait(hold),
        Verdict::End { event, disposition } => return Pending::End(event, disposition),
        // Paused (resume re-arms jobs), or not dialing.
        Verdict::Closed(_) => return Pending::Drop,
    }
    if *headroom <= 0 {
        return Pending::NoCapacity;
    }
    *headroom -= 1;
    dialing.push(&state.phone_e164);
    Pending::Dial
}
