//! The expiry sweep: calls of batches whose `expires_at` passed end `call_expired` soon after
//! (within a sweep), whatever they were waiting for, and their events go out. The writes are the
//! lifecycle's ([`crate::lifecycle::expire_due_calls`]). Every dispatcher (every 2 s) and every
//! API process (with its outbox sweep) runs it, so calls expire even while no dispatcher runs;
//! several at once share the work (rows are taken `SKIP LOCKED`).

use diesel_async::AsyncConnection;
use tracing::info;

use crate::db::DbPool;
use crate::event_prompt;
use crate::lifecycle::{self, ExpiredCalls, LifecycleError};
use crate::service_error::ServiceError;
use crate::topology::Topology;

/// Calls ended per transaction: a large batch expires over a few transactions of one sweep,
/// none holding many row locks for long.
const CALLS_PER_TRANSACTION: i64 = 5_000;
/// Transactions per sweep at most: the rest waits for the next sweep.
const TRANSACTIONS_PER_SWEEP: usize = 20;

/// Expires what is due and publishes the events written.
pub async fn expire_due(
    pool: &DbPool,
    channel: &lapin::Channel,
    topology: &Topology,
) -> Result<(), ServiceError> {
    let mut batches: Vec<i64> = Vec::new();
    let mut conn = pool.get().await?;
    for _ in 0..TRANSACTIONS_PER_SWEEP {
        let done: Vec<ExpiredCalls> = conn
            .transaction::<_, lifecycle::LifecycleError, _>(async |conn| {
                lifecycle::expire_due_calls(conn, CALLS_PER_TRANSACTION).await
            })
            .await
            .map_err(|e| match e {
                LifecycleError::Db(e) => ServiceError::from(e),
                LifecycleError::Body(e) => {
                    ServiceError::from(diesel::result::Error::SerializationError(Box::new(e)))
                }
            })?;
        let n: i64 = done.iter().map(|e| e.expired).sum();
        for e in &done {
            info!(
                batch = e.batch_pk,
                expired = e.expired,
                batch_completed = e.batch_completed,
                "calls expired"
            );
            if !batches.contains(&e.batch_pk) {
                batches.push(e.batch_pk);
            }
        }
        if n < CALLS_PER_TRANSACTION {
            break;
        }
    }
    drop(conn);
    if !batches.is_empty() {
        // Not every expired call queued an event (accounts without a callback URL), but this
        // runs seldom: prompt anyway. A lost prompt waits for the worker's poll.
        event_prompt::prompt(channel, topology, &batches).await?;
    }
    Ok(())
}
