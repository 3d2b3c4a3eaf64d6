//! The account's callback endpoint as the account itself manages it (`PUT`/`DELETE
//! /account/callback`, `POST /account/callback/test`): the same checks as an operator's change
//! (`accounts::update`), and a test event sent at once, signed and over the same client setup
//! as the worker's deliveries, so what the test shows is what deliveries will meet.

use bytes::Bytes;
use chrono::Utc;

use dialer_core::Config;
use dialer_core::callbacks::delivery;
use dialer_core::callbacks::signing::SigningKeys;
use dialer_core::db::DbPool;
use dialer_core::event_body::rfc3339;
use dialer_core::models::Account;

use crate::ops::accounts::{self, AccountUpdate};
use crate::ops::error::{OpsError, OpsResult};

/// The event type of a test event: never a call's, so a receiver can tell it apart.
pub const TEST_EVENT_TYPE: &str = "callback_test";

/// A change of the endpoint: the URL, and optionally its CA certificate (`Some(None)` removes
/// it) and the batch-events subscription; what is `None` stays as it is.
pub struct EndpointChange {
    pub url: String,
    pub ca_certificate: Option<Option<String>>,
    pub batch_events: Option<bool>,
}

pub async fn set(
    pool: &DbPool,
    account: &Account,
    change: EndpointChange,
    allow_http_loopback: bool,
) -> OpsResult<Account> {
    let update = AccountUpdate {
        callback_url: Some(Some(change.url)),
        callback_ca_cert: change.ca_certificate,
        callback_batch_events: change.batch_events,
        ..AccountUpdate::default()
    };
    accounts::update(pool, &account.accountcode, update, allow_http_loopback).await
}

/// No endpoint: events written from now on are stored `skipped`, and events still waiting are
/// skipped when their turn comes (a replay sends them once there is a URL again). The CA
/// certificate goes with the URL; the batch-events subscription stays.
pub async fn clear(pool: &DbPool, account: &Account) -> OpsResult<Account> {
    let update = AccountUpdate {
        callback_url: Some(None),
        callback_ca_cert: Some(None),
        ..AccountUpdate::default()
    };
    accounts::update(pool, &account.accountcode, update, false).await
}

/// What the endpoint did with the test event.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    pub event_id: String,
    /// A 2xx answer within the timeout: a call event would have been delivered.
    pub delivered: bool,
    /// The HTTP status of the answer, if one came.
    pub status_code: Option<u16>,
    /// Why it was not delivered (connection refused, timeout, certificate, URL refused...).
    pub error: Option<String>,
    pub latency_ms: u64,
    /// The first bytes of the answer's body.
    pub response_head: Option<String>,
}

/// Sends one `callback_test` event to the account's URL now, signed with its current secret
/// (and the previous one during a rotation's grace period, as deliveries are). Nothing is
/// stored: the answer is the outcome.
pub async fn send_test(config: &Config, account: &Account) -> OpsResult<TestOutcome> {
    let url_text = account.callback_url.as_deref().ok_or_else(|| {
        OpsError::conflict(
            "no_callback_url",
            "the account has no callback URL; set one with PUT /api/v1/account/callback",
        )
    })?;
    let event_id = format!("evt_test_{}", uuid::Uuid::new_v4().simple());
    let now = Utc::now();
    let body = serde_json::to_vec(&serde_json::json!({
        "event_id": event_id,
        "event_type": TEST_EVENT_TYPE,
        "accountcode": account.accountcode,
        "occurred_at": rfc3339(now),
        "message": "a test event from POST /api/v1/account/callback/test",
    }))
    .map_err(OpsError::internal)?;
    let keys = SigningKeys::from_texts(
        &account.callback_secret,
        account.callback_secret_previous.as_deref(),
        account.callback_secret_previous_until,
    )
    .map_err(|e| OpsError::internal(format!("callback secret: {e}")))?;
    let http = config.callback_http();
    let report = match http.policy.check(url_text) {
        Err(e) => delivery::AttemptReport::refused(e.to_string()),
        Ok(url) => match delivery::build_client(&http, account.callback_ca_cert.as_deref()) {
            Err(e) => delivery::AttemptReport::refused(e.to_string()),
            Ok(client) => {
                let signature = keys.sign(&event_id, &body, now);
                delivery::post(&client, &url, &signature, Bytes::from(body)).await
            }
        },
    };
    Ok(TestOutcome {
        delivered: report.delivered(),
        event_id,
        status_code: report.status_code,
        error: report.error,
        latency_ms: report.latency.as_millis() as u64,
        response_head: report.response_head,
    })
}
