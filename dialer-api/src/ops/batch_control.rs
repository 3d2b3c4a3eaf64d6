//! Batch control (pause, resume, cancel), shared by the API and dialerctl: the batch is locked,
//! the core's lifecycle changes its rows, and the committed outbox rows are handed to RabbitMQ.

use diesel_async::{AsyncConnection, AsyncPgConnection};

use dialer_core::db::DbPool;
use dialer_core::domain::BatchStatus;
use dialer_core::lifecycle::BatchRef;
use dialer_core::lifecycle::control as lifecycle;
use dialer_core::models::{Account, Batch};

use crate::broker::Broker;
use crate::ops::batches::{BatchSummary, find_batch, lock_batch, summary};
use crate::ops::error::{OpsError, OpsResult};
use crate::ops::handoff::{prompt_events, publish_committed};

/// What an operator or client does to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// No new call starts; calls in progress finish. Idempotent.
    Pause,
    /// Dialing continues without another dispatch.
    Resume,
    /// No new call starts; every call not yet dialed ends with a `call_cancelled` event: up to
    /// `CANCEL_AT_ONCE` (10,000) in the transaction of the status change, the rest of a larger
    /// batch by the closing sweep within seconds. Idempotent.
    Cancel,
}

/// What a control left for after the commit.
enum Effect {
    Nothing,
    /// Dial jobs re-armed for the outbox (resume).
    Rearmed,
    /// Events written (cancel): cancelled calls, and `batch_completed` when that finished it.
    Events(usize),
}

/// Applies `control` to the account's batch; returns the batch as it now is.
pub async fn control(
    pool: &DbPool,
    broker: &Broker,
    account: &Account,
    batch_id: i64,
    control: Control,
) -> OpsResult<BatchSummary> {
    let mut conn = pool.get().await?;
    let (summary, batch_pk, effect) = conn
        .transaction::<(BatchSummary, i64, Effect), OpsError, _>(async |conn| {
            // Before the batch's lock, as every claim of the account takes it: no claim of the
            // batch is half done while pause or cancel take back its unsent calls.
            lifecycle::lock_account_claims(conn, account.id).await?;
            let batch = lock_batch(conn, account.id, batch_id).await?;
            let effect = apply(conn, &batch, control).await?;
            let batch = find_batch(conn, account.id, batch_id).await?;
            let summary = summary(conn, &batch).await?;
            let effect = match effect {
                Effect::Events(n)
                    if n > 0
                        && summary.totals.pending_calls == 0
                        && account.callback_batch_events =>
                {
                    // Nothing left in progress: the cancel itself finishes the batch.
                    write_batch_completed(conn, account, &batch, &summary).await?;
                    Effect::Events(n + 1)
                }
                other => other,
            };
            Ok((summary, batch.id, effect))
        })
        .await?;
    drop(conn);
    match effect {
        Effect::Nothing | Effect::Events(0) => {}
        Effect::Rearmed => publish_committed(pool, broker, &[batch_pk]).await,
        Effect::Events(cancelled) => {
            tracing::info!(batch_id, cancelled, "batch cancelled");
            prompt_events(broker, batch_pk).await;
        }
    }
    Ok(summary)
}

/// The rows `control` changes in the locked batch, or why it cannot.
async fn apply(conn: &mut AsyncPgConnection, batch: &Batch, control: Control) -> OpsResult<Effect> {
    let closed = || {
        OpsError::conflict(
            "batch_closed",
            format!("batch {} is {}", batch.batch_id, batch.status),
        )
    };
    Ok(match (control, batch.status) {
        (Control::Pause, BatchStatus::Cancelled | BatchStatus::Completed) => return Err(closed()),
        (Control::Pause, BatchStatus::Pending | BatchStatus::Dispatching) => {
            lifecycle::pause(conn, batch.id).await?;
            Effect::Nothing
        }
        (Control::Resume, BatchStatus::Cancelled) => return Err(closed()),
        // Every call has its outcome: nothing is left to cancel, and the batch stays completed.
        (Control::Cancel, BatchStatus::Completed) => return Err(closed()),
        (Control::Resume, BatchStatus::Paused) => {
            lifecycle::resume(conn, batch.id, batch.dispatched_at.is_some()).await?;
            Effect::Rearmed
        }
        (Control::Cancel, status) if status != BatchStatus::Cancelled => {
            Effect::Events(lifecycle::cancel(conn, batch.id).await?)
        }
        _ => Effect::Nothing,
    })
}

/// The `batch_completed` event (for accounts that subscribe), through the core's one builder.
async fn write_batch_completed(
    conn: &mut AsyncPgConnection,
    account: &Account,
    batch: &Batch,
    summary: &BatchSummary,
) -> OpsResult<()> {
    let batch = BatchRef {
        batch_pk: batch.id,
        account_id: account.id,
        accountcode: &account.accountcode,
        batch_id: batch.batch_id,
        batch_events: account.callback_batch_events,
    };
    dialer_core::lifecycle::write_batch_completed(conn, &batch, &summary.state).await?;
    Ok(())
}
