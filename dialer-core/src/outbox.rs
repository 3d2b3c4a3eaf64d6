//! What the two outboxes (dial jobs, call events) share: their error, and the loop that
//! publishes unpublished rows a chunk at a time on one connection until a chunk comes back short.

use diesel_async::AsyncPgConnection;

use crate::db::{DbError, DbPool};

/// Rows one chunk takes at the most (one transaction, one publish, one marking statement).
pub(crate) const CHUNK: i64 = 500;

/// An outbox fails in the database or in the broker.
pub type OutboxError = crate::ServiceError;

/// One chunk of an outbox: lock up to [`CHUNK`] unpublished rows, publish them confirmed, mark
/// them published, commit; returns how many rows it handled.
pub(crate) trait Chunk {
    fn publish(
        &self,
        conn: &mut AsyncPgConnection,
    ) -> impl Future<Output = Result<usize, OutboxError>> + Send;
}

/// Publishes `chunk` after chunk until one handles fewer than [`CHUNK`] rows; returns how many
/// rows were handled in all.
pub(crate) async fn drain(pool: &DbPool, chunk: impl Chunk + Sync) -> Result<usize, OutboxError> {
    let mut total = 0;
    let mut conn = pool.get().await.map_err(DbError::from)?;
    loop {
        let n = chunk.publish(&mut conn).await?;
        total += n;
        if (n as i64) < CHUNK {
            return Ok(total);
        }
    }
}
