//! Rows of the tables that more than one service reads as a whole.

use chrono::{DateTime, Utc};
use diesel::prelude::{Insertable, Queryable, QueryableByName, Selectable};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::domain::BatchStatus;
use crate::event_body::rfc3339;
use crate::schema::{accounts, asterisk_servers, batches};

/// An account with every setting. Its `Debug` leaves the secrets out.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = accounts, check_for_backend(diesel::pg::Pg))]
pub struct Account {
    pub id: i64,
    pub accountcode: String,
    pub name: String,
    pub status: String,
    pub default_country: String,
    pub timezone: String,
    pub calling_hours: Option<serde_json::Value>,
    pub caller_id: Option<String>,
    pub dial_context: String,
    pub dial_exten: String,
    pub ring_timeout_seconds: i32,
    pub max_attempts: i32,
    pub retry_delay_seconds: i32,
    pub retry_on: Vec<String>,
    pub max_call_seconds: i32,
    pub allowed_countries: Vec<String>,
    pub allowed_prefixes: Vec<String>,
    pub redial_window_hours: i32,
    pub max_rows_per_request: i32,
    pub max_queued_calls: i64,
    pub max_calls_per_day: i64,
    pub calls_per_second: i32,
    pub max_concurrent_calls: i32,
    pub api_requests_per_second: i32,
    pub callback_url: Option<String>,
    pub callback_secret: String,
    pub callback_secret_previous: Option<String>,
    pub callback_secret_previous_until: Option<DateTime<Utc>>,
    pub callback_batch_events: bool,
    pub callback_ca_cert: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A `Debug` that shows only the named fields: the others may be secrets.
macro_rules! debug_only {
    ($ty:ident: $($field:ident),+) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))+
                    .finish_non_exhaustive()
            }
        }
    };
}

debug_only!(Account: id, accountcode, status);

/// The settings an account shows to its own key (`GET /account`) and to operators: never its
/// secrets. Serialized straight from the account, in the contract's field order, with the limits
/// grouped under `limits`.
#[derive(Debug, Clone)]
pub struct AccountSettings(Account);

/// Serializes the named fields of `$account` under their own names.
macro_rules! serialize_fields {
    ($out:ident, $account:ident; $($field:ident),+) => {
        $( $out.serialize_field(stringify!($field), &$account.$field)?; )+
    };
}

impl Serialize for AccountSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = &self.0;
        let mut out = s.serialize_struct("AccountSettings", 22)?;
        serialize_fields! { out, a; accountcode, name }
        out.serialize_field("account_status", &a.status)?;
        serialize_fields! {
            out, a;
            default_country, timezone, calling_hours, caller_id, dial_context, dial_exten,
            ring_timeout_seconds, max_attempts, retry_delay_seconds, retry_on, max_call_seconds,
            allowed_countries, allowed_prefixes, redial_window_hours
        }
        out.serialize_field("limits", &AccountLimits(a))?;
        serialize_fields! { out, a; callback_url, callback_batch_events }
        // Times in the contract's format: whole seconds.
        let rotating_until = a
            .callback_secret_previous_until
            .filter(|until| *until > Utc::now())
            .map(rfc3339);
        out.serialize_field("callback_secret_rotating_until", &rotating_until)?;
        out.serialize_field("created_at", &rfc3339(a.created_at))?;
        out.end()
    }
}

/// The `limits` object of [`AccountSettings`].
struct AccountLimits<'a>(&'a Account);

impl Serialize for AccountLimits<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut out = s.serialize_struct("AccountLimits", 6)?;
        serialize_fields! {
            out, a;
            max_rows_per_request, max_queued_calls, max_calls_per_day, calls_per_second,
            max_concurrent_calls, api_requests_per_second
        }
        out.end()
    }
}

impl Account {
    pub fn settings(&self) -> AccountSettings {
        AccountSettings(self.clone())
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = accounts)]
pub struct NewAccount {
    pub accountcode: String,
    pub name: String,
    pub default_country: String,
    pub timezone: String,
    pub callback_url: Option<String>,
    pub callback_secret: String,
    pub caller_id: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Queryable, Selectable, QueryableByName, Serialize)]
#[diesel(table_name = asterisk_servers, check_for_backend(diesel::pg::Pg))]
pub struct AsteriskServer {
    pub id: i64,
    pub code: String,
    pub host: String,
    pub port: i32,
    pub username: String,
    #[serde(skip)]
    pub secret: String,
    pub max_channels: i32,
    pub max_cps: i32,
    pub channel_template: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A PBX simulator: it takes the calls of test-mode accounts and only those.
    pub simulated: bool,
}

debug_only!(AsteriskServer: code, host, port);

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = asterisk_servers)]
pub struct NewAsteriskServer {
    pub code: String,
    pub host: String,
    pub port: i32,
    pub username: String,
    pub secret: String,
    pub max_channels: i32,
    pub max_cps: i32,
    pub channel_template: String,
    pub enabled: bool,
    pub simulated: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = batches, check_for_backend(diesel::pg::Pg))]
pub struct Batch {
    pub id: i64,
    pub account_id: i64,
    pub batch_id: i64,
    pub name: Option<String>,
    pub caller_id: Option<String>,
    pub max_attempts: Option<i32>,
    pub retry_delay_seconds: Option<i32>,
    pub retry_on: Option<Vec<String>>,
    pub calling_hours: Option<serde_json::Value>,
    pub priority: i32,
    pub expires_at: Option<DateTime<Utc>>,
    pub auto_dispatch: bool,
    pub status: BatchStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub amd: crate::domain::AmdPolicy,
    pub message_prompt: Option<String>,
    pub voicemail_prompt: Option<String>,
    pub gather: Option<serde_json::Value>,
    pub record: bool,
}

impl Batch {
    /// Its flow after the answer.
    pub fn call_flow(&self) -> crate::call_flow::CallFlow {
        crate::call_flow::CallFlow::from_columns(
            self.amd,
            self.message_prompt.clone(),
            self.voicemail_prompt.clone(),
            self.gather.as_ref(),
            self.record,
        )
    }
}
