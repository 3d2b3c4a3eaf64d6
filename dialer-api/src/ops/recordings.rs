//! Recordings: stored once per attempt from the PBX's upload (the row and the file together,
//! then `call_recording_ready` if the attempt has ended), served to their own account until
//! their retention passes, then deleted.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use dialer_core::lifecycle::{RecordingReady, recording_ready_if_due};

use crate::ops::{OpsError, OpsResult};
use crate::recording_store::RecordingStore;

/// How long recordings are kept when the account sets nothing (contract: 90 days).
pub const DEFAULT_RETENTION_DAYS: i32 = 90;

#[derive(diesel::QueryableByName)]
struct Target {
    #[diesel(sql_type = BigInt)]
    call_pk: i64,
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = Integer)]
    retention_days: i32,
}

/// What storing an upload did.
#[derive(Debug)]
pub struct Stored {
    pub ready: Option<RecordingReady>,
}

/// Stores an attempt's recording, once: the call is locked (the state writer's order: its
/// `call_recording_ready` follows the terminal event whichever comes second), the row claims the
/// attempt, the file is put, and only then is anything committed. A second upload for the
/// attempt is `recording_exists`; an attempt that does not exist (or does not record) is not
/// found.
pub async fn store(
    conn: &mut AsyncPgConnection,
    files: &RecordingStore,
    call_id: Uuid,
    attempt: i32,
    wav: Bytes,
    duration_seconds: i32,
) -> OpsResult<Stored> {
    conn.transaction::<_, OpsError, _>(async |conn| {
        let target: Vec<Target> = diesel::sql_query(format!(
            "SELECT c.id AS call_pk, c.account_id, \
                    COALESCE(f.recording_retention_days, {DEFAULT_RETENTION_DAYS}) AS retention_days \
             FROM calls c JOIN batches b ON b.id = c.batch_pk \
             JOIN call_attempts t ON t.call_pk = c.id AND t.attempt = $2 \
             LEFT JOIN account_call_flow f ON f.account_id = c.account_id \
             WHERE c.call_id = $1 AND b.record FOR UPDATE OF c"
        ))
        .bind::<SqlUuid, _>(call_id)
        .bind::<Integer, _>(attempt)
        .load(conn)
        .await?;
        let Some(target) = target.into_iter().next() else {
            return Err(OpsError::NotFound("no attempt that records at this URL".to_owned()));
        };
        let key = RecordingStore::key(target.account_id, call_id, attempt);
        let inserted = diesel::sql_query(
            "INSERT INTO recordings (call_pk, attempt, account_id, object_key, bytes, \
               duration_seconds, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7)) \
             ON CONFLICT (call_pk, attempt) DO NOTHING",
        )
        .bind::<BigInt, _>(target.call_pk)
        .bind::<Integer, _>(attempt)
        .bind::<BigInt, _>(target.account_id)
        .bind::<Text, _>(&key)
        .bind::<BigInt, _>(wav.len() as i64)
        .bind::<Integer, _>(duration_seconds)
        .bind::<Integer, _>(target.retention_days)
        .execute(conn)
        .await?;
        if inserted == 0 {
            return Err(OpsError::Conflict {
                code: "recording_exists",
                message: "this attempt's recording was already uploaded; an upload URL works once"
                    .to_owned(),
            });
        }
        files
            .put(&key, wav)
            .await
            .map_err(|e| OpsError::Unavailable(e.to_string()))?;
        let ready = recording_ready_if_due(conn, target.call_pk, attempt).await?;
        Ok(Stored { ready })
    })
    .await
}

#[derive(diesel::QueryableByName)]
struct Found {
    #[diesel(sql_type = Text)]
    object_key: String,
}

/// An attempt's recording for its own account, while it is kept; `None` otherwise (not
/// stored yet, past retention, another account's call).
pub async fn fetch(
    conn: &mut AsyncPgConnection,
    files: &RecordingStore,
    account_id: i64,
    call_id: Uuid,
    attempt: Option<i32>,
) -> OpsResult<Option<Bytes>> {
    // Without an attempt: the latest attempt's recording that is stored.
    let found: Vec<Found> = diesel::sql_query(
        "SELECT r.object_key FROM recordings r JOIN calls c ON c.id = r.call_pk \
         WHERE c.call_id = $1 AND ($2::int4 IS NULL OR r.attempt = $2) AND r.account_id = $3 \
           AND r.expires_at > now() \
         ORDER BY r.attempt DESC LIMIT 1",
    )
    .bind::<SqlUuid, _>(call_id)
    .bind::<Nullable<Integer>, _>(attempt)
    .bind::<BigInt, _>(account_id)
    .load(conn)
    .await?;
    let Some(found) = found.into_iter().next() else {
        return Ok(None);
    };
    files
        .get(&found.object_key)
        .await
        .map_err(|e| OpsError::Unavailable(e.to_string()))
}

#[derive(diesel::QueryableByName)]
struct Expired {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    object_key: String,
}

/// Deletes up to `limit` recordings past their retention, file first (a file whose row is
/// gone could never be found again; a row whose file is gone answers 404 as if expired).
/// Returns how many.
pub async fn delete_expired(
    conn: &mut AsyncPgConnection,
    files: &RecordingStore,
    now: DateTime<Utc>,
    limit: i64,
) -> OpsResult<usize> {
    let expired: Vec<Expired> = diesel::sql_query(
        "SELECT id, object_key FROM recordings WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    let mut deleted = 0;
    for r in expired {
        files
            .delete(&r.object_key)
            .await
            .map_err(|e| OpsError::Unavailable(e.to_string()))?;
        deleted += diesel::sql_query("DELETE FROM recordings WHERE id = $1")
            .bind::<BigInt, _>(r.id)
            .execute(conn)
            .await?;
    }
    Ok(deleted)
}
