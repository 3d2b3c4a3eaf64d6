//! Which dispatcher follows an attempt (`call_attempts.dispatcher_id`): released at a restart
//! under the same id, taken over when a dispatcher adopts an orphan.

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use dialer_core::domain::AttemptState;
use dialer_core::prepared::PrepareOnce;

use super::transition::StateError;

/// Unmarks the live attempts still carrying `dispatcher_id` (a previous run of this process):
/// they become orphans. Returns how many.
pub async fn release_attempts_of(
    conn: &mut AsyncPgConnection,
    dispatcher_id: &str,
) -> Result<usize, StateError> {
    let released = diesel::sql_query(
        "UPDATE call_attempts SET dispatcher_id = NULL \
         WHERE dispatcher_id = $1 AND ended_at IS NULL",
    )
    .bind::<Text, _>(dispatcher_id)
    .prepared()
    .execute(conn)
    .await?;
    Ok(released)
}

/// Marks an orphaned attempt as followed by `dispatcher_id`.
/// Takes over an orphaned attempt that was never confirmed for sending, so never dialed: made
/// this dispatcher's in the same statement that checks it, so the process that claimed it (only
/// stopped, perhaps) can no longer confirm it. Whether it was such an attempt.
pub async fn adopt_unsent(
    conn: &mut AsyncPgConnection,
    attempt: Uuid,
    dispatcher_id: &str,
) -> Result<bool, StateError> {
    let n = diesel::sql_query(format!(
        "UPDATE call_attempts SET dispatcher_id = $2 \
         WHERE id = $1 AND state = '{}' AND sent_at IS NULL",
        AttemptState::Originating
    ))
    .bind::<SqlUuid, _>(attempt)
    .bind::<Text, _>(dispatcher_id)
    .prepared()
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn adopt_attempt(
    conn: &mut AsyncPgConnection,
    attempt: Uuid,
    dispatcher_id: &str,
) -> Result<(), StateError> {
    diesel::sql_query("UPDATE call_attempts SET dispatcher_id = $2 WHERE id = $1")
        .bind::<SqlUuid, _>(attempt)
        .bind::<Text, _>(dispatcher_id)
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}
