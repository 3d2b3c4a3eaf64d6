//! The optional batch settings of a submission, validated whether or not the batch exists
//! (they are applied only when the batch is created).

use chrono::{DateTime, Utc};
use dialer_core::calling_hours::CallingHours;
use dialer_core::domain::Disposition;

use crate::api_error::{ApiError, ApiResult};
use crate::json_body::TopLevel;

#[derive(Debug, Default, Clone)]
pub struct BatchSettings {
    pub name: Option<String>,
    pub caller_id: Option<String>,
    pub max_attempts: Option<i32>,
    pub retry_delay_seconds: Option<i32>,
    pub retry_on: Option<Vec<String>>,
    pub calling_hours: Option<serde_json::Value>,
    pub priority: Option<i32>,
    pub expires_at: Option<DateTime<Utc>>,
    pub dispatch: Option<bool>,
}

pub fn parse(top: &TopLevel<'_>) -> ApiResult<BatchSettings> {
    let s = BatchSettings {
        name: top.get::<String>("batch_name", "a string")?,
        caller_id: top.get::<String>("caller_id", "a string")?,
        max_attempts: top.get::<i32>("max_attempts", "an integer from 1 to 20")?,
        retry_delay_seconds: top.get::<i32>("retry_delay_seconds", "a non-negative integer")?,
        retry_on: top.get::<Vec<String>>("retry_on", "a list of dispositions")?,
        calling_hours: top.get::<serde_json::Value>("calling_hours", "an object")?,
        priority: top.get::<i32>("priority", "an integer")?,
        expires_at: top.get::<DateTime<Utc>>("expires_at", "an RFC 3339 time")?,
        dispatch: top.get::<bool>("dispatch", "true or false")?,
    };
    if s.max_attempts.is_some_and(|n| !(1..=20).contains(&n)) {
        return Err(ApiError::invalid_request(
            "`max_attempts` must be an integer from 1 to 20",
        ));
    }
    if s.retry_delay_seconds.is_some_and(|d| d < 0) {
        return Err(ApiError::invalid_request(
            "`retry_delay_seconds` must be a non-negative integer",
        ));
    }
    if let Some(list) = &s.retry_on {
        for d in list {
            match d.parse::<Disposition>() {
                Ok(disp) if disp.is_retryable() => {}
                _ => {
                    return Err(ApiError::invalid_request(format!(
                        "`retry_on`: `{d}` is not a retryable disposition (busy, no_answer, rejected, congestion, unreachable, failed)"
                    )));
                }
            }
        }
    }
    if let Some(ch) = &s.calling_hours {
        CallingHours::from_json(ch).map_err(|m| ApiError::invalid_request(format!("`{m}`")))?;
    }
    if s.name
        .as_ref()
        .is_some_and(|n| n.len() > 200 || n.contains('\0'))
    {
        return Err(ApiError::invalid_request(
            "`batch_name` must be text of at most 200 characters",
        ));
    }
    if s.caller_id
        .as_ref()
        .is_some_and(|c| c.len() > 80 || c.contains(['\r', '\n', '\0']))
    {
        return Err(ApiError::invalid_request(
            "`caller_id` must be a single line of at most 80 characters",
        ));
    }
    Ok(s)
}
