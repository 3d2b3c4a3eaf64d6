//! Calls that end without being dialed (`call_skipped`, `call_expired`, `call_cancelled` when a
//! claim finds them so): the call's final state and its event, then the batch's completion.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::completion::{BatchRef, LifecycleError, complete_batch_if_done};
use crate::domain::{CallStatus, Disposition, EventType};
use crate::event_body::{CallEventBody, new_event_id, raw_custom_data, rfc3339, undialed_attempt};
use crate::prepared::PrepareOnce;

/// What ending an undialed call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedUndialed {
    pub batch_pk: i64,
    pub event_type: EventType,
    /// It was the batch's last call to finish (its `batch_completed` is written).
    pub batch_completed: bool,
}

/// The call, what its event body needs, read under lock.
#[derive(QueryableByName)]
struct UndialedRow {
    #[diesel(sql_type = SqlUuid)]
    call_id: Uuid,
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = Text)]
    accountcode: String,
    #[diesel(sql_type = BigInt)]
    batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    batch_id: i64,
    #[diesel(sql_type = Text)]
    phone_raw: String,
    #[diesel(sql_type = Text)]
    phone_e164: String,
    #[diesel(sql_type = Nullable<Text>)]
    custom_data: Option<String>,
    #[diesel(sql_type = Integer)]
    event_seq: i32,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Bool)]
    batch_events: bool,
}

/// Ends a call that was never dialed with `event_type`, inside the caller's transaction (the
/// claim's): locks the call, writes its final state and its event, then completes its batch if
/// it was the last call. `None` when the call is gone.
pub async fn end_undialed(
    conn: &mut AsyncPgConnection,
    call_pk: i64,
    event_type: EventType,
    disposition: Option<Disposition>,
    at: DateTime<Utc>,
) -> Result<Option<EndedUndialed>, LifecycleError> {
    let rows: Vec<UndialedRow> = diesel::sql_query(
        "SELECT c.call_id, c.account_id, a.accountcode, c.batch_pk, b.batch_id, c.phone_raw, \
                c.phone_e164, c.custom_data, c.event_seq, c.attempts, \
                a.callback_batch_events AS batch_events \
         FROM calls c JOIN batches b ON b.id = c.batch_pk \
         JOIN accounts a ON a.id = c.account_id WHERE c.id = $1 FOR UPDATE OF c",
    )
    .bind::<BigInt, _>(call_pk)
    .prepared()
    .load(conn)
    .await?;
    let Some(call) = rows.into_iter().next() else {
        return Ok(None);
    };
    let status = event_type.call_status().unwrap_or(CallStatus::Failed);
    let sequence = call.event_seq + 1;
    let custom_data = raw_custom_data(call.custom_data.as_deref())?;
    let event_id = new_event_id();
    let body = CallEventBody {
        event_id: event_id.clone(),
        event_type,
        accountcode: call.accountcode.clone(),
        batch_id: call.batch_id,
        call_id: call.call_id,
        phone_number: call.phone_raw.clone(),
        phone_number_e164: call.phone_e164.clone(),
        call_status: status,
        disposition,
        duration: 0,
        start_time: None,
        answer_time: None,
        end_time: None,
        recording_url: None,
        custom_data,
        server_code: None,
        error_message: None,
        attempt: undialed_attempt(call.attempts),
        will_retry: false,
        sequence,
        occurred_at: rfc3339(at),
        answered_by: None,
        amd_cause: None,
        digits: None,
        opted_out: None,
        recording_duration: None,
    };
    let body = serde_json::to_string(&body)?;
    // Sent together (pipelined), run in this order.
    let shared: &AsyncPgConnection = conn;
    futures_util::future::try_join(
        diesel::sql_query(
            "UPDATE calls SET event_seq = $2, status = $3, \
               disposition = COALESCE($4, disposition), next_due_at = NULL, updated_at = now(), \
               finished_at = CASE WHEN $5 THEN now() ELSE finished_at END \
             WHERE id = $1",
        )
        .bind::<BigInt, _>(call_pk)
        .bind::<Integer, _>(sequence)
        .bind::<Text, _>(status)
        .bind::<Nullable<Text>, _>(disposition)
        .bind::<Bool, _>(status.is_final())
        .prepared()
        .execute(&mut &*shared),
        diesel::sql_query(
            "INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, \
               event_type, body, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind::<Text, _>(&event_id)
        .bind::<BigInt, _>(call.account_id)
        .bind::<BigInt, _>(call.batch_pk)
        .bind::<BigInt, _>(call_pk)
        .bind::<Integer, _>(sequence)
        .bind::<Text, _>(event_type)
        .bind::<Text, _>(&body)
        .bind::<Timestamptz, _>(at)
        .prepared()
        .execute(&mut &*shared),
    )
    .await?;
    let batch = BatchRef {
        batch_pk: call.batch_pk,
        account_id: call.account_id,
        accountcode: &call.accountcode,
        batch_id: call.batch_id,
        batch_events: call.batch_events,
    };
    let batch_completed = complete_batch_if_done(conn, &batch).await?;
    Ok(Some(EndedUndialed {
        batch_pk: call.batch_pk,
        event_type,
        batch_completed,
    }))
}
