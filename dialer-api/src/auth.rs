//! `X-API-KEY` authentication: the key's SHA-256 is looked up among unrevoked keys; the request
//! then acts as that key's account, and sees nothing of any other.
//!
//! The lookup has a pool of its own (`DIALER_API_AUTH_POOL_SIZE`), so it never waits behind the
//! accounts' work; failures are throttled per address ([`crate::auth_failures`]); and the
//! request takes one of its account's places ([`crate::account_slots`]) before any of its work
//! takes a connection.

use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use futures_util::future::LocalBoxFuture;

use dialer_core::credentials::hash_api_key;
use dialer_core::models::Account;
use dialer_core::schema::{accounts, api_keys};

use crate::account_slots::WorkKind;
use crate::api_error::ApiError;
use crate::state::AppState;

pub const API_KEY_HEADER: &str = "X-API-KEY";

/// The request's client: the application it calls and the account of its API key. The
/// account's place ([`crate::account_slots::Slot`]) is kept in the request's extensions, so it
/// is held until the request is done.
pub struct Client {
    pub state: web::Data<AppState>,
    pub account: Account,
    /// The id of the request's API key (`api_keys.id`).
    pub key_id: i64,
}

impl FromRequest for Client {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = req
            .headers()
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let kind = req
            .app_data::<WorkKind>()
            .copied()
            .unwrap_or(WorkKind::Request);
        let req = req.clone();
        Box::pin(async move {
            let key = match key {
                Some(k) if !k.is_empty() => k,
                _ => return Err(ApiError::unauthorized("missing X-API-KEY header")),
            };
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let hash = hash_api_key(&key);
            let address = crate::client_address::client_address(
                &req,
                &state.config.api_limits.trusted_proxies,
            );
            if let Some(address) = address {
                state.auth_failures.check(address, &hash, Instant::now())?;
            }
            let (key_id, account) = match lookup(&state, &hash).await? {
                Some(found) => found,
                None => {
                    if let Some(address) = address {
                        state.auth_failures.failed(address, Instant::now());
                    }
                    return Err(ApiError::unauthorized("invalid API key"));
                }
            };
            state.auth_failures.succeeded(hash, Instant::now());
            state.key_use.note(&state.auth_pool, key_id);
            if account.status != "active" {
                return Err(ApiError::forbidden(
                    "account_suspended",
                    "this account is suspended",
                ));
            }
            state
                .limiters
                .check(key_id, account.api_requests_per_second)?;
            let slot = state.slots.take(account.id, kind).await?;
            req.extensions_mut().insert(slot);
            Ok(Client {
                state,
                account,
                key_id,
            })
        })
    }
}

/// The unrevoked key with this hash and its account.
async fn lookup(state: &AppState, hash: &[u8; 32]) -> Result<Option<(i64, Account)>, ApiError> {
    let mut conn = state.auth_pool.get().await?;
    accounts::table
        .inner_join(api_keys::table)
        .filter(api_keys::key_hash.eq(hash.as_slice()))
        .filter(api_keys::revoked_at.is_null())
        .select((api_keys::id, Account::as_select()))
        .first(&mut conn)
        .await
        .map(Some)
        .or_else(|e| match e {
            diesel::result::Error::NotFound => Ok(None),
            other => Err(other.into()),
        })
}
