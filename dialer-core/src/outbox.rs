//! The outbox sweep (dial jobs, `dial_outbox`): publishes unpublished rows a chunk at a time on
//! one connection until a chunk comes back short.
//! Each chunk is one transaction: lock up to [`CHUNK`] rows with `SKIP LOCKED` (so concurrent
//! sweeps never publish the same row twice), publish them confirmed, mark them published.

use std::future::Future;

use diesel::sql_types::{Array, BigInt, Double};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::{DbError, DbPool};
use crate::prepared::PrepareOnce;
use crate::topology::Topology;

/// Rows one chunk takes at the most (one transaction, one publish, one marking statement).
pub(crate) const CHUNK: i64 = 500;

/// An outbox fails in the database or in the broker.
pub type OutboxError = crate::ServiceError;

/// Which unpublished rows a sweep takes.
#[derive(Debug, Clone, Copy)]
pub enum Pick<'a> {
    /// Older than the given seconds (the background sweep: younger ones are still being
    /// published by the request that wrote them).
    OlderThan(i64),
    /// The rows whose `column` is one of `ids` (a request publishing what it just wrote).
    Of {
        column: &'static str,
        ids: &'a [i64],
    },
}

/// An outbox, named by the scope its sweeps take (`dial_outbox::Scope`).
pub trait Outbox: Sync {
    /// One unpublished row.
    type Row: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static;
    /// The rows' `SELECT ... WHERE published_at IS NULL`, narrowed by [`Pick`].
    const SELECT: &'static str;
    /// The column of the time a row was written.
    const WRITTEN_AT: &'static str;
    /// `ORDER BY ... LIMIT $2 FOR UPDATE ... SKIP LOCKED`.
    const ORDER_AND_LOCK: &'static str;
    /// The table whose `published_at` a published row gets.
    const TABLE: &'static str;

    fn pick(&self) -> Pick<'_>;
    /// The row's id in [`Self::TABLE`].
    fn id(row: &Self::Row) -> i64;
    /// Publishes a chunk's rows, every one confirmed before this returns.
    fn publish(
        channel: &lapin::Channel,
        topology: &Topology,
        rows: Vec<Self::Row>,
    ) -> impl Future<Output = Result<(), OutboxError>> + Send;
}

/// Publishes the unpublished rows `scope` takes, chunk after chunk until one handles fewer than
/// [`CHUNK`] rows; returns how many rows were published in all.
pub async fn publish_pending<S: Outbox>(
    pool: &DbPool,
    channel: &lapin::Channel,
    topology: &Topology,
    scope: S,
) -> Result<usize, OutboxError> {
    let mut total = 0;
    let mut conn = pool.get().await.map_err(DbError::from)?;
    loop {
        let n = conn
            .transaction::<usize, OutboxError, _>(async |conn| {
                publish_chunk(conn, channel, topology, &scope).await
            })
            .await?;
        total += n;
        if (n as i64) < CHUNK {
            return Ok(total);
        }
    }
}

/// One chunk, inside its transaction; returns how many rows it published.
async fn publish_chunk<S: Outbox>(
    conn: &mut AsyncPgConnection,
    channel: &lapin::Channel,
    topology: &Topology,
    scope: &S,
) -> Result<usize, OutboxError> {
    let (select, lock) = (S::SELECT, S::ORDER_AND_LOCK);
    let rows: Vec<S::Row> = match scope.pick() {
        Pick::OlderThan(secs) => {
            let at = S::WRITTEN_AT;
            diesel::sql_query(format!(
                "{select} AND {at} < now() - make_interval(secs => $1) {lock}"
            ))
            .bind::<Double, _>(secs as f64)
            .bind::<BigInt, _>(CHUNK)
            .prepared()
            .load(conn)
            .await?
        }
        Pick::Of { column, ids } => {
            diesel::sql_query(format!("{select} AND {column} = ANY($1) {lock}"))
                .bind::<Array<BigInt>, _>(ids)
                .bind::<BigInt, _>(CHUNK)
                .prepared()
                .load(conn)
                .await?
        }
    };
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(S::id).collect();
    S::publish(channel, topology, rows).await?;
    let table = S::TABLE;
    diesel::sql_query(format!(
        "UPDATE {table} SET published_at = now() WHERE id = ANY($1)"
    ))
    .bind::<Array<BigInt>, _>(&ids)
    .prepared()
    .execute(conn)
    .await?;
    Ok(ids.len())
}
