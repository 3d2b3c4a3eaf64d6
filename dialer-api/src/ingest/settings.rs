//! The optional batch settings of a submission, validated whether or not the batch exists
//! (they are applied only when the batch is created).

use chrono::{DateTime, SubsecRound, Utc};
use dialer_core::call_flow::{FlowOverrides, Gather};
use dialer_core::calling_hours::CallingHours;
use dialer_core::domain::{AmdPolicy, Disposition};
use dialer_core::models::Batch;

use crate::api_error::{ApiError, ApiResult};
use crate::json_body::TopLevel;

/// The settings' field names, as the contract spells them.
pub const FIELDS: [&str; 14] = [
    "batch_name",
    "caller_id",
    "max_attempts",
    "retry_delay_seconds",
    "retry_on",
    "calling_hours",
    "priority",
    "expires_at",
    "dispatch",
    "amd",
    "message_prompt",
    "voicemail_prompt",
    "gather",
    "record",
];

/// Settings as they are stored: `retry_on` without repeats, `calling_hours` in its normalised
/// form (nothing else of the client's object is kept).
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
    /// After the answer (each defaults to the account's `account_call_flow`).
    pub amd: Option<AmdPolicy>,
    pub message_prompt: Option<String>,
    pub voicemail_prompt: Option<String>,
    pub gather: Option<Gather>,
    pub record: Option<bool>,
}

/// A prompt's id as the client names it (`prm_` and letters or digits); whether the account
/// has it is checked when the batch is stored.
fn prompt_id(top: &TopLevel<'_>, field: &str) -> ApiResult<Option<String>> {
    let id = top.get::<String>(field, "a `prompt_id` such as `prm_...`")?;
    if let Some(id) = &id
        && !dialer_core::call_flow::is_prompt_id(id)
    {
        return Err(ApiError::invalid_request(format!(
            "`{field}` must be a `prompt_id` such as `prm_...`"
        )));
    }
    Ok(id)
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
        // PostgreSQL keeps microseconds: rounded here as it would round them, so the value
        // compared on a later post is the value stored.
        expires_at: top
            .get::<DateTime<Utc>>("expires_at", "an RFC 3339 time")?
            .map(|t| t.round_subsecs(6)),
        dispatch: top.get::<bool>("dispatch", "true or false")?,
        amd: top.get::<AmdPolicy>(
            "amd",
            "one of `off`, `detect`, `hangup_machine`, `voicemail`",
        )?,
        message_prompt: prompt_id(top, "message_prompt")?,
        voicemail_prompt: prompt_id(top, "voicemail_prompt")?,
        gather: top
            .get::<serde_json::Value>("gather", "an object")?
            .map(|g| Gather::parse(&g).map_err(ApiError::invalid_request))
            .transpose()?,
        record: top.get::<bool>("record", "true or false")?,
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
    let mut s = s;
    if let Some(list) = &s.retry_on {
        let mut kept: Vec<String> = Vec::with_capacity(list.len());
        for d in list {
            match d.parse::<Disposition>() {
                Ok(disp) if disp.is_retryable() => {
                    if !kept.iter().any(|k| k == disp.as_str()) {
                        kept.push(disp.as_str().to_owned());
                    }
                }
                _ => {
                    return Err(ApiError::invalid_request(format!(
                        "`retry_on`: `{}` is not a retryable disposition (busy, no_answer, rejected, congestion, unreachable, failed)",
                        dialer_core::client_text::quoted(d)
                    )));
                }
            }
        }
        s.retry_on = Some(kept);
    }
    if let Some(ch) = &s.calling_hours {
        let hours =
            CallingHours::from_json(ch).map_err(|m| ApiError::invalid_request(format!("`{m}`")))?;
        s.calling_hours = Some(hours.to_json());
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

impl BatchSettings {
    /// The flow settings given, each to go over the account's default.
    pub fn flow_overrides(&self) -> FlowOverrides {
        FlowOverrides {
            amd: self.amd,
            message_prompt: self.message_prompt.clone(),
            voicemail_prompt: self.voicemail_prompt.clone(),
            gather: self.gather.clone(),
            record: self.record,
        }
    }

    /// The first setting of this request that differs from what `batch` was created with (a
    /// setting left out differs from nothing).
    pub fn conflict_with(&self, b: &Batch) -> Option<&'static str> {
        let differs = |given: bool, field| given.then_some(field);
        let set = |v: &Option<Vec<String>>| {
            let mut v = v.clone().unwrap_or_default();
            v.sort_unstable();
            v
        };
        let hours = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|h| CallingHours::from_json(h).map(|h| h.to_json()).ok())
        };
        None.or(differs(
            self.name.is_some() && self.name != b.name,
            "batch_name",
        ))
        .or(differs(
            self.caller_id.is_some() && self.caller_id != b.caller_id,
            "caller_id",
        ))
        .or(differs(
            self.max_attempts.is_some() && self.max_attempts != b.max_attempts,
            "max_attempts",
        ))
        .or(differs(
            self.retry_delay_seconds.is_some() && self.retry_delay_seconds != b.retry_delay_seconds,
            "retry_delay_seconds",
        ))
        .or(differs(
            self.retry_on.is_some()
                && (b.retry_on.is_none() || set(&self.retry_on) != set(&b.retry_on)),
            "retry_on",
        ))
        .or(differs(
            self.calling_hours.is_some() && hours(&self.calling_hours) != hours(&b.calling_hours),
            "calling_hours",
        ))
        .or(differs(
            self.priority.is_some_and(|p| p != b.priority),
            "priority",
        ))
        .or(differs(
            // Rounded to microseconds at parsing, as PostgreSQL stored it.
            self.expires_at.is_some() && self.expires_at != b.expires_at,
            "expires_at",
        ))
        .or(differs(
            self.dispatch.is_some_and(|d| d != b.auto_dispatch),
            "dispatch",
        ))
        .or(differs(self.amd.is_some_and(|a| a != b.amd), "amd"))
        .or(differs(
            self.message_prompt.is_some() && self.message_prompt != b.message_prompt,
            "message_prompt",
        ))
        .or(differs(
            self.voicemail_prompt.is_some() && self.voicemail_prompt != b.voicemail_prompt,
            "voicemail_prompt",
        ))
        .or(differs(
            self.gather.is_some() && self.gather != b.call_flow().gather,
            "gather",
        ))
        .or(differs(
            self.record.is_some_and(|r| r != b.record),
            "record",
        ))
    }
}
