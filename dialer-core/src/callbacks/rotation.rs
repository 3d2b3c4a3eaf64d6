//! Callback secret rotation: a new secret signs from now on; the old one keeps signing beside
//! it (and alone in `X-Signature`) until the grace period ends, so clients can switch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::CallbackError;
use crate::db::DbError;

/// The contract's default grace period.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The new secret (to show once) and when the old one stops signing (`None`: at once).
pub struct RotatedSecret {
    pub secret: String,
    pub previous_valid_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("previous_valid_until", &self.previous_valid_until)
            .finish_non_exhaustive()
    }
}

/// Rotates the account's secret. A second rotation within a grace period drops the oldest
/// secret: at most two sign at once.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    grace: Duration,
) -> Result<Option<RotatedSecret>, CallbackError> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        until: Option<DateTime<Utc>>,
    }
    let secret = crate::credentials::generate_callback_secret()?;
    let row: Option<Row> = diesel::sql_query(
        "UPDATE accounts SET \
             callback_secret_previous = CASE WHEN $3 > 0 THEN callback_secret END, \
             callback_secret_previous_until = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END, \
             callback_secret = $2, updated_at = now() \
         WHERE id = $1 RETURNING callback_secret_previous_until AS until",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(&secret)
    .bind::<Double, _>(grace.as_secs_f64())
    .get_result(conn)
    .await
    .optional()
    .map_err(DbError::from)?;
    Ok(row.map(|r| RotatedSecret {
        secret,
        previous_valid_until: r.until,
    }))
}
