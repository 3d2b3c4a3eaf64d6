//! `call_recording_ready`: written once an attempt both has its recording stored and has ended,
//! whichever of the two comes second (the upload can arrive before the hang-up is processed).
//! Both callers (the API storing an upload, the dispatcher ending an attempt of a batch that
//! records) hold the call's row lock, so exactly one of them sees both and writes it, right
//! after the attempt's terminal event in the call's `sequence`.

use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::completion::LifecycleError;
use crate::domain::{DeliveryStatus, EventType};
use crate::event_body::{CallEventBody, new_event_id, rfc3339};

/// The attempt's terminal event, its recording, and no `call_recording_ready` yet; built once
/// from the event names.
static DUE: LazyLock<String> = LazyLock::new(|| {
    let terminal = EventType::ALL
        .iter()
        .filter(|e| e.is_terminal() && e.call_status().is_some())
        .map(|e| format!("'{e}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT e.body AS terminal_body, r.duration_seconds, c.event_seq, c.account_id, c.batch_pk \
         FROM calls c \
         JOIN recordings r ON r.call_pk = c.id AND r.attempt = $2 \
         JOIN LATERAL (SELECT body FROM call_events \
                       WHERE call_pk = c.id AND event_type IN ({terminal}) \
                         AND (body::jsonb ->> 'attempt')::int = $2 \
                       ORDER BY sequence DESC LIMIT 1) e ON true \
         WHERE c.id = $1 AND NOT EXISTS ( \
           SELECT 1 FROM call_events WHERE call_pk = c.id AND event_type = '{ready}' \
             AND (body::jsonb ->> 'attempt')::int = $2)",
        ready = EventType::CallRecordingReady,
    )
});

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Text)]
    terminal_body: String,
    #[diesel(sql_type = Integer)]
    duration_seconds: i32,
    #[diesel(sql_type = Integer)]
    event_seq: i32,
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = BigInt)]
    batch_pk: i64,
}

#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = Text)]
    delivery_status: DeliveryStatus,
}

/// What writing it did: the event entered the delivery queue (the callback worker is to be
/// prompted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingReady {
    pub batch_pk: i64,
    pub queued: bool,
}

/// Writes the attempt's `call_recording_ready` if its recording is stored, its terminal event
/// written, and no such event exists yet; `None` otherwise. The caller holds the call's row
/// lock, in its transaction.
pub async fn recording_ready_if_due(
    conn: &mut AsyncPgConnection,
    call_pk: i64,
    attempt: i32,
) -> Result<Option<RecordingReady>, LifecycleError> {
    let due: Vec<Due> = diesel::sql_query(DUE.as_str())
        .bind::<BigInt, _>(call_pk)
        .bind::<Integer, _>(attempt)
        .load(conn)
        .await?;
    let Some(due) = due.into_iter().next() else {
        return Ok(None);
    };
    // The terminal event's body, as the contract wants it: same call status, disposition,
    // times and facts, now with the recording's length.
    let mut body: CallEventBody = serde_json::from_str(&due.terminal_body)?;
    let at = chrono::Utc::now();
    let sequence = due.event_seq + 1;
    body.event_id = new_event_id();
    body.event_type = EventType::CallRecordingReady;
    body.sequence = sequence;
    body.occurred_at = rfc3339(at);
    body.recording_duration = Some(due.duration_seconds);
    let text = serde_json::to_string(&body)?;
    diesel::sql_query("UPDATE calls SET event_seq = $2, updated_at = now() WHERE id = $1")
        .bind::<BigInt, _>(call_pk)
        .bind::<Integer, _>(sequence)
        .execute(conn)
        .await?;
    let written: Written = diesel::sql_query(
        "INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, \
           event_type, body, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         RETURNING delivery_status",
    )
    .bind::<Text, _>(&body.event_id)
    .bind::<BigInt, _>(due.account_id)
    .bind::<BigInt, _>(due.batch_pk)
    .bind::<BigInt, _>(call_pk)
    .bind::<Integer, _>(sequence)
    .bind::<Text, _>(EventType::CallRecordingReady)
    .bind::<Text, _>(&text)
    .bind::<Timestamptz, _>(at)
    .get_result(conn)
    .await?;
    Ok(Some(RecordingReady {
        batch_pk: due.batch_pk,
        queued: written.delivery_status == DeliveryStatus::Pending,
    }))
}
