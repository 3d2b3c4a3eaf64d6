//! Calls of an account across its batches (`GET /calls`): by number, by what their entry shows,
//! by submission time; newest first, keyset on the call key. Each entry is what batch-status
//! shows for the call (its latest event's callback fields, or a queued entry).

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::ops::call_listing::CallRow;
use crate::ops::error::OpsResult;

/// What a search asks for; `None` matches everything.
#[derive(Debug, Default, Clone)]
pub struct CallFilter {
    /// E.164.
    pub phone_e164: Option<String>,
    /// Entry `call_status` values (see `call_listing::entry_statuses`).
    pub statuses: Option<Vec<String>>,
    /// Submitted at or after.
    pub from: Option<DateTime<Utc>>,
    /// Submitted before.
    pub to: Option<DateTime<Utc>>,
}

/// A call found, with its batch's client id.
#[derive(QueryableByName)]
pub struct FoundCall {
    #[diesel(embed)]
    pub call: CallRow,
    #[diesel(sql_type = BigInt)]
    pub batch_id: i64,
}

/// Up to `limit` calls matching `filter` with a key below `before` (all when `None`), newest
/// first.
pub async fn page(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    filter: &CallFilter,
    before: Option<i64>,
    limit: i64,
) -> OpsResult<Vec<FoundCall>> {
    Ok(diesel::sql_query(
        "SELECT c.id, c.call_id, c.phone_raw, c.phone_e164, c.custom_data, c.status,
                c.attempts::bigint AS attempts, e.body AS event_body, b.batch_id
         FROM calls c
         JOIN batches b ON b.id = c.batch_pk
         LEFT JOIN call_events e ON e.call_pk = c.id AND e.sequence = c.event_seq
         WHERE c.account_id = $1 AND c.id < $2
           AND ($3::text IS NULL OR c.phone_e164 = $3)
           AND ($4::timestamptz IS NULL OR c.created_at >= $4)
           AND ($5::timestamptz IS NULL OR c.created_at < $5)
           AND ($6::text[] IS NULL OR coalesce(e.body::jsonb ->> 'call_status', 'queued') = ANY($6))
         ORDER BY c.id DESC LIMIT $7",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(before.unwrap_or(i64::MAX))
    .bind::<Nullable<Text>, _>(filter.phone_e164.as_deref())
    .bind::<Nullable<Timestamptz>, _>(filter.from)
    .bind::<Nullable<Timestamptz>, _>(filter.to)
    .bind::<Nullable<Array<Text>>, _>(filter.statuses.as_deref())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}
