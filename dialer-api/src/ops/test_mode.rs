//! Test mode: an account's test-mode data lives in its test twin, an account row of its own
//! (listed in `test_twins` with its live account; its code is the live code with `-test`), made
//! from the live account's settings when its first test-mode key is created. Everything scoped
//! to an account (batches, calls, do-not-call entries, callback settings, keys) is thereby
//! scoped to a mode, and the dispatcher sends a twin's calls to simulated PBXs only
//! (`asterisk_servers.simulated`), never a live account's.

use diesel::OptionalExtension;
use diesel::prelude::{ExpressionMethods, JoinOnDsl, QueryDsl, SelectableHelper};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use dialer_core::db::DbPool;
use dialer_core::models::Account;
use dialer_core::schema::{accounts, test_twins};

use crate::ops::error::{OpsError, OpsResult, Refusals};

/// The settings a twin starts with: the live account's, its secrets included (a client checks
/// test callbacks with the secret it has). Keys, batches and do-not-call entries are its own.
const COPIED: &str = "name, status, default_country, timezone, calling_hours, caller_id, \
    dial_context, dial_exten, ring_timeout_seconds, max_attempts, retry_delay_seconds, retry_on, \
    max_call_seconds, allowed_countries, allowed_prefixes, redial_window_hours, \
    max_rows_per_request, max_queued_calls, max_calls_per_day, calls_per_second, \
    max_concurrent_calls, api_requests_per_second, callback_url, callback_secret, \
    callback_batch_events, callback_ca_cert";

/// The live account `account_id` is the test twin of; none for a live account.
pub async fn live_of(conn: &mut AsyncPgConnection, account_id: i64) -> OpsResult<Option<Account>> {
    Ok(test_twins::table
        .inner_join(accounts::table.on(accounts::id.eq(test_twins::live_account_id)))
        .filter(test_twins::account_id.eq(account_id))
        .select(Account::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The test twin of `live`, made now if it has none; a twin is its own twin.
pub async fn twin(pool: &DbPool, live: &Account) -> OpsResult<Account> {
    let mut conn = pool.get().await?;
    if live_of(&mut conn, live.id).await?.is_some() {
        return Ok(live.clone());
    }
    conn.transaction::<_, OpsError, _>(async |conn| {
        // Two first test keys at once make one twin.
        diesel::sql_query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
            .bind::<BigInt, _>(live.id)
            .execute(conn)
            .await?;
        if let Some(twin) = find_twin(conn, live.id).await? {
            return Ok(twin);
        }
        diesel::sql_query(format!(
            "WITH t AS (INSERT INTO accounts (accountcode, {COPIED})
                        SELECT accountcode || '-test', {COPIED} FROM accounts WHERE id = $1
                        RETURNING id)
             INSERT INTO test_twins (account_id, live_account_id) SELECT id, $1 FROM t"
        ))
        .bind::<BigInt, _>(live.id)
        .execute(conn)
        .await
        .map_err(|e| {
            Refusals::taken(
                "test_mode_unavailable",
                format!(
                    "another account is named `{}-test`; an operator must rename it before \
                     this account can have a test mode",
                    live.accountcode
                ),
            )
            .error(e)
        })?;
        find_twin(conn, live.id)
            .await?
            .ok_or_else(|| OpsError::internal("the test twin was not written"))
    })
    .await
}

async fn find_twin(conn: &mut AsyncPgConnection, live_id: i64) -> OpsResult<Option<Account>> {
    Ok(test_twins::table
        .inner_join(accounts::table.on(accounts::id.eq(test_twins::account_id)))
        .filter(test_twins::live_account_id.eq(live_id))
        .select(Account::as_select())
        .first(conn)
        .await
        .optional()?)
}
