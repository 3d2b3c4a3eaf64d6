use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::value::RawValue;

use dialer_core::event_body::rfc3339;

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::ClientAccount;
use crate::state::AppState;

#[derive(diesel::QueryableByName)]
struct CallDetailRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    call_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    batch_id: i64,
    #[diesel(sql_type = Text)]
    phone_raw: String,
    #[diesel(sql_type = Text)]
    phone_e164: String,
    #[diesel(sql_type = Nullable<Text>)]
    custom_data: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    disposition: Option<String>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    next_due_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    dispatched_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    finished_at: Option<DateTime<Utc>>,
}

/// One attempt of a call.
#[derive(diesel::QueryableByName, Serialize, utoipa::ToSchema)]
#[schema(as = CallAttempt)]
struct AttemptRow {
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
    #[schema(schema_with = crate::api_schema::time_required)]
    start_time: String,
    /// When its channel came to exist.
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(schema_with = crate::api_schema::time_or_null, required = true)]
    channel_time: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(schema_with = crate::api_schema::time_or_null, required = true)]
    answer_time: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    #[schema(schema_with = crate::api_schema::time_or_null, required = true)]
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
struct DeliveryRow {
    #[diesel(sql_type = BigInt)]
    #[serde(skip)]
    event_pk: i64,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Text)]
    #[schema(schema_with = crate::api_schema::time_required)]
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
struct EventOut {
    event_id: String,
    #[schema(schema_with = crate::api_schema::event_type)]
    event_type: String,
    sequence: i32,
    #[schema(schema_with = crate::api_schema::time_required)]
    occurred_at: String,
    #[schema(schema_with = crate::api_schema::delivery_status)]
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
pub struct CallResponse {
    #[schema(schema_with = crate::api_schema::success_status)]
    status: &'static str,
    #[schema(schema_with = crate::api_schema::uuid)]
    call_id: uuid::Uuid,
    batch_id: i64,
    /// Exactly as submitted.
    phone_number: String,
    phone_number_e164: String,
    #[schema(schema_with = crate::api_schema::call_status)]
    call_status: String,
    #[schema(required = true)]
    disposition: Option<String>,
    /// Attempts made so far.
    attempts: i32,
    /// When the next attempt is due (waiting for a retry or calling hours).
    #[schema(schema_with = crate::api_schema::time_or_null, required = true)]
    next_attempt_at: Option<String>,
    #[schema(schema_with = crate::api_schema::raw_custom_data, required = true)]
    custom_data: Option<Box<RawValue>>,
    #[schema(schema_with = crate::api_schema::time_required)]
    created_at: String,
    #[schema(schema_with = crate::api_schema::time_or_null, required = true)]
    dispatched_at: Option<String>,
    #[schema(schema_with = crate::api_schema::time_or_null, required = true)]
    finished_at: Option<String>,
    call_attempts: Vec<AttemptRow>,
    /// Every event of the call, in `sequence` order.
    events: Vec<EventOut>,
}

const TS: &str = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

fn ts(col: &str) -> String {
    TS.replace("%s", col)
}

/// One call: attempts, outcome, callback deliveries.
#[utoipa::path(
    get,
    path = "/api/v1/calls/{call_id}",
    tag = "calls",
    params(("call_id" = String, Path, format = Uuid, description = "the `call_id` of callbacks and batch status")),
    responses(
        (status = 200, description = "the call", body = CallResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no call of this account", body = ErrorResponse),
    ),
    security(("api_key" = []))
)]
pub async fn get_call(
    state: web::Data<AppState>,
    ClientAccount(account): ClientAccount,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let not_found = || ApiError::not_found(format!("call {} not found", path.as_str()));
    let call_id: uuid::Uuid = path.parse().map_err(|_| not_found())?;
    let mut conn = state.pool.get().await?;
    let call: Option<CallDetailRow> = diesel::sql_query(
        "SELECT c.id, c.call_id, b.batch_id, c.phone_raw, c.phone_e164, c.custom_data, c.status, c.disposition,
                c.attempts, c.next_due_at, c.created_at, c.dispatched_at, c.finished_at
         FROM calls c JOIN batches b ON b.id = c.batch_pk
         WHERE c.call_id = $1 AND c.account_id = $2",
    )
    .bind::<SqlUuid, _>(call_id)
    .bind::<BigInt, _>(account.id)
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
            body: RawValue::from_string(e.body).map_err(ApiError::internal)?,
            deliveries: mine,
        });
    }
    let custom_data = match call.custom_data {
        Some(c) => Some(RawValue::from_string(c).map_err(ApiError::internal)?),
        None => None,
    };
    Ok(HttpResponse::Ok().json(CallResponse {
        status: "success",
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
    }))
}
