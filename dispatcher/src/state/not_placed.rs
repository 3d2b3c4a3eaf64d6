//! Attempts that were never placed: the Originate never reached a running PBX (connection down,
//! the platform failing to send) or the PBX refused it for its own state (shutting down).
//! Nobody was dialed, so it was no attempt: its row goes, the call's attempt count goes back,
//! and the call is `scheduled` again until `due` (the due-call sweep then gives it its job
//! again), or until its batch's `expires_at` if that is sooner. No callback event is written
//! (none was for this attempt: `call_started` needs a channel). A call whose batch was cancelled
//! or has expired meanwhile ends now, undialed, as a claim would end it.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use dialer_core::domain::{AttemptState, BatchStatus, CallStatus, EventType};
use dialer_core::lifecycle::end_undialed;
use dialer_core::prepared::PrepareOnce;

use super::transition::{Applied, StateError};

/// Undoes the attempts (only those still `originating` of a call still `dialing`: a channel
/// seen meanwhile means it was placed after all) and parks their calls.
static PUT_BACK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH u AS (SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, due)), \
         gone AS ( \
           DELETE FROM call_attempts t USING u, calls c \
           WHERE t.id = u.id AND t.state = '{originating}' AND c.id = t.call_pk \
             AND c.status = '{dialing}' \
           RETURNING t.id, t.call_pk, u.due) \
         UPDATE calls c SET status = '{scheduled}', attempts = c.attempts - 1, \
                next_due_at = LEAST(gone.due, b.expires_at), \
                last_dialed_at = (SELECT max(p.originated_at) FROM call_attempts p \
                                  WHERE p.call_pk = c.id AND p.id <> gone.id), \
                updated_at = now() \
         FROM gone, batches b WHERE c.id = gone.call_pk AND b.id = c.batch_pk \
         RETURNING gone.id AS attempt_id, c.id AS call_pk, b.status AS batch_status, \
                   (b.expires_at IS NOT NULL AND b.expires_at <= $3) AS expired",
        originating = AttemptState::Originating,
        dialing = CallStatus::Dialing,
        scheduled = CallStatus::Scheduled,
    )
});

#[derive(QueryableByName)]
struct PutBack {
    #[diesel(sql_type = SqlUuid)]
    attempt_id: Uuid,
    #[diesel(sql_type = BigInt)]
    call_pk: i64,
    #[diesel(sql_type = Text)]
    batch_status: BatchStatus,
    #[diesel(sql_type = Bool)]
    expired: bool,
}

/// Puts back `(attempt, due)` pairs inside the caller's transaction; returns, by attempt, what
/// the calls ended now (cancelled or expired batches) did.
pub(super) async fn put_back(
    conn: &mut AsyncPgConnection,
    attempts: &[(Uuid, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, Applied)>, StateError> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.0).collect();
    let dues: Vec<DateTime<Utc>> = attempts.iter().map(|a| a.1).collect();
    let rows: Vec<PutBack> = diesel::sql_query(PUT_BACK.as_str())
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Timestamptz>, _>(&dues)
        .bind::<Timestamptz, _>(now)
        .prepared()
        .load(conn)
        .await?;
    let mut ended = Vec::new();
    for row in rows {
        let event_type = if row.batch_status == BatchStatus::Cancelled {
            EventType::CallCancelled
        } else if row.expired {
            EventType::CallExpired
        } else {
            continue;
        };
        if let Some(e) = end_undialed(conn, row.call_pk, event_type, None, now).await? {
            ended.push((row.attempt_id, Applied::from(e)));
        }
    }
    Ok(ended)
}
