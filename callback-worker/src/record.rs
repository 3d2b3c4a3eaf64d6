//! Writing what happened, many events per statement: the attempt records (`callback_deliveries`,
//! one row per try), each event's place in the delivery queue and its new state, in one
//! statement (one commit, one round trip). An event's state changes only if its claim token is
//! still its `due_at` in `callback_queue`. A settled event (delivered, failed, skipped) leaves
//! the queue; one due again (retry, released) stays with its new due time, and `call_events` is
//! written only when something happened to it (a try, an end), not for a release.

use chrono::{DateTime, Utc};
use dialer_core::callbacks::listing::DeliveryAttempt;
use dialer_core::domain::DeliveryStatus;
use dialer_core::prepared::PrepareOnce;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// How an event leaves this worker's hands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Delivered,
    /// Failed; the next try is due then.
    RetryAt(DateTime<Utc>),
    /// Failed on its last try.
    Failed,
    /// Not tried (circuit open, shutting down): due again then, no try used up.
    Released(DateTime<Utc>),
    /// Never to be sent (a batch event the account does not subscribe to, no callback URL).
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub event_pk: i64,
    pub lease_token: DateTime<Utc>,
    pub resolution: Resolution,
    /// The try made, as recorded in `callback_deliveries` (the row the API lists).
    pub attempt: Option<DeliveryAttempt>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, diesel::QueryableByName)]
pub struct Recorded {
    /// Events whose state was written (the others had lost their claim).
    #[diesel(sql_type = BigInt)]
    pub updated: i64,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    /// Queued events behind the settled ones (later events of their calls), which no claim
    /// could take before: the claimer has work now.
    #[diesel(sql_type = BigInt)]
    pub followers: i64,
}

const RECORD_SQL: &str = "\
WITH input AS (
    SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::timestamptz[],
                         $5::text[], $6::int[])
        AS u(id, token, status, next_at, last_error, tried)
), settled AS (
    DELETE FROM callback_queue q USING input i
    WHERE q.event_pk = i.id AND q.due_at = i.token AND i.status <> 'pending'
    RETURNING q.event_pk, q.call_pk, q.sequence
), requeued AS (
    UPDATE callback_queue q SET due_at = i.next_at
    FROM input i
    WHERE q.event_pk = i.id AND q.due_at = i.token AND i.status = 'pending'
    RETURNING q.event_pk, q.call_pk, q.sequence, i.next_at, i.tried
), held_back AS (
    -- Later events of a call whose event waits for a retry cannot go before it: move them out
    -- of the way so claims do not scan them again and again.
    UPDATE callback_queue s SET due_at = r.next_at
    FROM requeued r
    WHERE s.call_pk = r.call_pk AND s.sequence > r.sequence
      AND s.due_at <= now() AND s.due_at < r.next_at
      AND s.event_pk NOT IN (SELECT id FROM input)
    RETURNING s.event_pk
), updated AS (
    UPDATE call_events e SET
        delivery_status = i.status,
        next_attempt_at = i.next_at,
        delivery_attempts = e.delivery_attempts + i.tried,
        delivered_at = CASE WHEN i.status = 'delivered' THEN now() ELSE e.delivered_at END,
        last_error = CASE WHEN i.status = 'delivered' THEN NULL
                          ELSE COALESCE(i.last_error, e.last_error) END
    FROM input i
    WHERE e.id = i.id
      AND (e.id IN (SELECT event_pk FROM settled)
           OR e.id IN (SELECT event_pk FROM requeued WHERE tried > 0))
    RETURNING e.id
), attempts AS (
    INSERT INTO callback_deliveries
        (event_pk, attempt, attempted_at, url, status_code, error, latency_ms, response_head)
    SELECT * FROM UNNEST($7::bigint[], $8::int[], $9::timestamptz[], $10::text[], $11::int[],
                         $12::text[], $13::int[], $14::text[])
    ON CONFLICT (event_pk, attempt) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM settled) + (SELECT count(*) FROM requeued) AS updated,
       (SELECT count(*) FROM attempts) AS attempts,
       (SELECT count(*) FROM callback_queue f JOIN settled s
          ON f.call_pk = s.call_pk AND f.sequence > s.sequence) AS followers";

pub async fn record(
    conn: &mut AsyncPgConnection,
    outcomes: &[Outcome],
) -> Result<Recorded, diesel::result::Error> {
    if outcomes.is_empty() {
        return Ok(Recorded::default());
    }
    let now = Utc::now();
    let n = outcomes.len();
    let (mut ids, mut tokens, mut statuses, mut next_ats, mut errors, mut tried) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (
        mut a_ids,
        mut a_nums,
        mut a_ats,
        mut a_urls,
        mut a_codes,
        mut a_errors,
        mut a_lat,
        mut a_heads,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for o in outcomes {
        let (status, next_at, error) = match &o.resolution {
            Resolution::Delivered => (DeliveryStatus::Delivered, now, None),
            Resolution::RetryAt(at) => (
                DeliveryStatus::Pending,
                *at,
                o.attempt.as_ref().and_then(attempt_error),
            ),
            Resolution::Failed => (
                DeliveryStatus::Failed,
                now,
                o.attempt.as_ref().and_then(attempt_error),
            ),
            Resolution::Released(at) => (DeliveryStatus::Pending, *at, None),
            Resolution::Skipped(reason) => (DeliveryStatus::Skipped, now, Some(reason.clone())),
        };
        ids.push(o.event_pk);
        tokens.push(o.lease_token);
        statuses.push(status);
        next_ats.push(next_at);
        errors.push(error);
        tried.push(i32::from(o.attempt.is_some()));
        if let Some(a) = &o.attempt {
            a_ids.push(o.event_pk);
            a_nums.push(a.attempt);
            a_ats.push(a.attempted_at);
            a_urls.push(a.url.as_str());
            a_codes.push(a.status_code);
            a_errors.push(a.error.as_deref());
            a_lat.push(a.latency_ms);
            a_heads.push(a.response_head.as_deref());
        }
    }
    diesel::sql_query(RECORD_SQL)
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Array<Timestamptz>, _>(&tokens)
        .bind::<Array<Text>, _>(&statuses)
        .bind::<Array<Timestamptz>, _>(&next_ats)
        .bind::<Array<Nullable<Text>>, _>(&errors)
        .bind::<Array<Integer>, _>(&tried)
        .bind::<Array<BigInt>, _>(&a_ids)
        .bind::<Array<Integer>, _>(&a_nums)
        .bind::<Array<Timestamptz>, _>(&a_ats)
        .bind::<Array<Text>, _>(&a_urls)
        .bind::<Array<Nullable<Integer>>, _>(&a_codes)
        .bind::<Array<Nullable<Text>>, _>(&a_errors)
        .bind::<Array<Nullable<Integer>>, _>(&a_lat)
        .bind::<Array<Nullable<Text>>, _>(&a_heads)
        .prepared()
        .get_result(conn)
        .await
}

/// The event's `last_error`: the attempt's error, or its status.
fn attempt_error(a: &DeliveryAttempt) -> Option<String> {
    match (&a.error, a.status_code) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(code)) => Some(format!("HTTP {code}")),
        (None, None) => None,
    }
}
