//! Pacing shared by every dispatcher (an account's calls per second, the platform's), decided in
//! PostgreSQL, one statement per claimed group. An account's calls leave at least `1/rate`
//! apart whichever process holds them (a frontier per account, GCRA); with a platform limit,
//! each call also takes a free slot of the platform's calendar (`pacing_slots`: slot `k` is the
//! instant `k/rate`, one call each), so accounts interleave in it and no second holds more
//! than the platform's rate. Both are decided together (`pacing_departures`, migration
//! `2026-12-08-000001`): deciding them apart and leaving at the later of two slots bunched calls
//! behind one held back by the other limit.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dialer_core::prepared::PrepareOnce;
use diesel::QueryableByName;
use diesel::sql_types::{Double, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct First {
    #[diesel(sql_type = Timestamptz)]
    first: DateTime<Utc>,
}

/// Reserves `n` consecutive slots of `scope` at `rate` per second; returns their instants.
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    scope: &str,
    rate: f64,
    n: usize,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, diesel::result::Error> {
    if n == 0 || !(rate.is_finite() && rate > 0.0) {
        return Ok(vec![now; n]);
    }
    let interval = 1.0 / rate;
    let rows: Vec<First> = diesel::sql_query(
        "INSERT INTO pacing (scope, tat) VALUES ($1, $2 + make_interval(secs => $3 * $4)) \
         ON CONFLICT (scope) DO UPDATE \
         SET tat = GREATEST(pacing.tat, $2) + make_interval(secs => $3 * $4) \
         RETURNING tat - make_interval(secs => $3 * $4) AS first",
    )
    .bind::<Text, _>(scope)
    .bind::<Timestamptz, _>(now)
    .bind::<Integer, _>(n as i32)
    .bind::<Double, _>(interval)
    .prepared()
    .load(conn)
    .await?;
    let first = rows.into_iter().next().map_or(now, |r| r.first);
    let step = chrono::Duration::from_std(Duration::from_secs_f64(interval))
        .unwrap_or_else(|_| chrono::Duration::zero());
    Ok((0..n).map(|i| first + step * i as i32).collect())
}

#[derive(QueryableByName)]
struct Departures {
    #[diesel(sql_type = diesel::sql_types::Array<Timestamptz>)]
    departures: Vec<DateTime<Utc>>,
}

/// When each of `n` calls of an account leaves: at the account's `rate`, and in the
/// platform's calendar at `platform` calls per second when there is such a limit.
pub async fn departures(
    conn: &mut AsyncPgConnection,
    account: i64,
    rate: f64,
    platform: Option<f64>,
    n: usize,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, diesel::result::Error> {
    let platform = platform.filter(|p| p.is_finite() && *p > 0.0);
    if n == 0 {
        return Ok(Vec::new());
    }
    let Some(platform) = platform else {
        return reserve(conn, &account_scope(account), rate, n, now).await;
    };
    // An account without a rate is paced by the platform only.
    let interval = match rate.is_finite() && rate > 0.0 {
        true => 1.0 / rate,
        false => 0.0,
    };
    let rows: Vec<Departures> =
        diesel::sql_query("SELECT pacing_departures($1, $2, $3, $4, $5, $6) AS departures")
            .bind::<Text, _>(account_scope(account))
            .bind::<Double, _>(interval)
            .bind::<Text, _>(platform_scope(platform))
            .bind::<Double, _>(1.0 / platform)
            .bind::<Integer, _>(n as i32)
            .bind::<Timestamptz, _>(now)
            .prepared()
            .load(conn)
            .await?;
    Ok(rows
        .into_iter()
        .next()
        .map_or_else(|| vec![now; n], |r| r.departures))
}

/// The platform calendar's scope: its slots' width is in the name, so a changed
/// `DIALER_GLOBAL_CPS` starts a calendar of its own instead of misreading the old one.
fn platform_scope(rate: f64) -> String {
    format!("{GLOBAL_SCOPE}:{rate}")
}

pub fn account_scope(account_id: i64) -> String {
    format!("account:{account_id}")
}

pub const GLOBAL_SCOPE: &str = "global";
