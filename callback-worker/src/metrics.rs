//! The callback worker's Prometheus metrics (`GET /metrics` on `DIALER_CALLBACK_METRICS_ADDR`):
//! deliveries by result and attempt latency, counted once their outcome is recorded; each
//! account's backlog and the age of its oldest undelivered event, read from the queue every
//! [`BACKLOG_EVERY`]; and each endpoint's circuit.

use std::collections::HashSet;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::RunQueryDsl;
use tokio::sync::watch;

use crate::record::{Outcome, Resolution};
use dialer_core::db::DbPool;

/// How often the backlog is read (one scan of the queue).
pub const BACKLOG_EVERY: Duration = Duration::from_secs(15);

/// Buckets of `dialer_callback_attempt_seconds`: from a receiver next door to the timeout.
pub const ATTEMPT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// `result` label of an outcome.
fn result(resolution: &Resolution) -> &'static str {
    match resolution {
        Resolution::Delivered => "delivered",
        Resolution::RetryAt(_) => "retry",
        Resolution::Failed => "failed",
        Resolution::Released(_) => "released",
        Resolution::Skipped(_) => "skipped",
    }
}

/// Outcomes just written: counted by result, their tries' latency by answer class.
pub fn recorded(outcomes: &[Outcome]) {
    for o in outcomes {
        metrics::counter!("dialer_callback_deliveries_total", "result" => result(&o.resolution))
            .increment(1);
        if let Some(a) = &o.attempt {
            let class = match (a.status_code, &a.error) {
                (Some(s), None) if (200..300).contains(&s) => "2xx",
                (Some(s), None) if (400..500).contains(&s) => "4xx",
                (Some(s), None) if (500..600).contains(&s) => "5xx",
                (Some(_), None) => "other",
                _ => "error",
            };
            let seconds = f64::from(a.latency_ms.unwrap_or(0).max(0)) / 1000.0;
            metrics::histogram!("dialer_callback_attempt_seconds", "answer" => class)
                .record(seconds);
        }
    }
}

/// An endpoint's circuit opened (`true`) or closed again.
pub fn circuit(account_id: i64, open: bool) {
    metrics::gauge!("dialer_callback_circuit_open", "account_id" => account_id.to_string())
        .set(if open { 1.0 } else { 0.0 });
}

/// One account's undelivered events.
#[derive(Debug, QueryableByName)]
pub struct Backlog {
    #[diesel(sql_type = Text)]
    pub accountcode: String,
    #[diesel(sql_type = BigInt)]
    pub queued: i64,
    #[diesel(sql_type = Double)]
    pub oldest_seconds: f64,
}

/// Each account's undelivered events and the age of its oldest (event ids grow with time, so
/// the oldest is the lowest), in one scan of the queue.
const BACKLOG_SQL: &str = "\
WITH per AS (
    SELECT account_id, count(*) AS queued, min(event_pk) AS first FROM callback_queue GROUP BY account_id
)
SELECT a.accountcode, per.queued,
       greatest(extract(epoch FROM now() - e.occurred_at), 0)::float8 AS oldest_seconds
FROM per JOIN accounts a ON a.id = per.account_id JOIN call_events e ON e.id = per.first";

/// Sets the backlog gauges every [`BACKLOG_EVERY`] until `stop`; an account whose backlog
/// emptied goes back to 0.
pub async fn backlog_loop(pool: DbPool, mut stop: watch::Receiver<bool>) {
    let mut shown: HashSet<String> = HashSet::new();
    loop {
        match read_backlog(&pool).await {
            Ok(rows) => {
                let now: HashSet<String> = rows.iter().map(|r| r.accountcode.clone()).collect();
                for gone in shown.difference(&now) {
                    set_backlog(gone, 0, 0.0);
                }
                for r in &rows {
                    set_backlog(&r.accountcode, r.queued, r.oldest_seconds);
                }
                shown = now;
            }
            Err(e) => tracing::warn!(error = %e, "callback backlog not read for metrics"),
        }
        tokio::select! {
            _ = tokio::time::sleep(BACKLOG_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn set_backlog(account: &str, queued: i64, oldest_seconds: f64) {
    let account = account.to_owned();
    metrics::gauge!("dialer_callback_backlog", "account" => account.clone()).set(queued as f64);
    metrics::gauge!("dialer_callback_oldest_pending_seconds", "account" => account)
        .set(oldest_seconds);
}

/// Every account with undelivered events (the gauges' source).
pub async fn read_backlog(pool: &DbPool) -> Result<Vec<Backlog>, dialer_core::db::DbError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(BACKLOG_SQL).load(&mut conn).await?)
}
