//! The account's callback endpoint, managed by the account (`PUT`/`DELETE /account/callback`,
//! `POST /account/callback/test`, `POST /account/callback-secret/rotate`). Operators do the
//! same with `dialerctl account update` and `rotate-secret`.

use actix_web::HttpResponse;
use dialer_core::models::AccountSettings;

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::json_body::{self, JsonBody};
use crate::ops::callback_endpoint::{self, EndpointChange, TestOutcome};
use crate::ops::callbacks;

/// The account's settings after a change.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccountSettingsBody {
    #[schema(value_type = crate::api_schema::AccountSettings)]
    account: AccountSettings,
}

/// A new callback secret, shown once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RotatedSecretBody {
    /// `whsec_...`: shown only in this answer.
    callback_secret: String,
    /// Until when the previous secret keeps signing beside it (null: it stopped at once).
    previous_secret_valid_until: Option<String>,
}

success_response! {
    /// The account's settings as they now are.
    CallbackEndpointResponse(AccountSettingsBody);
    /// What the endpoint answered to the test event.
    CallbackTestResponse(TestOutcome);
    /// The new callback secret.
    SecretRotationResponse(RotatedSecretBody);
}

/// `PUT /api/v1/account/callback`
///
/// Sets the callback endpoint: `{"url": "https://...", "ca_certificate": "-----BEGIN
/// CERTIFICATE-----...", "batch_events": true}`. `url` is required (https, a public address);
/// `ca_certificate` (PEM of the CA that signed a private endpoint's certificate; `null`
/// removes it) and `batch_events` (the `batch_completed` callback) are optional and stay as
/// they are when left out. Events from now on go to the new URL, within a few seconds.
#[utoipa::path(
    put,
    path = "/api/v1/account/callback",
    tag = "account",
    request_body(content = crate::api_schema::CallbackEndpointRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "the account's settings", body = CallbackEndpointResponse),
        (status = 400, description = "`invalid_request` naming `url`, `ca_certificate` or `batch_events`", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`", body = ErrorResponse),
    )
)]
pub async fn set_endpoint(
    Client { state, account, .. }: Client,
    JsonBody(body): JsonBody,
) -> ApiResult<HttpResponse> {
    let top = json_body::parse_object(&body)?;
    top.only(&["url", "ca_certificate", "batch_events"])?;
    let url: String = top.require("url", "an https URL string")?;
    let ca_certificate = match top.raw("ca_certificate") {
        None => None,
        Some(raw) if raw.get() == "null" => Some(None),
        Some(_) => Some(top.get::<String>("ca_certificate", "a PEM string or null")?),
    };
    let batch_events: Option<bool> = top.get("batch_events", "true or false")?;
    let change = EndpointChange {
        url,
        ca_certificate,
        batch_events,
    };
    let allow = state.config.allow_http_loopback_callbacks;
    let updated = callback_endpoint::set(&state.pool, &account, change, allow).await?;
    tracing::info!(account = %account.accountcode, "callback endpoint set by the account");
    Ok(CallbackEndpointResponse::ok(AccountSettingsBody {
        account: updated.settings(),
    }))
}

/// `DELETE /api/v1/account/callback`
///
/// Removes the callback URL (and its CA certificate). Events written from then on are stored
/// `skipped`, and events still waiting are skipped when their turn comes; either can be sent
/// later with `POST /callbacks/redeliver` once there is a URL again.
#[utoipa::path(
    delete,
    path = "/api/v1/account/callback",
    tag = "account",
    responses((status = 200, description = "the account's settings", body = CallbackEndpointResponse))
)]
pub async fn clear_endpoint(Client { state, account, .. }: Client) -> ApiResult<HttpResponse> {
    let updated = callback_endpoint::clear(&state.pool, &account).await?;
    tracing::info!(account = %account.accountcode, "callback endpoint removed by the account");
    Ok(CallbackEndpointResponse::ok(AccountSettingsBody {
        account: updated.settings(),
    }))
}

/// `POST /api/v1/account/callback/test`
///
/// Sends one signed test event to the callback URL now and answers with what the endpoint did.
/// The event is `{"event_id": "evt_test_...", "event_type": "callback_test", "accountcode":
/// ..., "occurred_at": ..., "message": ...}`, signed like every callback (both signatures);
/// it is not stored and never retried. `409 no_callback_url` when there is no URL.
#[utoipa::path(
    post,
    path = "/api/v1/account/callback/test",
    tag = "account",
    responses(
        (status = 200, description = "the endpoint's answer (`delivered` says whether it was a 2xx in time)", body = CallbackTestResponse),
        (status = 409, description = "`no_callback_url`", body = ErrorResponse),
    )
)]
pub async fn test_endpoint(Client { state, account, .. }: Client) -> ApiResult<HttpResponse> {
    let outcome = callback_endpoint::send_test(&state.config, &account).await?;
    tracing::info!(
        account = %account.accountcode,
        delivered = outcome.delivered,
        status = ?outcome.status_code,
        "callback test event sent"
    );
    Ok(CallbackTestResponse::ok(outcome))
}

/// `POST /api/v1/account/callback-secret/rotate`
///
/// A new callback secret, shown once in the answer. The old one keeps signing beside it for
/// the grace period (body `{"grace_hours": 24}`, optional, 0 to 720, default 24): deliveries
/// carry both in `webhook-signature`, and `X-Signature` stays on the old secret until the
/// period ends.
#[utoipa::path(
    post,
    path = "/api/v1/account/callback-secret/rotate",
    tag = "account",
    request_body(content = crate::api_schema::SecretRotationRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "the new secret (shown once)", body = SecretRotationResponse),
        (status = 400, description = "`invalid_request` naming `grace_hours`", body = ErrorResponse),
    )
)]
pub async fn rotate_secret(
    Client { state, account, .. }: Client,
    body: actix_web::web::Bytes,
    req: actix_web::HttpRequest,
) -> ApiResult<HttpResponse> {
    let grace_hours: u32 = match json_body::optional_object(&req, &body, &["grace_hours"])? {
        None => None,
        Some(top) => top.get("grace_hours", "a whole number of hours from 0 to 720")?,
    }
    .unwrap_or(24);
    let grace = callbacks::grace_from_hours(grace_hours)
        .map_err(|e| ApiError::invalid_request(format!("`grace_hours`: {e}")))?;
    let rotated = callbacks::rotate_secret(&state.pool, &account.accountcode, grace).await?;
    tracing::info!(account = %account.accountcode, grace_hours, "callback secret rotated by the account");
    Ok(SecretRotationResponse::ok(RotatedSecretBody {
        callback_secret: rotated.secret,
        previous_secret_valid_until: rotated
            .previous_valid_until
            .map(dialer_core::event_body::rfc3339),
    }))
}
