//! Handing committed work to RabbitMQ after a transaction: dial jobs (a failure leaves them in
//! the outbox for the sweeper) and a prompt for callback events (a lost prompt waits for the
//! callback worker's poll; the events are in its queue).

use std::sync::Arc;

use dialer_core::db::DbPool;
use dialer_core::{dial_outbox, event_prompt};

use crate::broker::Broker;

/// Hands the committed dial jobs of these batches to RabbitMQ.
pub async fn publish_committed(pool: &DbPool, broker: &Broker, batch_pks: &[i64]) {
    if batch_pks.is_empty() {
        return;
    }
    let Some(channel) = channel(broker, "dial jobs left in the outbox for the sweeper").await
    else {
        return;
    };
    let scope = dial_outbox::Scope::Batches(batch_pks);
    match dial_outbox::publish_pending(pool, &channel, &broker.topology, scope).await {
        Ok(n) => tracing::info!(published = n, "dial jobs published"),
        Err(e) => tracing::warn!(error = %e, "dial jobs left in the outbox for the sweeper"),
    }
}

/// Prompts the callback worker for the committed events of this batch. Whether any of them
/// entered its queue is not asked (a control action is rare; a needless prompt costs one claim).
pub async fn prompt_events(broker: &Broker, batch_pk: i64) {
    let Some(channel) = channel(broker, "callback events wait for the worker's poll").await else {
        return;
    };
    if let Err(e) = event_prompt::prompt(&channel, &broker.topology, &[batch_pk]).await {
        tracing::warn!(error = %e, "callback events wait for the worker's poll");
    }
}

/// A channel to publish on; without one, `what` (what becomes of the work) is logged.
async fn channel(broker: &Broker, what: &str) -> Option<lapin::Channel> {
    match broker.channel().await {
        Ok(channel) => Some(channel),
        Err(e) => {
            tracing::warn!(error = %e, "{what}");
            None
        }
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
