//! Handing committed outbox rows (dial jobs, callback events) to RabbitMQ after a transaction.
//! A failure here loses nothing: the rows stay in the outbox and the sweeper publishes them
//! later.

use std::sync::Arc;

use dialer_core::db::DbPool;
use dialer_core::{dial_outbox, event_outbox};

use crate::broker::Broker;

/// Hands the committed dial jobs of these batches to RabbitMQ.
pub async fn publish_committed(pool: &DbPool, broker: &Broker, batch_pks: &[i64]) {
    if batch_pks.is_empty() {
        return;
    }
    let result: Result<usize, String> = async {
        let channel = broker.channel().await.map_err(|e| e.to_string())?;
        dial_outbox::publish_pending(
            pool,
            &channel,
            &broker.topology,
            dial_outbox::Scope::Batches(batch_pks),
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(n) => tracing::info!(published = n, "dial jobs published"),
        Err(e) => tracing::warn!(error = %e, "dial jobs left in the outbox for the sweeper"),
    }
}

/// Hands the committed callback events of this batch to RabbitMQ.
pub async fn publish_events(pool: &DbPool, broker: &Broker, batch_pk: i64) {
    let result: Result<usize, String> = async {
        let channel = broker.channel().await.map_err(|e| e.to_string())?;
        event_outbox::publish_pending(
            pool,
            &channel,
            &broker.topology,
            event_outbox::Scope::Batches(&[batch_pk]),
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "events left in the outbox for the sweeper");
    }
}

/// How a request hands its committed jobs to RabbitMQ.
#[derive(Debug, Clone, Copy)]
pub enum Handoff {
    /// Publish before returning (the CLI, whose process ends right after).
    Wait,
    /// Publish before answering up to this many jobs; more are published by a background task,
    /// so a million-call dispatch answers at once (the outbox keeps them safe meanwhile).
    BackgroundAbove(i64),
}

/// The API's hand-off: small dispatches are on the queue when the response is sent.
pub const API_HANDOFF: Handoff = Handoff::BackgroundAbove(10_000);

/// Publishes the dial jobs of `batch_pks` (`dispatched` of them), as `how` says.
pub async fn hand_off(
    pool: &DbPool,
    broker: &Arc<Broker>,
    dispatched: i64,
    batch_pks: &[i64],
    how: Handoff,
) {
    match how {
        Handoff::BackgroundAbove(limit) if dispatched > limit => {
            let (pool, broker, pks) = (pool.clone(), broker.clone(), batch_pks.to_vec());
            tokio::spawn(async move { publish_committed(&pool, &broker, &pks).await });
        }
        _ => publish_committed(pool, broker, batch_pks).await,
    }
}
