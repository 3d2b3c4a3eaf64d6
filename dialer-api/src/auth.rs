//! `X-API-KEY` authentication: the key's SHA-256 is looked up among unrevoked keys; the request
//! then acts as that key's account, and sees nothing of any other.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use futures_util::future::LocalBoxFuture;

use dialer_core::credentials::hash_api_key;
use dialer_core::models::Account;
use dialer_core::schema::{accounts, api_keys};

use crate::api_error::ApiError;
use crate::state::AppState;

pub const API_KEY_HEADER: &str = "X-API-KEY";

/// The request's client: the application it calls and the account of its API key.
pub struct Client {
    pub state: web::Data<AppState>,
    pub account: Account,
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
        Box::pin(async move {
            let key = match key {
                Some(k) if !k.is_empty() => k,
                _ => return Err(ApiError::unauthorized("missing X-API-KEY header")),
            };
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let hash = hash_api_key(&key);
            let mut conn = state.pool.get().await?;
            let found: Option<(i64, Account)> = accounts::table
                .inner_join(api_keys::table)
                .filter(api_keys::key_hash.eq(hash.as_slice()))
                .filter(api_keys::revoked_at.is_null())
                .select((api_keys::id, Account::as_select()))
                .first(&mut conn)
                .await
                .map(Some)
                .or_else(|e| match e {
                    diesel::result::Error::NotFound => Ok(None),
                    other => Err(other),
                })?;
            let (key_id, account) =
                found.ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
            if account.status != "active" {
                return Err(ApiError::forbidden(
                    "account_suspended",
                    "this account is suspended",
                ));
            }
            state
                .limiters
                .check(key_id, account.api_requests_per_second)?;
            Ok(Client { state, account })
        })
    }
}
