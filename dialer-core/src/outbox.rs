//! What the two outboxes (dial jobs, call events) share: their error, and the loop that
//! publishes unpublished rows a chunk at a time on one connection until a chunk comes back short.

use diesel::sql_types::{Array, BigInt, Double};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::{DbError, DbPool};
use crate::topology::Topology;

/// Rows one chunk takes at the most (one transaction, one publish, one marking statement).
pub(crate) const CHUNK: i64 = 500;

/// An outbox fails in the database or in the broker.
pub type OutboxError = crate::ServiceError;

/// One sweep of an outbox: the broker it publishes to and the outbox's `scope` (which rows).
pub(crate) struct Sweep<'a, S> {
    pub(crate) channel: &'a lapin::Channel,
    pub(crate) topology: &'a Topology,
    pub(crate) scope: S,
}

/// One chunk of an outbox: lock up to [`CHUNK`] unpublished rows, publish them confirmed, mark
/// them published, commit; returns how many rows it handled.
pub(crate) trait Chunk {
    fn publish(
        &self,
        conn: &mut AsyncPgConnection,
    ) -> impl Future<Output = Result<usize, OutboxError>> + Send;
}

/// Publishes unpublished rows of the outbox whose [`Sweep`] has `scope`, a chunk at a time;
/// returns how many were published.
pub(crate) async fn publish_pending<'a, S>(
    pool: &DbPool,
    channel: &'a lapin::Channel,
    topology: &'a Topology,
    scope: S,
) -> Result<usize, OutboxError>
where
    Sweep<'a, S>: Chunk + Sync,
{
    let sweep = Sweep {
        channel,
        topology,
        scope,
    };
    drain(pool, sweep).await
}

/// Locks the chunk's rows by `sql`, whose `$1` is the rows' minimum age in seconds and `$2`
/// the chunk's size (the background sweep).
pub(crate) async fn lock_older_than<T>(
    conn: &mut AsyncPgConnection,
    sql: &str,
    secs: i64,
) -> Result<Vec<T>, OutboxError>
where
    T: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    let rows = diesel::sql_query(sql)
        .bind::<Double, _>(secs as f64)
        .bind::<BigInt, _>(CHUNK)
        .load(conn)
        .await?;
    Ok(rows)
}

/// Locks the chunk's rows by `sql`, whose `$1` is the ids they belong to and `$2` the chunk's
/// size (a request publishing what it just wrote).
pub(crate) async fn lock_of<T>(
    conn: &mut AsyncPgConnection,
    sql: &str,
    ids: &[i64],
) -> Result<Vec<T>, OutboxError>
where
    T: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    let rows = diesel::sql_query(sql)
        .bind::<Array<BigInt>, _>(ids)
        .bind::<BigInt, _>(CHUNK)
        .load(conn)
        .await?;
    Ok(rows)
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
