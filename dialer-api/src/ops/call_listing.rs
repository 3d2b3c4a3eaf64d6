//! The calls of a batch as batch-status shows them: each call with the callback fields of its
//! latest event (verbatim), or a `queued` entry before any event; keyset pagination on the call
//! key, so pages stay fast and a CSV export streams a million rows in chunks.

use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::value::RawValue;

use dialer_core::domain::{CallStatus, EventType};
use dialer_core::schema::calls;

use crate::ops::error::{OpsError, OpsResult};

/// A call of the page; the columns of `calls` take their SQL types from the schema.
#[derive(diesel::QueryableByName)]
#[diesel(table_name = calls)]
pub struct CallRow {
    pub id: i64,
    pub call_id: uuid::Uuid,
    pub phone_raw: String,
    pub phone_e164: String,
    pub custom_data: Option<String>,
    pub status: CallStatus,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub event_body: Option<String>,
}

/// A call before its first event, with the keys of a callback body.
#[derive(Serialize, Default)]
struct QueuedEntry<'a> {
    event_id: Option<&'a str>,
    event_type: Option<&'a str>,
    accountcode: &'a str,
    batch_id: i64,
    call_id: uuid::Uuid,
    phone_number: &'a str,
    phone_number_e164: &'a str,
    call_status: &'a str,
    disposition: Option<&'a str>,
    duration: i64,
    start_time: Option<&'a str>,
    answer_time: Option<&'a str>,
    end_time: Option<&'a str>,
    recording_url: Option<&'a str>,
    custom_data: Option<&'a RawValue>,
    server_code: Option<&'a str>,
    error_message: Option<&'a str>,
    attempt: i64,
    will_retry: bool,
    sequence: i64,
    occurred_at: Option<&'a str>,
    answered_by: Option<&'a str>,
    amd_cause: Option<&'a str>,
    digits: Option<&'a str>,
    opted_out: Option<bool>,
    recording_duration: Option<i64>,
}

impl CallRow {
    /// The JSON of this call's entry: its latest event body as stored, or a queued entry.
    pub fn entry_json(&self, accountcode: &str, batch_id: i64) -> OpsResult<Box<RawValue>> {
        if let Some(body) = &self.event_body {
            return RawValue::from_string(body.clone()).map_err(OpsError::internal);
        }
        let custom = match &self.custom_data {
            Some(c) => Some(RawValue::from_string(c.clone()).map_err(OpsError::internal)?),
            None => None,
        };
        let entry = QueuedEntry {
            accountcode,
            batch_id,
            call_id: self.call_id,
            phone_number: &self.phone_raw,
            phone_number_e164: &self.phone_e164,
            call_status: CallStatus::Queued.as_str(),
            custom_data: custom.as_deref(),
            attempt: self.attempts,
            // No event yet: every other key is null, zero or false.
            ..QueuedEntry::default()
        };
        serde_json::value::to_raw_value(&entry).map_err(OpsError::internal)
    }
}

/// The `call_status` values an entry can show: `queued` before any event, else its latest
/// event's (a call waiting for a retry shows the last attempt's outcome, e.g. `busy`).
pub fn entry_statuses() -> Vec<CallStatus> {
    std::iter::once(CallStatus::Queued)
        .chain(EventType::ALL.iter().filter_map(|t| t.call_status()))
        .collect()
}

/// `?status=`: the `call_status` values entries show (their latest event's, or `queued` before
/// any), never the internal states behind `counts`, so a filter matches what a client reads.
pub fn parse_statuses(raw: Option<&str>) -> OpsResult<Option<Vec<String>>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let shown = entry_statuses();
    let mut out = Vec::new();
    for s in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match s.parse::<CallStatus>() {
            Ok(status) if shown.contains(&status) => out.push(status.as_str().to_owned()),
            _ => {
                let names: Vec<&str> = shown.iter().map(|s| s.as_str()).collect();
                return Err(OpsError::invalid(format!(
                    "`status`: `{}` is not a call_status entries show ({})",
                    dialer_core::client_text::quoted(s),
                    names.join(", ")
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(OpsError::invalid("`status` is empty"));
    }
    Ok(Some(out))
}

/// Up to `limit` calls of the batch after call key `after`, optionally only those whose entry
/// shows one of `statuses` (see [`entry_statuses`]).
pub async fn page(
    conn: &mut AsyncPgConnection,
    batch_pk: i64,
    statuses: Option<&[String]>,
    after: i64,
    limit: i64,
) -> OpsResult<Vec<CallRow>> {
    Ok(diesel::sql_query(
        "SELECT c.id, c.call_id, c.phone_raw, c.phone_e164, c.custom_data, c.status,
                c.attempts::bigint AS attempts, e.body AS event_body
         FROM calls c
         LEFT JOIN call_events e ON e.call_pk = c.id AND e.sequence = c.event_seq
         WHERE c.batch_pk = $1 AND c.id > $2
           AND ($3::text[] IS NULL OR coalesce(e.body::jsonb ->> 'call_status', 'queued') = ANY($3))
         ORDER BY c.id LIMIT $4",
    )
    .bind::<BigInt, _>(batch_pk)
    .bind::<BigInt, _>(after)
    .bind::<Nullable<Array<Text>>, _>(statuses)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

pub const CSV_HEADER: &str = "call_id,phone_number,phone_number_e164,call_status,disposition,attempt,duration,start_time,answer_time,end_time,server_code,error_message,event_type,sequence,custom_data\n";

/// One CSV line for a call, from the same entry JSON the API shows.
pub fn csv_line(entry: &RawValue, out: &mut String) {
    let v: serde_json::Value = serde_json::from_str(entry.get()).unwrap_or_default();
    let text = |k: &str| match v.get(k) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let cols = [
        "call_id",
        "phone_number",
        "phone_number_e164",
        "call_status",
        "disposition",
        "attempt",
        "duration",
        "start_time",
        "answer_time",
        "end_time",
        "server_code",
        "error_message",
        "event_type",
        "sequence",
        "custom_data",
    ];
    for (i, k) in cols.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::csv_download::cell(out, &text(k));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut out = String::new();
        let entry = RawValue::from_string(
            r#"{"call_id":"c","phone_number":"98,76","call_status":"queued","custom_data":{"a":"x\"y"},"attempt":0}"#.into(),
        )
        .expect("json");
        csv_line(&entry, &mut out);
        assert_eq!(
            out,
            "c,\"98,76\",,queued,,0,,,,,,,,,\"{\"\"a\"\":\"\"x\\\"\"y\"\"}\"\n"
        );
        assert_eq!(CSV_HEADER.split(',').count(), 15);
    }

    #[test]
    fn csv_cells_that_start_a_formula_are_escaped() {
        let mut out = String::new();
        let entry = RawValue::from_string(
            r#"{"call_id":"=HYPERLINK(\"http://x\")","phone_number":"+1 (555) 0100","phone_number_e164":"+15550100","error_message":"@SUM(A1)","server_code":"-2+3","disposition":"\tx","event_type":"-5","sequence":3}"#.into(),
        )
        .expect("json");
        csv_line(&entry, &mut out);
        assert_eq!(
            out,
            "\"'=HYPERLINK(\"\"http://x\"\")\",\"'+1 (555) 0100\",+15550100,,\"'\tx\",,,,,,\"'-2+3\",\"'@SUM(A1)\",-5,3,\n"
        );
    }
}
