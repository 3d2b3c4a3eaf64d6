//! The account's API keys, managed by the account (`GET`/`POST /account/keys`, `DELETE
//! /account/keys/{key_id}`). A key rotation without downtime: create a key, switch the client
//! to it, revoke the old one.

use actix_web::{HttpResponse, web};

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::json_body;
use crate::ops::api_keys::{self, KeyInfo, MAX_LABEL_CHARS};
use crate::ops::test_mode;

/// The account's keys.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct KeyList {
    keys: Vec<KeyInfo>,
}

/// A new key, shown once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct NewKey {
    key_id: i64,
    /// The key: shown only in this answer (only its hash is stored).
    api_key: String,
    prefix: String,
    label: String,
    /// `live`, or `test`: the key works on the account's test twin, whose calls go to a
    /// simulated PBX only.
    mode: &'static str,
    /// The account the key belongs to (`ACME-test` for a test-mode key of `ACME`).
    accountcode: String,
}

/// A revoked key.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RevokedKey {
    key_id: i64,
    revoked_at: String,
}

success_response! {
    /// The account's keys, newest first.
    KeyListResponse(KeyList);
    /// The new key.
    NewKeyResponse(NewKey);
    /// The revoked key.
    RevokedKeyResponse(RevokedKey);
}

/// `GET /api/v1/account/keys`
///
/// The account's keys, newest first, revoked ones included: id, first characters, label,
/// creation and revocation times, and `current` for the key of the request. Never a key.
#[utoipa::path(
    get,
    path = "/api/v1/account/keys",
    tag = "account",
    responses((status = 200, description = "the account's keys", body = KeyListResponse))
)]
pub async fn list_keys(
    Client {
        state,
        account,
        key_id,
    }: Client,
) -> ApiResult<HttpResponse> {
    let keys = api_keys::list(&state.pool, account.id, key_id).await?;
    Ok(KeyListResponse::ok(KeyList { keys }))
}

/// `POST /api/v1/account/keys`
///
/// A new API key, shown once in the answer: `{"label": "billing system"}` (optional, at most
/// 100 characters; an empty body is fine). Older keys keep working until revoked.
#[utoipa::path(
    post,
    path = "/api/v1/account/keys",
    tag = "account",
    request_body(content = crate::api_schema::NewKeyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "the new key (shown once)", body = NewKeyResponse),
        (status = 400, description = "`invalid_request` naming `label` or `mode`", body = ErrorResponse),
        (status = 403, description = "`live_key_from_test_mode`: a test-mode key cannot make a live one", body = ErrorResponse),
        (status = 409, description = "`test_mode_unavailable`: the test twin's code is another account's", body = ErrorResponse),
    )
)]
pub async fn create_key(
    Client { state, account, .. }: Client,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let (label, mode): (Option<String>, Option<String>) =
        match json_body::optional_object(&req, &body, &["label", "mode"])? {
            None => (None, None),
            Some(top) => (
                top.get("label", "a string")?,
                top.get("mode", "\"live\" or \"test\"")?,
            ),
        };
    let label = label.unwrap_or_default();
    // A key is made in the mode asked for, else in the caller's own.
    let is_test = {
        let mut conn = state.pool.get().await?;
        test_mode::live_of(&mut conn, account.id).await?.is_some()
    };
    let owner = match (mode.as_deref(), is_test) {
        (None, _) | (Some("live"), false) | (Some("test"), true) => account.clone(),
        (Some("test"), false) => test_mode::twin(&state.pool, &account).await?,
        (Some("live"), true) => {
            return Err(ApiError::forbidden(
                "live_key_from_test_mode",
                "a test-mode key cannot make a live key; use a live key",
            ));
        }
        (Some(other), _) => {
            return Err(ApiError::invalid_request(format!(
                "`mode` must be \"live\" or \"test\", not `{}`",
                dialer_core::client_text::quoted(other)
            )));
        }
    };
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(ApiError::invalid_request(format!(
            "`label` is longer than {MAX_LABEL_CHARS} characters"
        )));
    }
    let test = is_test || mode.as_deref() == Some("test");
    let created = api_keys::create(&state.pool, owner.id, test, &label).await?;
    tracing::info!(account = %owner.accountcode, key_id = created.key_id, "API key created by the account");
    Ok(NewKeyResponse::ok(NewKey {
        key_id: created.key_id,
        api_key: created.api_key,
        prefix: created.prefix,
        label,
        mode: if test { "test" } else { "live" },
        accountcode: owner.accountcode,
    }))
}

/// `DELETE /api/v1/account/keys/{key_id}`
///
/// Revokes a key at once (the key of the request too, if another is active). `404 not_found`
/// for an id that is no key of this account; `409 last_active_key` for the last active key.
#[utoipa::path(
    delete,
    path = "/api/v1/account/keys/{key_id}",
    tag = "account",
    params(("key_id" = i64, Path, description = "the `key_id` of the key")),
    responses(
        (status = 200, description = "revoked", body = RevokedKeyResponse),
        (status = 404, description = "`not_found`: no key of this account", body = ErrorResponse),
        (status = 409, description = "`last_active_key`", body = ErrorResponse),
    )
)]
pub async fn revoke_key(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let key_id = path
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no API key `{}` in this account",
                dialer_core::client_text::quoted(&path)
            ))
        })?;
    let revoked_at = api_keys::revoke(&state.pool, account.id, key_id).await?;
    tracing::info!(account = %account.accountcode, key_id, "API key revoked by the account");
    Ok(RevokedKeyResponse::ok(RevokedKey {
        key_id,
        revoked_at: dialer_core::event_body::rfc3339(revoked_at),
    }))
}
