//! Do-not-call lists (global, or per account): numbers on them are rejected at submission as
//! `do_not_call`, and the dispatcher skips them if added later. Operators manage every list
//! (`dialerctl dnc`); an account manages its own through the API, except the entries its callees
//! made by pressing the opt-out digit ([`DncSource::OptOut`]).

use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use dialer_core::db::DbPool;
use dialer_core::domain::DncSource;
use dialer_core::phone::{E164, parse_country};

use crate::ops::error::{OpsError, OpsResult};

/// Numbers per `POST /dnc`.
pub const MAX_NUMBERS: usize = 10_000;
/// Characters of a client's `reason`.
pub const MAX_REASON_CHARS: usize = 200;

pub struct ImportOutcome {
    pub added: usize,
    pub already_listed: usize,
    /// (index in the input, text) of the entries that are not numbers.
    pub invalid: Vec<(usize, String)>,
}

/// Adds numbers (read with `country` for national forms) in one statement; a number already on
/// the list keeps its entry (and its source).
pub async fn add_many(
    pool: &DbPool,
    account_id: Option<i64>,
    country: &str,
    numbers: &[String],
    reason: &str,
    source: DncSource,
) -> OpsResult<ImportOutcome> {
    let country = parse_country(country).map_err(|e| OpsError::invalid(e.to_string()))?;
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for (i, raw) in numbers.iter().enumerate() {
        match E164::parse(raw.trim(), country) {
            Ok(n) => valid.push(n.into_string()),
            Err(_) => invalid.push((i, raw.clone())),
        }
    }
    valid.sort();
    valid.dedup();
    let mut conn = pool.get().await?;
    // The two partial unique indexes (global / per account) are the conflict targets.
    let conflict = if account_id.is_some() {
        "(account_id, phone_e164) WHERE account_id IS NOT NULL"
    } else {
        "(phone_e164) WHERE account_id IS NULL"
    };
    let added = diesel::sql_query(format!(
        "INSERT INTO dnc_numbers (account_id, phone_e164, reason, source)
         SELECT $1, n, $3, $4 FROM UNNEST($2::text[]) AS n
         ON CONFLICT {conflict} DO NOTHING"
    ))
    .bind::<Nullable<BigInt>, _>(account_id)
    .bind::<Array<Text>, _>(&valid)
    .bind::<Text, _>(reason)
    .bind::<Text, _>(source)
    .execute(&mut conn)
    .await?;
    Ok(ImportOutcome {
        added,
        already_listed: valid.len() - added,
        invalid,
    })
}

/// Removes a number; returns whether it was listed. Operators remove any entry.
pub async fn remove(
    pool: &DbPool,
    account_id: Option<i64>,
    country: &str,
    number: &str,
) -> OpsResult<bool> {
    let country = parse_country(country).map_err(|e| OpsError::invalid(e.to_string()))?;
    let n =
        E164::parse(number, country).map_err(|e| OpsError::invalid(format!("`{number}`: {e}")))?;
    let mut conn = pool.get().await?;
    let removed = diesel::sql_query(
        "DELETE FROM dnc_numbers WHERE phone_e164 = $2 AND account_id IS NOT DISTINCT FROM $1",
    )
    .bind::<Nullable<BigInt>, _>(account_id)
    .bind::<Text, _>(n.as_str())
    .execute(&mut conn)
    .await?;
    Ok(removed > 0)
}

/// One entry of an account's list, as the account sees it.
#[derive(Debug, diesel::QueryableByName, serde::Serialize, utoipa::ToSchema)]
pub struct DncEntry {
    #[serde(skip)]
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// E.164.
    #[diesel(sql_type = Text)]
    pub phone_number: String,
    /// `client` (added through the API), `operator`, or `opt_out` (the callee pressed the
    /// opt-out digit; only an operator may remove it).
    #[diesel(sql_type = Text)]
    #[schema(value_type = String)]
    pub source: DncSource,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Timestamptz)]
    #[serde(serialize_with = "dialer_core::event_body::serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// The account's entries after id `after`, oldest first (the order they were added in).
pub async fn page(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    after: i64,
    limit: i64,
) -> OpsResult<Vec<DncEntry>> {
    Ok(diesel::sql_query(
        "SELECT id, phone_e164 AS phone_number, source, reason, created_at FROM dnc_numbers
         WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// The account removes one of its entries: `404` when the number is not on its list, `409
/// dnc_entry_protected` for an opt-out (the person asked not to be called; an operator decides).
pub async fn remove_own(pool: &DbPool, account_id: i64, number: &E164) -> OpsResult<()> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = Text)]
        source: DncSource,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        removed: bool,
    }
    let mut conn = pool.get().await?;
    // One statement: the entry is read and, unless protected, deleted.
    let found: Option<Found> = diesel::sql_query(format!(
        "WITH entry AS (
            SELECT id, source FROM dnc_numbers WHERE account_id = $1 AND phone_e164 = $2
         ), gone AS (
            DELETE FROM dnc_numbers d USING entry
            WHERE d.id = entry.id AND entry.source <> '{protected}' RETURNING d.id
         )
         SELECT entry.source, EXISTS (SELECT 1 FROM gone) AS removed FROM entry",
        protected = DncSource::OptOut
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(number.as_str())
    .get_result(&mut conn)
    .await
    .optional()?;
    match found {
        None => Err(OpsError::not_found(
            "that number is not on the account's do-not-call list",
        )),
        Some(f) if !f.removed && !f.source.client_may_remove() => Err(OpsError::conflict(
            "dnc_entry_protected",
            "the callee opted out of calls by keypress; only an operator can remove this entry",
        )),
        Some(_) => Ok(()),
    }
}
