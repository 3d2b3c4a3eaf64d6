//! Operator actions on accounts (dialerctl): create with a first API key and callback secret,
//! list, show.

use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use dialer_core::credentials::{NewApiKey, generate_api_key, generate_callback_secret};
use dialer_core::db::DbPool;
use dialer_core::domain::CallStatus;
use dialer_core::models::{Account, NewAccount};
use dialer_core::phone::parse_country;
use dialer_core::schema::{accounts, api_keys};
use dialer_core::url_policy::{UrlPolicy, UrlPolicyError};

use crate::ops::error::{OpsError, OpsResult, Refusals};

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

/// How long setting a callback URL waits to resolve its host.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Callback URLs, as the worker will call them (the core's [`UrlPolicy`], which the worker applies
/// again at every connect): https only, never to a private, loopback, link-local or otherwise
/// internal address; http (and https) to loopback only when the deployment allows it
/// (`DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS`). A host name is resolved now too and refused when every
/// address it has is refused; a name that does not resolve yet is accepted, since the worker checks
/// the addresses again at every connect. The message never repeats the URL (it may carry a token or
/// a password).
pub async fn check_callback_url(url: &str, allow_loopback: bool) -> OpsResult<()> {
    let policy = UrlPolicy { allow_loopback };
    let refused = |e: UrlPolicyError| {
        let hint = match e {
            UrlPolicyError::NotHttps if allow_loopback => " (plain http only to loopback)",
            UrlPolicyError::NotHttps => {
                " (plain http to loopback only when DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS=true)"
            }
            _ => "",
        };
        OpsError::invalid(format!("callback URL refused: {e}{hint}"))
    };
    let parsed = policy.check(url).map_err(refused)?;
    if let Some(host) = parsed.domain() {
        let port = parsed.port_or_known_default().unwrap_or(443);
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<std::net::SocketAddr> = addrs.collect();
                if !addrs.is_empty() && addrs.iter().all(|a| !policy.address_allowed(a.ip())) {
                    return Err(refused(UrlPolicyError::ForbiddenName(host.to_owned())));
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(host, error = %e, "callback host does not resolve now");
            }
            Err(_) => tracing::warn!(host, "callback host did not resolve in time"),
        }
    }
    Ok(())
}

pub async fn create(
    pool: &DbPool,
    input: CreateAccount,
    allow_http_loopback: bool,
) -> OpsResult<CreatedAccount> {
    let country = input.default_country.trim().to_ascii_uppercase();
    parse_country(&country).map_err(|e| OpsError::invalid(format!("country: {e}")))?;
    if let Some(url) = &input.callback_url {
        check_callback_url(url, allow_http_loopback).await?;
    }
    let key = generate_api_key().map_err(OpsError::internal)?;
    let secret = generate_callback_secret().map_err(OpsError::internal)?;
    let mut conn = pool.get().await?;
    let account = conn
        .transaction::<Account, OpsError, _>(async |conn| {
            check_timezone(conn, &input.timezone).await?;
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
                .map_err(|e| {
                    let taken = format!("account `{}` already exists", input.accountcode);
                    Refusals::taken("account_exists", taken)
                        .or_invalid("invalid account")
                        .error(e)
                })?;
            add_key(conn, account.id, &key, "initial").await?;
            Ok(account)
        })
        .await?;
    Ok(CreatedAccount {
        account,
        api_key: key.key,
        callback_secret: secret,
    })
}

pub async fn list(pool: &DbPool) -> OpsResult<Vec<Account>> {
    let mut conn = pool.get().await?;
    Ok(accounts::table
        .order(accounts::accountcode)
        .select(Account::as_select())
        .load(&mut conn)
        .await?)
}

pub async fn find(pool: &DbPool, accountcode: &str) -> OpsResult<Account> {
    let mut conn = pool.get().await?;
    accounts::table
        .filter(accounts::accountcode.eq(accountcode))
        .select(Account::as_select())
        .first(&mut conn)
        .await
        .map_err(|e| Refusals::missing(format!("account `{accountcode}` not found")).error(e))
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
    /// PEM of the CA that signed a private callback endpoint's certificate (trusted instead of
    /// the public roots for this account); `Some(None)` clears it.
    pub callback_ca_cert: Option<Option<String>>,
}

fn map_update_error(code: &str, e: diesel::result::Error) -> OpsError {
    Refusals::missing(format!("account `{code}` not found"))
        .or_invalid("invalid setting")
        .error(e)
}

/// Validates and applies an update; returns the account as it now is.
pub async fn update(
    pool: &DbPool,
    code: &str,
    mut change: AccountUpdate,
    allow_http_loopback: bool,
) -> OpsResult<Account> {
    if let Some(country) = &change.default_country {
        let upper = country.trim().to_ascii_uppercase();
        parse_country(&upper).map_err(|e| OpsError::invalid(format!("country: {e}")))?;
        change.default_country = Some(upper);
    }
    if let Some(Some(url)) = &change.callback_url {
        check_callback_url(url, allow_http_loopback).await?;
    }
    if let Some(Some(pem)) = &change.callback_ca_cert {
        dialer_core::ca_cert::check_pem(pem)
            .map_err(|e| OpsError::invalid(format!("callback CA certificate: {e}")))?;
    }
    if let Some(Some(hours)) = &change.calling_hours {
        dialer_core::calling_hours::CallingHours::from_json(hours).map_err(OpsError::invalid)?;
    }
    if let Some(list) = &change.retry_on {
        for d in list {
            if !d
                .parse::<dialer_core::domain::Disposition>()
                .is_ok_and(|d| d.is_retryable())
            {
                return Err(OpsError::invalid(format!(
                    "retry_on: `{d}` is not a retryable disposition"
                )));
            }
        }
    }
    if let Some(list) = &mut change.allowed_countries {
        for c in list.iter_mut() {
            *c = c.trim().to_ascii_uppercase();
            parse_country(c).map_err(|e| OpsError::invalid(format!("allowed countries: {e}")))?;
        }
    }
    let bad_prefix = |p: &&String| {
        !(p.starts_with('+') && p.len() > 1 && p[1..].bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(bad) = change.allowed_prefixes.iter().flatten().find(bad_prefix) {
        return Err(OpsError::invalid(format!(
            "allowed prefix `{bad}` must be + and digits, e.g. +9198"
        )));
    }
    let mut conn = pool.get().await?;
    conn.transaction::<Account, OpsError, _>(async |conn| {
        if let Some(tz) = &change.timezone {
            check_timezone(conn, tz).await?;
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
pub async fn set_status(pool: &DbPool, code: &str, status: &str) -> OpsResult<Account> {
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
) -> OpsResult<(String, i64)> {
    let account = find(pool, code).await?;
    let key = generate_api_key().map_err(OpsError::internal)?;
    let mut conn = pool.get().await?;
    let revoked = conn
        .transaction::<i64, OpsError, _>(async |conn| {
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
            add_key(conn, account.id, &key, "rotated").await?;
            Ok(revoked)
        })
        .await?;
    Ok((key.key, revoked))
}

/// Current use of the account's quotas.
#[derive(Debug, diesel::QueryableByName, serde::Serialize, utoipa::ToSchema)]
pub struct AccountUsage {
    /// Calls not yet at their final outcome (counted against `max_queued_calls`).
    #[diesel(sql_type = BigInt)]
    pub queued_calls: i64,
    /// Calls submitted today in the account's timezone (counted against `max_calls_per_day`).
    #[diesel(sql_type = BigInt)]
    pub calls_today: i64,
}

pub async fn usage(pool: &DbPool, account: &Account) -> OpsResult<AccountUsage> {
    let pending = CallStatus::sql_list(|s| !s.is_final());
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(format!(
        "SELECT count(*) FILTER (WHERE status IN ({pending})) AS queued_calls,
                count(*) FILTER (WHERE created_at >= (date_trunc('day', now() AT TIME ZONE $2) AT TIME ZONE $2)) AS calls_today
         FROM calls WHERE account_id = $1"
    ))
    .bind::<BigInt, _>(account.id)
    .bind::<Text, _>(&account.timezone)
    .get_result(&mut conn)
    .await?)
}

/// An IANA zone name PostgreSQL knows; asking it keeps one source of truth.
async fn check_timezone(conn: &mut AsyncPgConnection, tz: &str) -> OpsResult<()> {
    diesel::sql_query("SELECT now() AT TIME ZONE $1")
        .bind::<Text, _>(tz)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|_| OpsError::invalid(format!("unknown timezone `{tz}`")))
}

/// A new API key of the account (its hash and prefix; the key itself is shown once).
async fn add_key(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    key: &NewApiKey,
    label: &str,
) -> diesel::QueryResult<usize> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::account_id.eq(account_id),
            api_keys::key_hash.eq(key.hash.as_slice()),
            api_keys::key_prefix.eq(&key.prefix),
            api_keys::label.eq(label),
        ))
        .execute(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::check_callback_url;

    #[tokio::test]
    async fn callback_urls() {
        let ok = async |url: &str, allow: bool| check_callback_url(url, allow).await.is_ok();
        assert!(ok("https://93.184.216.34/hook", false).await);
        assert!(!ok("http://93.184.216.34/hook", true).await);
        assert!(!ok("http://127.0.0.1:8080/hook", false).await);
        assert!(ok("http://127.0.0.1:8080/hook", true).await);
        assert!(ok("http://localhost:8080/hook", true).await);
        assert!(!ok("ftp://x", true).await);
        assert!(!ok("https://10.0.0.1/hook", true).await);
        assert!(!ok("https://169.254.169.254/latest", false).await);
        assert!(!ok("https://[::1]/hook", false).await);
        // a name is judged by its addresses
        assert!(!ok("https://localhost/hook", false).await);
        let err = check_callback_url("https://user:hunter2@93.184.216.34/", false)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("user name or password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
