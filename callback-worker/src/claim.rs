//! Claiming due events from the delivery queue (`callback_queue`): one statement takes up to N
//! queued events whose time has come, skips those locked by another worker, those of excluded
//! endpoints, and those whose call still has an earlier event queued (order per call), and
//! pushes each one's `due_at` to the end of a lease. That new `due_at` is the claim's token: the
//! outcome is written only if it is still there, so a worker whose lease ran out cannot
//! overwrite a newer claim. After a crash the events come due again by themselves when their
//! lease ends.
//!
//! Why a queue table beside `call_events` rather than a partial index of it: a row is in the
//! queue exactly while its event is pending (the triggers of migration
//! `2026-12-06-000001_callback_queue` keep it so, and events no one will deliver never enter),
//! and leases, retries and deferrals rewrite only this small table. A claim then walks the
//! queued events and the dead entries of the last second or so (see [`crate::vacuum`]), never
//! the history of `call_events`, whose indexes no claim touches; its cost does not depend on
//! how many events were ever delivered.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dialer_core::domain::EventType;
use dialer_core::prepared::PrepareOnce;
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

/// The claim statement: `$1` excluded accounts, `$2` limit, `$3` lease in seconds, `$4` events
/// per account at most (public so that tests and benchmarks can `EXPLAIN` it).
///
/// Accounts take turns: the claim walks the accounts that have queued events (a loose scan of
/// `callback_queue_account_due`, one index probe per account), takes each one's first due
/// events (at most `$4`), and keeps the first of every account before the second of any. One
/// account's backlog, however large, neither fills a claim nor lengthens it: before, the claim
/// read the queue in due order for all accounts and walked every event of an excluded one.
pub const CLAIM_SQL: &str = "\
WITH RECURSIVE accounts AS (
    SELECT min(account_id) AS id FROM callback_queue
    UNION ALL
    SELECT (SELECT min(q.account_id) FROM callback_queue q WHERE q.account_id > a.id)
    FROM accounts a WHERE a.id IS NOT NULL
), candidates AS (
    SELECT c.account_id, c.event_pk, c.due_at FROM accounts a CROSS JOIN LATERAL (
        SELECT q.account_id, q.event_pk, q.due_at FROM callback_queue q
        WHERE q.account_id = a.id AND q.due_at <= now()
          AND NOT EXISTS (
              SELECT 1 FROM callback_queue p WHERE p.call_pk = q.call_pk AND p.sequence < q.sequence)
        ORDER BY q.due_at, q.event_pk
        LIMIT $4
        FOR UPDATE OF q SKIP LOCKED
    ) c
    WHERE a.id IS NOT NULL AND a.id <> ALL($1)
), picked AS (
    SELECT event_pk FROM (
        SELECT event_pk, due_at,
               row_number() OVER (PARTITION BY account_id ORDER BY due_at, event_pk) AS turn
        FROM candidates
    ) t
    ORDER BY turn, due_at, event_pk
    LIMIT $2
), leased AS (
    -- By primary key, whatever the planner guesses of `picked` (a join chose to read the whole
    -- queue for 3 events).
    UPDATE callback_queue q SET due_at = now() + make_interval(secs => $3)
    WHERE q.event_pk = ANY(ARRAY(SELECT event_pk FROM picked))
    RETURNING q.event_pk, q.due_at
)
SELECT e.id, e.event_id, e.account_id, e.call_pk, e.sequence, e.event_type, e.body,
       e.delivery_attempts, COALESCE(r.attempts_before, 0) AS attempts_before,
       l.due_at AS lease_token
FROM leased l
JOIN call_events e ON e.id = l.event_pk
LEFT JOIN callback_replays r ON r.event_pk = l.event_pk";

/// Claims up to `limit` due events, at most `per_account` of one account, skipping the
/// accounts in `excluded`.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: usize,
    per_account: usize,
    excluded: &[i64],
    lease: Duration,
) -> Result<Vec<ClaimedEvent>, diesel::result::Error> {
    let mut rows: Vec<ClaimedEvent> = diesel::sql_query(CLAIM_SQL)
        .bind::<Array<BigInt>, _>(excluded)
        .bind::<BigInt, _>(limit as i64)
        .bind::<Double, _>(lease.as_secs_f64())
        .bind::<BigInt, _>(per_account as i64)
        .prepared()
        .load(conn)
        .await?;
    // RETURNING has no order; send in the order the events were due.
    rows.sort_unstable_by_key(|r| r.id);
    Ok(rows)
}

/// Pushes the due events of an endpoint whose circuit is open to when it may be tried again,
/// without using up any of their tries (and so they stop being scanned meanwhile). Claimed
/// events keep their lease.
pub async fn defer_account(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    until: DateTime<Utc>,
) -> Result<usize, diesel::result::Error> {
    diesel::sql_query(
        "UPDATE callback_queue SET due_at = $2 WHERE account_id = $1 AND due_at <= now()",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Timestamptz, _>(until)
    .prepared()
    .execute(conn)
    .await
}
