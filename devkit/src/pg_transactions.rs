//! Transactions the run's database ran, from `pg_stat_database`: a count that moves far less
//! than CPU time on a shared machine, so a change in how many transactions a call costs shows
//! in one run. Backends report their counts at most once a second ("PGSTAT_MIN_INTERVAL"), so
//! a reading waits that long first.

use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use dialer_core::db::DbPool;

/// Long enough for every backend's pending counts to reach the shared statistics.
const REPORTED_WITHIN: Duration = Duration::from_millis(1_100);

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Transactions (committed and rolled back) of the pool's database so far, and when.
pub async fn reading(pool: &DbPool) -> Option<(i64, Instant)> {
    tokio::time::sleep(REPORTED_WITHIN).await;
    let mut conn = pool.get().await.ok()?;
    let c: Count = diesel::sql_query(
        "SELECT (xact_commit + xact_rollback)::bigint AS n FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .get_result(&mut conn)
    .await
    .ok()?;
    Some((c.n, Instant::now()))
}

/// Transactions between two readings, less `idle_per_sec` over the time between them (the
/// reading's own transaction is in the count and in the idle rate alike).
pub fn above_idle(start: (i64, Instant), end: (i64, Instant), idle_per_sec: f64) -> f64 {
    let secs = end.1.duration_since(start.1).as_secs_f64();
    ((end.0 - start.0) as f64 - idle_per_sec * secs).max(0.0)
}

/// Transactions a second between two readings.
pub fn per_second(start: (i64, Instant), end: (i64, Instant)) -> f64 {
    let secs = end.1.duration_since(start.1).as_secs_f64().max(1e-3);
    (end.0 - start.0) as f64 / secs
}

#[cfg(test)]
mod tests {
    use super::{above_idle, per_second};
    use std::time::{Duration, Instant};

    #[test]
    fn idle_transactions_are_taken_off() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(per_second((100, t0), (150, t1)), 5.0);
        // 1,000 in 10 s, 5 a second of them idle.
        assert_eq!(above_idle((0, t0), (1_000, t1), 5.0), 950.0);
        // Never below zero.
        assert_eq!(above_idle((0, t0), (10, t1), 5.0), 0.0);
    }
}
