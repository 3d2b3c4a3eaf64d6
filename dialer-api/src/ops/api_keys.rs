//! An account's API keys as the account manages them (`GET`/`POST /account/keys`, `DELETE
//! /account/keys/{key_id}`): a new key is shown once; a revoked key stops at once. The last
//! active key cannot be revoked through the API, so an account never locks itself out (an
//! operator can, with `dialerctl account suspend` or a rotation).

use chrono::{DateTime, Utc};
use diesel::prelude::{ExpressionMethods, QueryDsl};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};

use dialer_core::credentials::{generate_api_key, generate_test_api_key};
use dialer_core::db::DbPool;
use dialer_core::schema::api_keys;

use crate::ops::error::{OpsError, OpsResult};

/// Characters of a key's label.
pub const MAX_LABEL_CHARS: usize = 100;

/// A key as its account sees it: never the key, only its first characters.
#[derive(Debug, diesel::QueryableByName, serde::Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    #[diesel(sql_type = BigInt)]
    pub key_id: i64,
    /// The key's first characters, to recognise it.
    #[diesel(sql_type = Text)]
    pub prefix: String,
    #[diesel(sql_type = Text)]
    pub label: String,
    #[diesel(sql_type = Timestamptz)]
    #[serde(serialize_with = "dialer_core::event_body::serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last used, to the minute (written at most once a minute per API process).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    #[serde(serialize_with = "dialer_core::event_body::serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    #[serde(serialize_with = "dialer_core::event_body::serialize_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key of this request.
    #[diesel(sql_type = Bool)]
    pub current: bool,
}

/// The account's keys, newest first (revoked ones too).
pub async fn list(pool: &DbPool, account_id: i64, current_key: i64) -> OpsResult<Vec<KeyInfo>> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT id AS key_id, key_prefix AS prefix, label, created_at, last_used_at, revoked_at,
                id = $2 AS current
         FROM api_keys WHERE account_id = $1 ORDER BY id DESC",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(current_key)
    .load(&mut conn)
    .await?)
}

/// A new key, to show once.
pub struct CreatedKey {
    pub key_id: i64,
    pub api_key: String,
    pub prefix: String,
}

/// A new key of the account (a test twin's keys, `test`, read `dk_test_...`).
pub async fn create(
    pool: &DbPool,
    account_id: i64,
    test: bool,
    label: &str,
) -> OpsResult<CreatedKey> {
    let key = match test {
        true => generate_test_api_key(),
        false => generate_api_key(),
    }
    .map_err(OpsError::internal)?;
    let mut conn = pool.get().await?;
    let key_id: i64 = diesel::insert_into(api_keys::table)
        .values((
            api_keys::account_id.eq(account_id),
            api_keys::key_hash.eq(key.hash.as_slice()),
            api_keys::key_prefix.eq(&key.prefix),
            api_keys::label.eq(label),
        ))
        .returning(api_keys::id)
        .get_result(&mut conn)
        .await?;
    Ok(CreatedKey {
        key_id,
        api_key: key.key,
        prefix: key.prefix,
    })
}

/// Revokes one of the account's keys. Another account's key, or none, is `404`; an already
/// revoked one is answered as revoked again; the last active key is `409 last_active_key`.
pub async fn revoke(pool: &DbPool, account_id: i64, key_id: i64) -> OpsResult<DateTime<Utc>> {
    let mut conn = pool.get().await?;
    conn.transaction::<_, OpsError, _>(async |conn| {
        // The account's keys locked in one order, so two revocations at once cannot both see
        // the other's key still active.
        let keys: Vec<(i64, Option<DateTime<Utc>>)> = api_keys::table
            .filter(api_keys::account_id.eq(account_id))
            .order(api_keys::id)
            .select((api_keys::id, api_keys::revoked_at))
            .for_update()
            .load(conn)
            .await?;
        let Some((_, revoked_at)) = keys.iter().find(|(id, _)| *id == key_id) else {
            return Err(OpsError::not_found(format!(
                "no API key {key_id} in this account"
            )));
        };
        if let Some(at) = revoked_at {
            return Ok(*at);
        }
        if keys.iter().filter(|(_, r)| r.is_none()).count() == 1 {
            return Err(OpsError::conflict(
                "last_active_key",
                "this is the account's last active key; create another before revoking it",
            ));
        }
        Ok(
            diesel::update(api_keys::table.filter(api_keys::id.eq(key_id)))
                .set(api_keys::revoked_at.eq(diesel::dsl::now))
                .returning(api_keys::revoked_at)
                .get_result::<Option<DateTime<Utc>>>(conn)
                .await?
                .unwrap_or_else(Utc::now),
        )
    })
    .await
}
