//! Dispatch: queued calls become `scheduled` and get a dial job in the outbox, in one
//! transaction; the jobs are then published to RabbitMQ with confirms. Concurrent or repeated
//! dispatches cannot schedule a call twice: the update takes only `queued` rows, and row locks
//! make a second dispatch re-check them after the first commits.

use std::sync::Arc;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;

use dialer_core::db::DbPool;
use dialer_core::domain::BatchStatus;
use dialer_core::lifecycle;

use crate::broker::Broker;
use crate::ops::batches::find_batch;
use crate::ops::dry_run;
use crate::ops::error::{OpsError, OpsResult};
use crate::ops::handoff::{Handoff, hand_off};

#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatchOutcome {
    pub dispatched: i64,
    /// Client batch ids that had calls dispatched.
    pub batches: Vec<i64>,
    #[serde(skip)]
    pub batch_pks: Vec<i64>,
}

/// Schedules the queued calls of the account's dispatchable batches (or of one batch), inside
/// the caller's transaction.
pub async fn schedule_in_tx(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    only_batch_pk: Option<i64>,
) -> diesel::QueryResult<DispatchOutcome> {
    let rows = lifecycle::schedule::schedule_queued(conn, account_id, only_batch_pk).await?;
    Ok(DispatchOutcome {
        dispatched: rows.iter().map(|r| r.n).sum(),
        batches: rows.iter().map(|r| r.batch_id).collect(),
        batch_pks: rows.iter().map(|r| r.batch_pk).collect(),
    })
}

/// The whole dispatch of the contract: `batch_id` limits it to one batch.
pub async fn dispatch(
    pool: &DbPool,
    broker: &Arc<Broker>,
    account_id: i64,
    batch_id: Option<i64>,
    how: Handoff,
) -> OpsResult<DispatchOutcome> {
    let mut conn = pool.get().await?;
    let outcome = conn
        .transaction::<DispatchOutcome, OpsError, _>(async |conn| {
            let only = match batch_id {
                None => None,
                Some(id) => {
                    let batch = find_batch(conn, account_id, id).await?;
                    match batch.status {
                        BatchStatus::Cancelled => {
                            return Err(OpsError::conflict(
                                "batch_closed",
                                format!("batch {id} is cancelled"),
                            ));
                        }
                        BatchStatus::Paused => {
                            return Err(OpsError::conflict(
                                "batch_paused",
                                format!("batch {id} is paused; resume it to continue dialing"),
                            ));
                        }
                        _ => Some(batch.id),
                    }
                }
            };
            Ok(schedule_in_tx(conn, account_id, only).await?)
        })
        .await?;
    drop(conn);
    dialer_core::failpoint::hit("dispatch-after-commit");
    hand_off(pool, broker, outcome.dispatched, &outcome.batch_pks, how).await;
    Ok(outcome)
}

/// The dry run of a dispatch: of the account's batches (or one of them, by its client
/// `batch_id`), or of every account when `account_id` is none. A paused batch is reported, not
/// refused: its calls count under `paused`.
pub async fn dry_run(
    pool: &DbPool,
    account_id: Option<i64>,
    batch_id: Option<i64>,
) -> OpsResult<dry_run::DryRun> {
    let mut conn = pool.get().await?;
    let batch_pk = match (account_id, batch_id) {
        (Some(account), Some(id)) => Some(find_batch(&mut conn, account, id).await?.id),
        (None, Some(_)) => {
            return Err(OpsError::invalid(
                "a batch is named within its account: give the account too",
            ));
        }
        (_, None) => None,
    };
    let scope = dry_run::Scope {
        account_id,
        batch_pk,
    };
    dry_run::evaluate(&mut conn, scope, dry_run::Mode::AsIfDispatched).await
}
