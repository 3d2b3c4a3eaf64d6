//! Pacing shared by every dispatcher (an account's calls per second, the platform's): GCRA slots
//! reserved in PostgreSQL, one statement per reservation. Each slot is an instant at which one
//! call may be originated; consecutive slots of a scope are `1/rate` apart whichever process
//! holds them, so the limit holds in aggregate and calls are evenly spaced.

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

pub fn account_scope(account_id: i64) -> String {
    format!("account:{account_id}")
}

pub const GLOBAL_SCOPE: &str = "global";
