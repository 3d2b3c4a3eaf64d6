//! The closing sweep: calls of batches whose `expires_at` passed end `call_expired` soon after
//! (within a sweep), whatever they were waiting for, and the calls a large cancel left end
//! `call_cancelled`; their events go out. The writes are the lifecycle's
//! ([`crate::lifecycle::end_calls_of_closed_batches`]). Every dispatcher (every 2 s) and every
//! API process (with its outbox sweep) runs it, so calls end even while no dispatcher runs;
//! several at once share the work (rows are taken `SKIP LOCKED`).

use diesel_async::AsyncConnection;
use tracing::info;

use crate::db::DbPool;
use crate::event_prompt;
use crate::lifecycle::{self, ClosedBatchCalls, LifecycleError};
use crate::service_error::ServiceError;
use crate::topology::Topology;

/// Calls ended per transaction: a large batch ends over a few transactions of one sweep, none
/// holding many row locks for long.
const CALLS_PER_TRANSACTION: i64 = 5_000;
/// Transactions per sweep at most: the rest waits for the next sweep.
const TRANSACTIONS_PER_SWEEP: usize = 20;

/// Ends what is due and publishes the events written.
pub async fn end_closed(
    pool: &DbPool,
    channel: &lapin::Channel,
    topology: &Topology,
) -> Result<(), ServiceError> {
    let mut batches: Vec<i64> = Vec::new();
    let mut conn = pool.get().await?;
    for _ in 0..TRANSACTIONS_PER_SWEEP {
        let done: Vec<ClosedBatchCalls> = conn
            .transaction::<_, lifecycle::LifecycleError, _>(async |conn| {
                lifecycle::end_calls_of_closed_batches(conn, CALLS_PER_TRANSACTION).await
            })
            .await
            .map_err(|e| match e {
                LifecycleError::Db(e) => ServiceError::from(e),
                LifecycleError::Body(e) => {
                    ServiceError::from(diesel::result::Error::SerializationError(Box::new(e)))
                }
            })?;
        let n: i64 = done.iter().map(|e| e.ended).sum();
        for e in &done {
            info!(
                batch = e.batch_pk,
                ended = e.ended,
                event = %e.event,
                batch_completed = e.batch_completed,
                "calls of a closed batch ended"
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
        // Not every ended call queued an event (accounts without a callback URL), but this
        // runs seldom: prompt anyway. A lost prompt waits for the worker's poll.
        event_prompt::prompt(channel, topology, &batches).await?;
    }
    Ok(())
}
