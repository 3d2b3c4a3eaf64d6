//! Do-not-call lists (global, or per account): numbers on them are rejected at submission as
//! `do_not_call`, and the dispatcher skips them if added later.

use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;

use dialer_core::db::DbPool;
use dialer_core::phone::{E164, parse_country};

use crate::ops::error::{OpsError, OpsResult};

pub struct ImportOutcome {
    pub added: usize,
    pub already_listed: usize,
    /// (line number, text) of lines that are not numbers.
    pub invalid: Vec<(usize, String)>,
}

/// Adds numbers (read with `country` for national forms) in one statement.
pub async fn add_many(
    pool: &DbPool,
    account_id: Option<i64>,
    country: &str,
    numbers: &[String],
    reason: &str,
) -> OpsResult<ImportOutcome> {
    let country = parse_country(country).map_err(|e| OpsError::invalid(e.to_string()))?;
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for (i, raw) in numbers.iter().enumerate() {
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        match E164::parse(raw, country) {
            Ok(n) => valid.push(n.into_string()),
            Err(_) => invalid.push((i + 1, raw.to_owned())),
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
        "INSERT INTO dnc_numbers (account_id, phone_e164, reason)
         SELECT $1, n, $3 FROM UNNEST($2::text[]) AS n
         ON CONFLICT {conflict} DO NOTHING"
    ))
    .bind::<Nullable<BigInt>, _>(account_id)
    .bind::<Array<Text>, _>(&valid)
    .bind::<Text, _>(reason)
    .execute(&mut conn)
    .await?;
    Ok(ImportOutcome {
        added,
        already_listed: valid.len() - added,
        invalid,
    })
}

/// Removes a number; returns whether it was listed.
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
