//! Callback deliveries for the client API and dialerctl: an account's events with their delivery
//! state, one event with every try, redelivery and secret rotation. A thin layer over
//! dialer-core's `callbacks` (`listing`, `replay`, `rotation`) that speaks the contract's JSON;
//! every function takes the account's id and sees nothing of any other account: another
//! account's event id is "not found", exactly like an id that never existed.

use std::collections::HashSet;
use std::time::Duration;

use dialer_core::callbacks::listing::{self, DeliveryAttempt, EventDelivery, EventFilter};
use dialer_core::callbacks::replay::{self, ReplaySelection};
use dialer_core::callbacks::rotation;
use dialer_core::domain::DeliveryStatus;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::value::RawValue;

use dialer_core::db::DbPool;
use dialer_core::event_body::rfc3339;

use crate::ops::error::{OpsError, OpsResult};

/// Most event ids one redelivery request may name.
pub const MAX_REDELIVER_IDS: usize = 1000;
/// Event ids are `evt_` and 32 hex digits; anything much longer is not one.
const MAX_EVENT_ID_LEN: usize = 64;
/// Longest grace period of a secret rotation (30 days).
pub const MAX_GRACE_HOURS: u32 = 720;

/// One event and where its delivery stands, as the API and `dialerctl --json` show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub event_id: String,
    #[schema(schema_with = crate::data_schema::event_type)]
    pub event_type: String,
    pub batch_id: i64,
    /// Null for batch events.
    #[schema(required = true)]
    pub call_id: Option<uuid::Uuid>,
    /// Null for batch events.
    #[schema(required = true)]
    pub sequence: Option<i32>,
    /// `pending`, `delivered`, `failed` or `skipped`.
    #[schema(schema_with = crate::data_schema::delivery_status)]
    pub delivery_status: String,
    /// Tries so far (replays add to them; every try stays on record).
    pub delivery_attempts: i32,
    /// What the last failed try got (`HTTP 503`, a timeout, ...).
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When the next try is due (pending events only).
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    pub next_attempt_at: Option<String>,
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    pub delivered_at: Option<String>,
    #[schema(schema_with = crate::data_schema::time_required)]
    pub occurred_at: String,
}

impl From<&EventDelivery> for EventView {
    fn from(e: &EventDelivery) -> EventView {
        EventView {
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            batch_id: e.batch_id,
            call_id: e.call_id,
            sequence: e.sequence,
            delivery_status: e.delivery_status.to_string(),
            delivery_attempts: e.delivery_attempts,
            last_error: e.last_error.clone(),
            next_attempt_at: e.next_attempt_at.map(rfc3339),
            delivered_at: e.delivered_at.map(rfc3339),
            occurred_at: rfc3339(e.occurred_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One try of an event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    #[schema(schema_with = crate::data_schema::time_required)]
    pub attempted_at: String,
    pub url: String,
    /// The receiver's HTTP status (null when there was no answer).
    #[schema(required = true)]
    pub status_code: Option<i32>,
    #[schema(required = true)]
    pub error: Option<String>,
    #[schema(required = true)]
    pub latency_ms: Option<i32>,
    /// The first bytes of the answer (at most 1 KB).
    #[schema(required = true)]
    pub response_head: Option<String>,
}

impl From<DeliveryAttempt> for AttemptView {
    fn from(a: DeliveryAttempt) -> AttemptView {
        AttemptView {
            attempt: a.attempt,
            attempted_at: rfc3339(a.attempted_at),
            url: a.url,
            status_code: a.status_code,
            error: a.error,
            latency_ms: a.latency_ms,
            response_head: a.response_head,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    /// The exact body every try sends.
    #[schema(schema_with = crate::data_schema::event_body)]
    pub body: Box<RawValue>,
    /// Every try, oldest first.
    pub deliveries: Vec<AttemptView>,
}

/// What a redelivery did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct RedeliverOutcome {
    pub redelivered: usize,
    /// The events now pending again, due at once.
    pub event_ids: Vec<String>,
    /// Named events still pending delivery: left alone, they will be sent anyway.
    pub already_pending: Vec<String>,
    /// Named ids that are no event of this account.
    pub not_found: Vec<String>,
}

/// `status`: pending, delivered, failed or skipped.
pub fn parse_status(text: &str) -> OpsResult<DeliveryStatus> {
    text.trim().parse::<DeliveryStatus>().ok().ok_or_else(|| {
        OpsError::invalid(format!(
            "`status`: `{text}` is not one of pending, delivered, failed, skipped"
        ))
    })
}

/// The account's events, newest first, optionally of one delivery status.
pub async fn list(pool: &DbPool, account_id: i64, filter: &EventFilter) -> OpsResult<EventPage> {
    let mut conn = pool.get().await?;
    let page = listing::list_events(&mut conn, account_id, filter).await?;
    Ok(EventPage {
        events: page.events.iter().map(EventView::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    })
}

fn event_not_found(event_id: &str) -> OpsError {
    OpsError::not_found(format!("callback event `{event_id}` not found"))
}

/// One event of the account with its body and every try; 404 for any other id.
pub async fn show(pool: &DbPool, account_id: i64, event_id: &str) -> OpsResult<EventDetail> {
    #[derive(diesel::QueryableByName)]
    struct Body {
        #[diesel(sql_type = Text)]
        body: String,
    }
    let mut conn = pool.get().await?;
    let event = listing::find_event(&mut conn, account_id, event_id)
        .await?
        .ok_or_else(|| event_not_found(event_id))?;
    let body: Body = diesel::sql_query("SELECT body FROM call_events WHERE id = $1")
        .bind::<BigInt, _>(event.event_pk)
        .get_result(&mut conn)
        .await?;
    let attempts = listing::event_attempts(&mut conn, account_id, event_id)
        .await?
        .unwrap_or_default();
    Ok(EventDetail {
        event: EventView::from(&event),
        body: RawValue::from_string(body.body).map_err(OpsError::internal)?,
        deliveries: attempts.into_iter().map(AttemptView::from).collect(),
    })
}

/// Checks named event ids and drops repeats (first occurrence kept).
pub fn check_ids(ids: Vec<String>) -> OpsResult<Vec<String>> {
    if ids.is_empty() {
        return Err(OpsError::invalid("`event_ids` is empty"));
    }
    if ids.len() > MAX_REDELIVER_IDS {
        return Err(OpsError::invalid(format!(
            "`event_ids` has {} ids; at most {MAX_REDELIVER_IDS} per request",
            ids.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        let id = id.trim().to_owned();
        if id.is_empty() || id.len() > MAX_EVENT_ID_LEN {
            return Err(OpsError::invalid(format!(
                "`event_ids[{i}]` is not an event id (such as evt_ and 32 hex digits)"
            )));
        }
        if seen.insert(id.clone()) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Sends events again: every failed event of the account, or the named ones (failed, skipped
/// or delivered; pending ones are left alone). Named ids of no event of this account are
/// reported in `not_found`; when none of the named ids is an event of the account, nothing
/// changes and the answer is 404.
pub async fn redeliver(
    pool: &DbPool,
    account_id: i64,
    selection: &ReplaySelection,
) -> OpsResult<RedeliverOutcome> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = Text)]
        event_id: String,
    }
    let mut conn = pool.get().await?;
    let reset = replay::redeliver(&mut conn, account_id, selection).await?;
    let ReplaySelection::EventIds(named) = selection else {
        return Ok(RedeliverOutcome {
            redelivered: reset.len(),
            event_ids: reset,
            ..Default::default()
        });
    };
    let reset_set: HashSet<&str> = reset.iter().map(String::as_str).collect();
    let rest: Vec<&str> = named
        .iter()
        .map(String::as_str)
        .filter(|id| !reset_set.contains(id))
        .collect();
    let existing: HashSet<String> = if rest.is_empty() {
        HashSet::new()
    } else {
        diesel::sql_query(
            "SELECT event_id FROM call_events WHERE account_id = $1 AND event_id = ANY($2)",
        )
        .bind::<BigInt, _>(account_id)
        .bind::<Array<Text>, _>(&rest)
        .load::<Id>(&mut conn)
        .await?
        .into_iter()
        .map(|r| r.event_id)
        .collect()
    };
    let (already_pending, not_found): (Vec<&str>, Vec<&str>) =
        rest.into_iter().partition(|id| existing.contains(*id));
    if reset.is_empty() && already_pending.is_empty() {
        return Err(match not_found.as_slice() {
            [one] => event_not_found(one),
            many => OpsError::not_found(format!(
                "none of the {} ids in `event_ids` is a callback event of this account",
                many.len()
            )),
        });
    }
    // Keep the caller's order in the answer.
    let event_ids: Vec<String> = named
        .iter()
        .filter(|id| reset_set.contains(id.as_str()))
        .cloned()
        .collect();
    Ok(RedeliverOutcome {
        redelivered: event_ids.len(),
        event_ids,
        already_pending: already_pending.into_iter().map(str::to_owned).collect(),
        not_found: not_found.into_iter().map(str::to_owned).collect(),
    })
}

/// The grace period of a rotation, from whole hours (0: the old secret stops at once).
pub fn grace_from_hours(hours: u32) -> OpsResult<Duration> {
    if hours > MAX_GRACE_HOURS {
        return Err(OpsError::invalid(format!(
            "the grace period is at most {MAX_GRACE_HOURS} hours, not {hours}"
        )));
    }
    Ok(Duration::from_secs(u64::from(hours) * 3600))
}

/// Gives the account a new callback secret (to show once); the old one keeps signing beside it
/// for `grace`, and alone in `X-Signature` until then.
pub async fn rotate_secret(
    pool: &DbPool,
    accountcode: &str,
    grace: Duration,
) -> OpsResult<rotation::RotatedSecret> {
    let account = crate::ops::accounts::find(pool, accountcode).await?;
    let mut conn = pool.get().await?;
    rotation::rotate_secret(&mut conn, account.id, grace)
        .await?
        .ok_or_else(|| OpsError::not_found(format!("account `{accountcode}` not found")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::paging::{DEFAULT_LIMIT, parse_limit};

    #[test]
    fn query_values() {
        assert_eq!(parse_status("failed").ok(), Some(DeliveryStatus::Failed));
        assert!(parse_status("lost").is_err());
        assert_eq!(parse_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("1001")).is_err());
        assert_eq!(grace_from_hours(24).ok(), Some(Duration::from_secs(86_400)));
        assert!(grace_from_hours(MAX_GRACE_HOURS + 1).is_err());
    }
}
