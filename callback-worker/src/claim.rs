//! Claiming due events: one statement takes up to N pending events whose time has come, skips
//! those locked by another worker, those of excluded endpoints, and those whose call still has
//! an earlier event pending (order per call), and pushes each one's `next_attempt_at` to the
//! end of a lease. That new `next_attempt_at` is the claim's token: the outcome is written only
//! if it is still there, so a worker whose lease ran out cannot overwrite a newer claim. After a
//! crash the events come due again by themselves when their lease ends.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dialer_core::domain::EventType;
use diesel::sql_types::{Array, BigInt, Double, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A claimed event. The statement also returns each event's call and sequence; nothing here
/// reads them (order per call is kept by the statement itself).
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct ClaimedEvent {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub event_type: EventType,
    #[diesel(sql_type = Text)]
    pub body: String,
    /// Tries so far, all time (attempt numbers keep growing across replays).
    #[diesel(sql_type = Integer)]
    pub delivery_attempts: i32,
    /// Tries before the last replay: the schedule restarts there.
    #[diesel(sql_type = Integer)]
    pub attempts_before: i32,
    #[diesel(sql_type = Timestamptz)]
    pub lease_token: DateTime<Utc>,
}

impl ClaimedEvent {
    /// The number of the attempt about to be made (1-based, all time).
    pub fn attempt_number(&self) -> i32 {
        self.delivery_attempts + 1
    }

    /// The same attempt counted since the last replay (its place in the schedule).
    pub fn tries_since_replay(&self) -> usize {
        (self.attempt_number() - self.attempts_before).max(1) as usize
    }
}

const CLAIM_SQL: &str = "\
WITH picked AS (
    SELECT c.id FROM call_events c
    WHERE c.delivery_status = 'pending' AND c.next_attempt_at <= now()
      AND c.account_id <> ALL($1)
      AND NOT EXISTS (
          SELECT 1 FROM call_events p
          WHERE p.call_pk = c.call_pk AND p.sequence < c.sequence AND p.delivery_status = 'pending')
    ORDER BY c.next_attempt_at, c.id
    LIMIT $2
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE call_events e SET next_attempt_at = now() + make_interval(secs => $3)
FROM picked WHERE e.id = picked.id
RETURNING e.id, e.event_id, e.account_id, e.call_pk, e.sequence, e.event_type, e.body,
          e.delivery_attempts,
          COALESCE((SELECT r.attempts_before FROM callback_replays r WHERE r.event_pk = e.id), 0)
              AS attempts_before,
          e.next_attempt_at AS lease_token";

/// Claims up to `limit` due events, skipping the accounts in `excluded`.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: usize,
    excluded: &[i64],
    lease: Duration,
) -> Result<Vec<ClaimedEvent>, diesel::result::Error> {
    let mut rows: Vec<ClaimedEvent> = diesel::sql_query(CLAIM_SQL)
        .bind::<Array<BigInt>, _>(excluded)
        .bind::<BigInt, _>(limit as i64)
        .bind::<Double, _>(lease.as_secs_f64())
        .load(conn)
        .await?;
    // RETURNING has no order; send in the order the events were due.
    rows.sort_unstable_by_key(|r| r.id);
    Ok(rows)
}

/// Pushes the due events of an endpoint whose circuit is open to when it may be tried again,
/// without using up any of their tries (and so they stop being scanned meanwhile).
pub async fn defer_account(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    until: DateTime<Utc>,
) -> Result<usize, diesel::result::Error> {
    diesel::sql_query(
        "UPDATE call_events SET next_attempt_at = $2 \
         WHERE account_id = $1 AND delivery_status = 'pending' AND next_attempt_at <= now()",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Timestamptz, _>(until)
    .execute(conn)
    .await
}
