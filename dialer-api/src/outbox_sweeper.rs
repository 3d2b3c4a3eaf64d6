//! Background task: publishes dial jobs that were committed but never confirmed by RabbitMQ
//! (process killed between commit and publish, broker down at the time), and ends
//! the calls of expired batches (`call_expired`), so they expire on time even while no
//! dispatcher runs; and deletes recordings past their account's retention.

use std::time::Duration;

use dialer_core::dial_outbox::{self, OutboxError, Scope as DialScope};

use crate::state::AppState;

/// One sweep of the dial outbox and of expired batches; returns the dial jobs published.
pub async fn sweep_once(state: &AppState, grace: Duration) -> Result<usize, String> {
    let grace = grace.as_secs() as i64;
    let channel = state.broker.channel().await.map_err(|e| e.to_string())?;
    let (pool, topology) = (&state.pool, &state.broker.topology);
    let text = |e: OutboxError| e.to_string();
    let jobs = dial_outbox::publish_pending(pool, &channel, topology, DialScope::OlderThan(grace))
        .await
        .map_err(text)?;
    dialer_core::closing_sweep::end_closed(pool, &channel, topology)
        .await
        .map_err(text)?;
    Ok(jobs)
}

/// Recordings past their retention, a bounded number per sweep.
pub async fn expire_recordings(state: &AppState) -> Result<usize, String> {
    let mut conn = state.pool.get().await.map_err(|e| e.to_string())?;
    crate::ops::recordings::delete_expired(&mut conn, &state.recordings, chrono::Utc::now(), 500)
        .await
        .map_err(|e| e.to_string())
}

pub async fn run(state: AppState) {
    let interval = state.config.outbox_interval.max(Duration::from_millis(100));
    let grace = state.config.outbox_grace;
    loop {
        match sweep_once(&state, grace).await {
            Ok(0) => {}
            Ok(jobs) => tracing::warn!(jobs, "outbox sweep republished unconfirmed dial jobs"),
            Err(e) => tracing::warn!(error = %e, "outbox sweep failed; will retry"),
        }
        match expire_recordings(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recordings = n, "recordings past retention deleted"),
            Err(e) => tracing::warn!(error = %e, "recording retention sweep failed; will retry"),
        }
        tokio::time::sleep(interval).await;
    }
}
