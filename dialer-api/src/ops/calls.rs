//! One call as the API shows it: its attempts, outcome and every event with its delivery tries.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::value::RawValue;

use dialer_core::db::DbPool;
use dialer_core::event_body::rfc3339;
use dialer_core::schema::calls;

use crate::ops::error::{OpsError, OpsResult};

/// The call; the columns of `calls` take their SQL types from the schema.
#[derive(diesel::QueryableByName)]
#[diesel(table_name = calls)]
struct CallDetailRow {
    id: i64,
    call_id: uuid::Uuid,
    /// The client's batch id (`batches.batch_id`).
    #[diesel(sql_type = BigInt)]
    batch_id: i64,
    phone_raw: String,
    phone_e164: String,
    custom_data: Option<String>,
    status: String,
    disposition: Option<String>,
    attempts: i32,
    next_due_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    dispatched_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// One attempt of a call.
#[derive(diesel::QueryableByName, Serialize, utoipa::ToSchema)]
#[schema(as = CallAttempt)]
pub struct AttemptRow {
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = SqlUuid)]
    attempt_id: uuid::Uuid,
    /// The PBX the attempt went to.
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(required = true)]
    server_code: Option<String>,
    /// `originating`, `started`, `answered` or `ended`.
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(required = true)]
    disposition: Option<String>,
    /// The Q.850 hangup cause the PBX reported.
    #[diesel(sql_type = Nullable<Integer>)]
    #[schema(required = true)]
    hangup_cause: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(required = true)]
    error_message: Option<String>,
    /// When the attempt was originated.
    #[diesel(sql_type = Text)]
    #[schema(schema_with = crate::data_schema::time_required)]
    start_time: String,
    /// When its channel came to exist.
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    channel_time: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    answer_time: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    end_time: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Integer)]
    sequence: i32,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    delivery_status: String,
    #[diesel(sql_type = Integer)]
    delivery_attempts: i32,
    #[diesel(sql_type = Text)]
    body: String,
}

/// One try to deliver an event.
#[derive(diesel::QueryableByName, Serialize, utoipa::ToSchema)]
#[schema(as = CallEventDelivery)]
pub struct DeliveryRow {
    #[diesel(sql_type = BigInt)]
    #[serde(skip)]
    event_pk: i64,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Text)]
    #[schema(schema_with = crate::data_schema::time_required)]
    attempted_at: String,
    #[diesel(sql_type = Nullable<Integer>)]
    #[schema(required = true)]
    status_code: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(required = true)]
    error: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    #[schema(required = true)]
    latency_ms: Option<i32>,
}

/// One event of a call, its callback body and its delivery tries.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CallEventRecord)]
pub struct EventOut {
    event_id: String,
    #[schema(schema_with = crate::data_schema::event_type)]
    event_type: String,
    sequence: i32,
    #[schema(schema_with = crate::data_schema::time_required)]
    occurred_at: String,
    #[schema(schema_with = crate::data_schema::delivery_status)]
    delivery_status: String,
    delivery_attempts: i32,
    /// The exact body every try sends.
    #[schema(schema_with = call_event_ref)]
    body: Box<RawValue>,
    deliveries: Vec<DeliveryRow>,
}

fn call_event_ref() -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name("CallEvent")
}

/// One call: its attempts, outcome and callback deliveries.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallDetail {
    #[schema(schema_with = crate::data_schema::uuid)]
    pub call_id: uuid::Uuid,
    pub batch_id: i64,
    /// Exactly as submitted.
    pub phone_number: String,
    phone_number_e164: String,
    #[schema(schema_with = crate::data_schema::call_status)]
    pub call_status: String,
    #[schema(required = true)]
    pub disposition: Option<String>,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due (waiting for a retry or calling hours).
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    pub next_attempt_at: Option<String>,
    #[schema(schema_with = crate::data_schema::raw_custom_data, required = true)]
    pub custom_data: Option<Box<RawValue>>,
    #[schema(schema_with = crate::data_schema::time_required)]
    pub created_at: String,
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    pub dispatched_at: Option<String>,
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    pub finished_at: Option<String>,
    pub call_attempts: Vec<AttemptRow>,
    /// Every event of the call, in `sequence` order.
    pub events: Vec<EventOut>,
}

const TS: &str = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

fn ts(col: &str) -> String {
    TS.replace("%s", col)
}

/// The account's call with this `call_id`: attempts, outcome, callback deliveries. Any other id
/// (another account's, or no UUID at all) is "not found".
pub async fn find(pool: &DbPool, account_id: i64, call_id: &str) -> OpsResult<CallDetail> {
    let not_found = || OpsError::not_found(format!("call {} not found", call_id));
    let call_uuid: uuid::Uuid = call_id.parse().map_err(|_| not_found())?;
    let mut conn = pool.get().await?;
    let call: Option<CallDetailRow> = diesel::sql_query(
        "SELECT c.id, c.call_id, b.batch_id, c.phone_raw, c.phone_e164, c.custom_data, c.status, c.disposition,
                c.attempts, c.next_due_at, c.created_at, c.dispatched_at, c.finished_at
         FROM calls c JOIN batches b ON b.id = c.batch_pk
         WHERE c.call_id = $1 AND c.account_id = $2",
    )
    .bind::<SqlUuid, _>(call_uuid)
    .bind::<BigInt, _>(account_id)
    .load(&mut conn)
    .await?
    .into_iter()
    .next();
    let call = call.ok_or_else(not_found)?;
    let attempts: Vec<AttemptRow> = diesel::sql_query(format!(
        "SELECT a.attempt, a.id AS attempt_id, s.code AS server_code, a.state, a.disposition, a.hangup_cause,
                a.error_message, {} AS start_time, {} AS channel_time, {} AS answer_time, {} AS end_time
         FROM call_attempts a LEFT JOIN asterisk_servers s ON s.id = a.server_id
         WHERE a.call_pk = $1 ORDER BY a.attempt",
        ts("a.originated_at"),
        ts("a.started_at"),
        ts("a.answered_at"),
        ts("a.ended_at")
    ))
    .bind::<BigInt, _>(call.id)
    .load(&mut conn)
    .await?;
    let events: Vec<EventRow> = diesel::sql_query(
        "SELECT id, event_id, event_type, sequence, occurred_at, delivery_status, delivery_attempts, body
         FROM call_events WHERE call_pk = $1 ORDER BY sequence",
    )
    .bind::<BigInt, _>(call.id)
    .load(&mut conn)
    .await?;
    let event_pks: Vec<i64> = events.iter().map(|e| e.id).collect();
    let mut deliveries: Vec<DeliveryRow> = diesel::sql_query(format!(
        "SELECT event_pk, attempt, {} AS attempted_at, status_code, error, latency_ms
         FROM callback_deliveries WHERE event_pk = ANY($1) ORDER BY event_pk, attempt",
        ts("attempted_at")
    ))
    .bind::<diesel::sql_types::Array<BigInt>, _>(&event_pks)
    .load(&mut conn)
    .await?;
    let mut events_out = Vec::with_capacity(events.len());
    for e in events {
        let mine: Vec<DeliveryRow> = {
            let (m, rest): (Vec<_>, Vec<_>) =
                deliveries.into_iter().partition(|d| d.event_pk == e.id);
            deliveries = rest;
            m
        };
        events_out.push(EventOut {
            event_id: e.event_id,
            event_type: e.event_type,
            sequence: e.sequence,
            occurred_at: rfc3339(e.occurred_at),
            delivery_status: e.delivery_status,
            delivery_attempts: e.delivery_attempts,
            body: RawValue::from_string(e.body).map_err(OpsError::internal)?,
            deliveries: mine,
        });
    }
    let custom_data = match call.custom_data {
        Some(c) => Some(RawValue::from_string(c).map_err(OpsError::internal)?),
        None => None,
    };
    Ok(CallDetail {
        call_id: call.call_id,
        batch_id: call.batch_id,
        phone_number: call.phone_raw,
        phone_number_e164: call.phone_e164,
        call_status: call.status,
        disposition: call.disposition,
        attempts: call.attempts,
        next_attempt_at: call.next_due_at.map(rfc3339),
        custom_data,
        created_at: rfc3339(call.created_at),
        dispatched_at: call.dispatched_at.map(rfc3339),
        finished_at: call.finished_at.map(rfc3339),
        call_attempts: attempts,
        events: events_out,
    })
}
