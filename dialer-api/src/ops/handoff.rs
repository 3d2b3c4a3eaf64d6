//! Handing committed work to RabbitMQ after a transaction: dial jobs (a failure leaves them in
//! the outbox for the sweeper) and a prompt for callback events (a lost prompt waits for the
//! callback worker's poll; the events are in its queue).

use std::sync::Arc;
use std::time::Duration;

use dialer_core::db::DbPool;
use dialer_core::{dial_outbox, event_prompt};

use crate::broker::Broker;

/// How long a request waits for RabbitMQ to take its work before it answers anyway. The work is
/// committed already (dial jobs in the outbox, events in the worker's queue); a broker that
/// died without closing its connections (a crash, a host gone) would otherwise hold the request
/// until the connection's recovery gives up, past any client's timeout.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands the committed dial jobs of these batches to RabbitMQ.
pub async fn publish_committed(pool: &DbPool, broker: &Broker, batch_pks: &[i64]) {
    if batch_pks.is_empty() {
        return;
    }
    let what = "dial jobs left in the outbox for the sweeper";
    let publish = async {
        let channel = channel(broker, what).await?;
        let scope = dial_outbox::Scope::Batches(batch_pks);
        Some(dial_outbox::publish_pending(pool, &channel, &broker.topology, scope).await)
    };
    match tokio::time::timeout(HANDOFF_TIMEOUT, publish).await {
        Ok(Some(Ok(n))) => tracing::info!(published = n, "dial jobs published"),
        Ok(Some(Err(e))) => tracing::warn!(error = %e, "{what}"),
        Ok(None) => {}
        Err(_) => gave_up(broker, what).await,
    }
}

/// Prompts the callback worker for the committed events of this batch. Whether any of them
/// entered its queue is not asked (a control action is rare; a needless prompt costs one claim).
pub async fn prompt_events(broker: &Broker, batch_pk: i64) {
    let what = "callback events wait for the worker's poll";
    let prompt = async {
        let channel = channel(broker, what).await?;
        Some(event_prompt::prompt(&channel, &broker.topology, &[batch_pk]).await)
    };
    match tokio::time::timeout(HANDOFF_TIMEOUT, prompt).await {
        Ok(Some(Err(e))) => tracing::warn!(error = %e, "{what}"),
        Ok(_) => {}
        Err(_) => gave_up(broker, what).await,
    }
}

/// RabbitMQ did not answer in time: the connection is dropped, so the next request opens a
/// fresh one instead of waiting on it too.
async fn gave_up(broker: &Broker, what: &str) {
    tracing::warn!(
        seconds = HANDOFF_TIMEOUT.as_secs(),
        "RabbitMQ did not answer in time; {what}"
    );
    broker.forget().await;
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
