//! Redelivery: events of an account go back to pending, due now, and run the retry schedule
//! from its start (their attempt numbers keep growing, so every earlier try stays on record).

use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::DbError;
use crate::domain::DeliveryStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelection {
    /// Every failed event of the account.
    AllFailed,
    /// These events of the account, whether failed, skipped or already delivered (a client
    /// that lost one asks again); pending ones are left alone. Unknown ids are ignored.
    EventIds(Vec<String>),
}

/// Resets the chosen events and returns their ids.
pub async fn redeliver(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    selection: &ReplaySelection,
) -> Result<Vec<String>, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = Text)]
        event_id: String,
    }
    let (statuses, ids): (&[DeliveryStatus], Option<&[String]>) = match selection {
        ReplaySelection::AllFailed => (&[DeliveryStatus::Failed], None),
        ReplaySelection::EventIds(ids) => (
            &[
                DeliveryStatus::Failed,
                DeliveryStatus::Skipped,
                DeliveryStatus::Delivered,
            ],
            Some(ids),
        ),
    };
    let rows: Vec<Id> = diesel::sql_query(
        "WITH chosen AS ( \
             SELECT id, delivery_attempts FROM call_events \
             WHERE account_id = $1 AND delivery_status = ANY($2) \
               AND ($3::text[] IS NULL OR event_id = ANY($3)) \
             FOR UPDATE \
         ), replays AS ( \
             INSERT INTO callback_replays (event_pk, attempts_before) \
             SELECT id, delivery_attempts FROM chosen \
             ON CONFLICT (event_pk) DO UPDATE SET attempts_before = EXCLUDED.attempts_before, \
                 replays = callback_replays.replays + 1, replayed_at = now() \
         ) \
         UPDATE call_events e SET delivery_status = 'pending', next_attempt_at = now(), \
             delivered_at = NULL \
         FROM chosen WHERE e.id = chosen.id \
         RETURNING e.event_id",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Array<Text>, _>(statuses)
    .bind::<diesel::sql_types::Nullable<Array<Text>>, _>(ids)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.event_id).collect())
}
