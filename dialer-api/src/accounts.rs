//! Operator actions on accounts (dialerctl): create with a first API key and callback secret,
//! list, show.

use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, RunQueryDsl};

use dialer_core::credentials::{generate_api_key, generate_callback_secret};
use dialer_core::db::DbPool;
use dialer_core::models::{Account, NewAccount};
use dialer_core::phone::parse_country;
use dialer_core::schema::{accounts, api_keys};

use crate::api_error::{ApiError, ApiResult};

pub struct CreateAccount {
    pub accountcode: String,
    pub name: String,
    pub default_country: String,
    pub timezone: String,
    pub callback_url: Option<String>,
    pub caller_id: Option<String>,
}

/// The new account and its credentials, shown once.
pub struct CreatedAccount {
    pub account: Account,
    pub api_key: String,
    pub callback_secret: String,
}

/// Callback URLs are https; plain http only to loopback, and only when allowed.
pub fn check_callback_url(url: &str, allow_http_loopback: bool) -> ApiResult<()> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") && url.len() > 8 {
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
        if loopback && allow_http_loopback {
            return Ok(());
        }
    }
    Err(ApiError::invalid_request(format!(
        "callback URL `{url}` must be https (plain http only to loopback, when the deployment allows it)"
    )))
}

pub async fn create(
    pool: &DbPool,
    input: CreateAccount,
    allow_http_loopback: bool,
) -> ApiResult<CreatedAccount> {
    let country = input.default_country.trim().to_ascii_uppercase();
    parse_country(&country).map_err(|e| ApiError::invalid_request(format!("country: {e}")))?;
    if let Some(url) = &input.callback_url {
        check_callback_url(url, allow_http_loopback)?;
    }
    let key = generate_api_key().map_err(ApiError::internal)?;
    let secret = generate_callback_secret().map_err(ApiError::internal)?;
    let mut conn = pool.get().await?;
    let account = conn
        .transaction::<Account, ApiError, _>(async |conn| {
            // PostgreSQL knows the IANA zone names; asking it keeps one source of truth.
            diesel::sql_query("SELECT now() AT TIME ZONE $1")
                .bind::<Text, _>(&input.timezone)
                .execute(conn)
                .await
                .map_err(|_| {
                    ApiError::invalid_request(format!("unknown timezone `{}`", input.timezone))
                })?;
            let account: Account = diesel::insert_into(accounts::table)
                .values(NewAccount {
                    accountcode: input.accountcode.clone(),
                    name: input.name.clone(),
                    default_country: country.clone(),
                    timezone: input.timezone.clone(),
                    callback_url: input.callback_url.clone(),
                    callback_secret: secret.clone(),
                    caller_id: input.caller_id.clone(),
                })
                .returning(Account::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match e {
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    ) => ApiError::conflict(
                        "account_exists",
                        format!("account `{}` already exists", input.accountcode),
                    ),
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::CheckViolation,
                        info,
                    ) => ApiError::invalid_request(format!("invalid account: {}", info.message())),
                    other => other.into(),
                })?;
            diesel::insert_into(api_keys::table)
                .values((
                    api_keys::account_id.eq(account.id),
                    api_keys::key_hash.eq(key.hash.as_slice()),
                    api_keys::key_prefix.eq(&key.prefix),
                    api_keys::label.eq("initial"),
                ))
                .execute(conn)
                .await?;
            Ok(account)
        })
        .await?;
    Ok(CreatedAccount {
        account,
        api_key: key.key,
        callback_secret: secret,
    })
}

pub async fn list(pool: &DbPool) -> ApiResult<Vec<Account>> {
    let mut conn = pool.get().await?;
    Ok(accounts::table
        .order(accounts::accountcode)
        .select(Account::as_select())
        .load(&mut conn)
        .await?)
}

pub async fn find(pool: &DbPool, accountcode: &str) -> ApiResult<Account> {
    let mut conn = pool.get().await?;
    accounts::table
        .filter(accounts::accountcode.eq(accountcode))
        .select(Account::as_select())
        .first(&mut conn)
        .await
        .map_err(|e| match e {
            diesel::result::Error::NotFound => {
                ApiError::not_found(format!("account `{accountcode}` not found"))
            }
            other => other.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::check_callback_url;

    #[test]
    fn callback_urls() {
        assert!(check_callback_url("https://example.com/hook", false).is_ok());
        assert!(check_callback_url("http://example.com/hook", true).is_err());
        assert!(check_callback_url("http://127.0.0.1:8080/hook", false).is_err());
        assert!(check_callback_url("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check_callback_url("ftp://x", true).is_err());
    }
}

/// Settings an operator may change; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone, diesel::AsChangeset)]
#[diesel(table_name = accounts)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub default_country: Option<String>,
    pub timezone: Option<String>,
    pub calling_hours: Option<Option<serde_json::Value>>,
    pub caller_id: Option<Option<String>>,
    pub dial_context: Option<String>,
    pub dial_exten: Option<String>,
    pub ring_timeout_seconds: Option<i32>,
    pub max_attempts: Option<i32>,
    pub retry_delay_seconds: Option<i32>,
    pub retry_on: Option<Vec<String>>,
    pub max_call_seconds: Option<i32>,
    pub allowed_countries: Option<Vec<String>>,
    pub allowed_prefixes: Option<Vec<String>>,
    pub redial_window_hours: Option<i32>,
    pub max_rows_per_request: Option<i32>,
    pub max_queued_calls: Option<i64>,
    pub max_calls_per_day: Option<i64>,
    pub calls_per_second: Option<i32>,
    pub max_concurrent_calls: Option<i32>,
    pub api_requests_per_second: Option<i32>,
    pub callback_url: Option<Option<String>>,
    pub callback_batch_events: Option<bool>,
}

fn map_update_error(code: &str, e: diesel::result::Error) -> ApiError {
    match e {
        diesel::result::Error::NotFound => {
            ApiError::not_found(format!("account `{code}` not found"))
        }
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::CheckViolation,
            info,
        ) => ApiError::invalid_request(format!("invalid setting: {}", info.message())),
        other => other.into(),
    }
}

/// Validates and applies an update; returns the account as it now is.
pub async fn update(
    pool: &DbPool,
    code: &str,
    mut change: AccountUpdate,
    allow_http_loopback: bool,
) -> ApiResult<Account> {
    if let Some(country) = &change.default_country {
        let upper = country.trim().to_ascii_uppercase();
        parse_country(&upper).map_err(|e| ApiError::invalid_request(format!("country: {e}")))?;
        change.default_country = Some(upper);
    }
    if let Some(Some(url)) = &change.callback_url {
        check_callback_url(url, allow_http_loopback)?;
    }
    if let Some(Some(hours)) = &change.calling_hours {
        dialer_core::calling_hours::CallingHours::from_json(hours)
            .map_err(ApiError::invalid_request)?;
    }
    if let Some(list) = &change.retry_on {
        for d in list {
            if !d
                .parse::<dialer_core::domain::Disposition>()
                .is_ok_and(|d| d.is_retryable())
            {
                return Err(ApiError::invalid_request(format!(
                    "retry_on: `{d}` is not a retryable disposition"
                )));
            }
        }
    }
    if let Some(list) = &mut change.allowed_countries {
        for c in list.iter_mut() {
            *c = c.trim().to_ascii_uppercase();
            parse_country(c)
                .map_err(|e| ApiError::invalid_request(format!("allowed countries: {e}")))?;
        }
    }
    let bad_prefix = |p: &&String| {
        !(p.starts_with('+') && p.len() > 1 && p[1..].bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(bad) = change.allowed_prefixes.iter().flatten().find(bad_prefix) {
        return Err(ApiError::invalid_request(format!(
            "allowed prefix `{bad}` must be + and digits, e.g. +9198"
        )));
    }
    let mut conn = pool.get().await?;
    conn.transaction::<Account, ApiError, _>(async |conn| {
        if let Some(tz) = &change.timezone {
            diesel::sql_query("SELECT now() AT TIME ZONE $1")
                .bind::<Text, _>(tz)
                .execute(conn)
                .await
                .map_err(|_| ApiError::invalid_request(format!("unknown timezone `{tz}`")))?;
        }
        diesel::update(accounts::table.filter(accounts::accountcode.eq(code)))
            .set((&change, accounts::updated_at.eq(diesel::dsl::now)))
            .returning(Account::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| map_update_error(code, e))
    })
    .await
}

/// `active` or `suspended` (a suspended account's keys get 403).
pub async fn set_status(pool: &DbPool, code: &str, status: &str) -> ApiResult<Account> {
    let mut conn = pool.get().await?;
    diesel::update(accounts::table.filter(accounts::accountcode.eq(code)))
        .set((
            accounts::status.eq(status),
            accounts::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Account::as_returning())
        .get_result(&mut conn)
        .await
        .map_err(|e| map_update_error(code, e))
}

/// Adds a new API key (printed once); with `revoke_previous`, every older key stops working.
/// Without it both work, so clients switch without downtime and the old key is revoked later.
pub async fn rotate_key(
    pool: &DbPool,
    code: &str,
    revoke_previous: bool,
) -> ApiResult<(String, i64)> {
    let account = find(pool, code).await?;
    let key = generate_api_key().map_err(ApiError::internal)?;
    let mut conn = pool.get().await?;
    let revoked = conn
        .transaction::<i64, ApiError, _>(async |conn| {
            let revoked = if revoke_previous {
                diesel::update(
                    api_keys::table
                        .filter(api_keys::account_id.eq(account.id))
                        .filter(api_keys::revoked_at.is_null()),
                )
                .set(api_keys::revoked_at.eq(diesel::dsl::now))
                .execute(conn)
                .await? as i64
            } else {
                0
            };
            diesel::insert_into(api_keys::table)
                .values((
                    api_keys::account_id.eq(account.id),
                    api_keys::key_hash.eq(key.hash.as_slice()),
                    api_keys::key_prefix.eq(&key.prefix),
                    api_keys::label.eq("rotated"),
                ))
                .execute(conn)
                .await?;
            Ok(revoked)
        })
        .await?;
    Ok((key.key, revoked))
}
