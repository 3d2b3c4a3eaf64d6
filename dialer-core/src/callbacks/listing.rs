//! What the API and the CLI show of callbacks: an account's events by delivery status (newest
//! first, paginated by a cursor) and the attempts of one event. Never another account's.

use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::db::DbError;
use crate::domain::DeliveryStatus;

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub status: Option<DeliveryStatus>,
    /// 1..=1000; default 100.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

/// One event and where its delivery stands.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct EventDelivery {
    #[serde(skip)]
    #[diesel(sql_type = BigInt)]
    pub event_pk: i64,
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = BigInt)]
    pub batch_id: i64,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub call_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sequence: Option<i32>,
    #[diesel(sql_type = Text)]
    pub delivery_status: DeliveryStatus,
    #[diesel(sql_type = Integer)]
    pub delivery_attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    /// When the next try is due (pending events only).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventPage {
    pub events: Vec<EventDelivery>,
    pub next_cursor: Option<i64>,
}

const EVENT_SELECT: &str = "\
    SELECT e.id AS event_pk, e.event_id, e.event_type, b.batch_id, c.call_id, e.sequence, \
           e.delivery_status, e.delivery_attempts, e.occurred_at, \
           CASE WHEN e.delivery_status = 'pending' THEN e.next_attempt_at END AS next_attempt_at, \
           e.delivered_at, e.last_error \
    FROM call_events e \
    JOIN batches b ON b.id = e.batch_pk \
    LEFT JOIN calls c ON c.id = e.call_pk";

/// One event of this account and where its delivery stands; `None` if the account has no such
/// event (another account's id included).
pub async fn find_event(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    event_id: &str,
) -> Result<Option<EventDelivery>, DbError> {
    let found: Vec<EventDelivery> = diesel::sql_query(format!(
        "{EVENT_SELECT} WHERE e.account_id = $1 AND e.event_id = $2"
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(event_id)
    .load(conn)
    .await?;
    Ok(found.into_iter().next())
}

pub async fn list_events(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    filter: &EventFilter,
) -> Result<EventPage, DbError> {
    let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
    let mut events: Vec<EventDelivery> = diesel::sql_query(format!(
        "{EVENT_SELECT} \
         WHERE e.account_id = $1 \
           AND ($2::text IS NULL OR e.delivery_status = $2) \
           AND ($3::bigint IS NULL OR e.id < $3) \
         ORDER BY e.id DESC LIMIT $4"
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<Nullable<Text>, _>(filter.status)
    .bind::<Nullable<BigInt>, _>(filter.cursor)
    .bind::<BigInt, _>(limit + 1)
    .load(conn)
    .await?;
    let next_cursor = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| e.event_pk)
    } else {
        None
    };
    Ok(EventPage {
        events,
        next_cursor,
    })
}

/// One try of one event.
#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
pub struct DeliveryAttempt {
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Timestamptz)]
    pub attempted_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub status_code: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub latency_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub response_head: Option<String>,
}

/// The attempts of an event of this account, oldest first; `None` if the account has no such
/// event.
pub async fn event_attempts(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    event_id: &str,
) -> Result<Option<Vec<DeliveryAttempt>>, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Pk {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let found: Option<Pk> =
        diesel::sql_query("SELECT id FROM call_events WHERE account_id = $1 AND event_id = $2")
            .bind::<BigInt, _>(account_id)
            .bind::<Text, _>(event_id)
            .get_result(conn)
            .await
            .optional()?;
    let Some(pk) = found else {
        return Ok(None);
    };
    let attempts = diesel::sql_query(
        "SELECT attempt, attempted_at, url, status_code, error, latency_ms, response_head \
         FROM callback_deliveries WHERE event_pk = $1 ORDER BY attempt",
    )
    .bind::<BigInt, _>(pk.id)
    .load(conn)
    .await?;
    Ok(Some(attempts))
}
