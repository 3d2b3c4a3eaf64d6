//! The callback body of a call event (the contract's JSON), fixed when the event is written and
//! stored as text in `call_events.body`, so every delivery sends the same bytes.
//!
//! Rust writers serialize [`CallEventBody`]; set-based SQL writers (cancelling a whole batch)
//! use [`never_dialed_body_sql`], which produces the same compact text, key for key (a test
//! checks both against each other).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::{AnsweredBy, CallStatus, Disposition, EventType};

/// RFC 3339 UTC with whole seconds (`2024-01-01T10:00:07Z`), the contract's time format.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// [`rfc3339`] as a serde `serialize_with`.
pub fn serialize_rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

/// [`rfc3339`] of an optional time as a serde `serialize_with` (`null` when absent).
pub fn serialize_rfc3339_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// An attempt's `recording_url` (contract): the API's own address as clients reach it
/// (`DIALER_PUBLIC_URL`), without a trailing slash.
pub fn recording_url(public_url: &str, call_id: uuid::Uuid, attempt: i32) -> String {
    format!("{public_url}/api/v1/recordings/{call_id}/{attempt}")
}

/// A new event id: `evt_` and 32 hex digits.
pub fn new_event_id() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}

/// A call's stored `custom_data` as the exact JSON text an event body carries.
pub fn raw_custom_data(text: Option<&str>) -> Result<Option<Box<RawValue>>, serde_json::Error> {
    text.map(|t| RawValue::from_string(t.to_owned()))
        .transpose()
}

/// Fields in the contract's order.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallEventBody {
    pub event_id: String,
    pub event_type: EventType,
    pub accountcode: String,
    pub batch_id: i64,
    pub call_id: uuid::Uuid,
    /// Exactly as the client submitted it.
    pub phone_number: String,
    pub phone_number_e164: String,
    pub call_status: CallStatus,
    pub disposition: Option<Disposition>,
    pub duration: i64,
    pub start_time: Option<String>,
    pub answer_time: Option<String>,
    pub end_time: Option<String>,
    pub recording_url: Option<String>,
    /// The exact JSON text the client submitted.
    pub custom_data: Option<Box<RawValue>>,
    pub server_code: Option<String>,
    pub error_message: Option<String>,
    pub attempt: i32,
    pub will_retry: bool,
    pub sequence: i32,
    pub occurred_at: String,
    // After the answer (contract): null until known.
    pub answered_by: Option<AnsweredBy>,
    pub amd_cause: Option<String>,
    pub digits: Option<String>,
    pub opted_out: Option<bool>,
    pub recording_duration: Option<i32>,
}

/// What the PBX learnt once an attempt was answered, as its events carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerFacts {
    pub answered_by: Option<AnsweredBy>,
    pub amd_cause: Option<String>,
    pub digits: Option<String>,
    pub opted_out: Option<bool>,
    pub recording_duration: Option<i32>,
}

/// The `attempt` of the terminal event of a call ended before its next attempt (never dialed,
/// or waiting for a retry): the number that attempt would have had, so each attempt number has
/// exactly one terminal event (the attempts made so far already have theirs).
pub const fn undialed_attempt(attempts_made: i32) -> i32 {
    attempts_made + 1
}

/// SQL expression building the body of an event for a call that was never dialed
/// (`call_cancelled`, `call_skipped`, `call_expired`). Expects, in scope: `event_id`, `call_id`,
/// `phone_raw`, `phone_e164`, `custom_data` (text), `attempts`, `event_seq` as columns, and the
/// expressions (bind parameters or columns) named by `accountcode_param` (text) and
/// `batch_id_param` (bigint). `attempts` is the call's count of attempts made before this end:
/// the event carries the number of the attempt that will not happen (see [`undialed_attempt`]).
pub fn never_dialed_body_sql(
    event_type: EventType,
    disposition: Option<Disposition>,
    accountcode_param: &str,
    batch_id_param: &str,
) -> String {
    let status = event_type
        .call_status()
        .map(CallStatus::as_str)
        .unwrap_or("");
    let disposition = match disposition {
        Some(d) => format!("\"{}\"", d.as_str()),
        None => "null".to_owned(),
    };
    format!(
        "'{{\"event_id\":' || to_json(event_id)::text \
         || ',\"event_type\":\"{event_type}\",\"accountcode\":' || to_json({accountcode_param}::text)::text \
         || ',\"batch_id\":' || ({batch_id_param}::bigint)::text \
         || ',\"call_id\":\"' || call_id::text || '\"' \
         || ',\"phone_number\":' || to_json(phone_raw)::text \
         || ',\"phone_number_e164\":' || to_json(phone_e164)::text \
         || ',\"call_status\":\"{status}\",\"disposition\":{disposition},\"duration\":0\
,\"start_time\":null,\"answer_time\":null,\"end_time\":null,\"recording_url\":null,\"custom_data\":' \
         || coalesce(custom_data, 'null') \
         || ',\"server_code\":null,\"error_message\":null,\"attempt\":' || (attempts + 1)::text \
         || ',\"will_retry\":false,\"sequence\":' || event_seq::text \
         || ',\"occurred_at\":\"' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         || '\",\"answered_by\":null,\"amd_cause\":null,\"digits\":null,\"opted_out\":null,\"recording_duration\":null}}'"
    )
}
