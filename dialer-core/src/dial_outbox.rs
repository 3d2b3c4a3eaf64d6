//! The dial outbox: `dial_jobs` rows are written in the same transaction that schedules their
//! calls, then handed to RabbitMQ with publisher confirms and marked `published_at`. A crash
//! between commit and publish leaves rows unpublished, and the next sweep publishes them, so no
//! call is lost. A crash after the confirm but before marking republishes a job: the dispatcher
//! claims each (call, attempt) with a conditional update, so a duplicate job never dials twice.

use diesel::sql_types::{Array, BigInt, Double, Integer, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::{DbError, DbPool};
use crate::prepared::PrepareOnce;
use crate::topology::{self, Topology};

/// The outbox fails in the database or in the broker.
pub type OutboxError = crate::ServiceError;

/// The message of a dial job on the dial queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, diesel::QueryableByName)]
pub struct DialJob {
    #[diesel(sql_type = BigInt)]
    pub job_id: i64,
    #[diesel(sql_type = BigInt)]
    pub call_pk: i64,
    #[diesel(sql_type = SqlUuid)]
    pub call_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = BigInt)]
    pub batch_pk: i64,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    /// The batch's priority when the job was published: among an account's jobs waiting in a
    /// dispatcher, higher ones are dialed first. Jobs published before it existed read as 0.
    #[serde(default)]
    #[diesel(sql_type = Integer)]
    pub priority: i32,
    /// The call is a test-mode account's: only a simulated PBX may take it. Jobs published
    /// before test mode existed read as live.
    #[serde(default)]
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub test_mode: bool,
}

impl DialJob {
    /// Stable per (call, attempt), so consumers and operators can spot a republished job.
    pub fn message_id(&self) -> String {
        format!("dial-{}-{}", self.call_pk, self.attempt)
    }
}

/// Which unpublished jobs a sweep takes.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every unpublished job older than the given seconds (the background sweep: younger ones
    /// are still being published by the request that wrote them).
    OlderThan(i64),
    /// Only these calls' jobs.
    Calls(&'a [i64]),
    /// Only these batches' jobs (a dispatch request publishing what it just committed).
    Batches(&'a [i64]),
}

/// Jobs one chunk takes at the most (one transaction, one publish, one marking statement).
const CHUNK: i64 = 500;

const SELECT: &str = "SELECT j.id AS job_id, j.call_pk, c.call_id, c.account_id, c.batch_pk, \
     j.attempt, b.priority, \
     EXISTS (SELECT 1 FROM test_twins t WHERE t.account_id = c.account_id) AS test_mode \
     FROM dial_jobs j JOIN calls c ON c.id = j.call_pk JOIN batches b ON b.id = c.batch_pk \
     WHERE j.published_at IS NULL";
const ORDER_AND_LOCK: &str = "ORDER BY j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED";

/// Publishes the unpublished jobs `scope` takes, a chunk at a time on one connection until a
/// chunk comes back short; returns how many were published in all. Each chunk is one
/// transaction: lock up to [`CHUNK`] jobs with `SKIP LOCKED` (so concurrent sweeps never
/// publish the same job twice), publish them confirmed, mark them published.
pub async fn publish_pending(
    pool: &DbPool,
    channel: &lapin::Channel,
    topology: &Topology,
    scope: Scope<'_>,
) -> Result<usize, OutboxError> {
    let mut total = 0;
    let mut conn = pool.get().await.map_err(DbError::from)?;
    // Where the next window of the outbox starts (the `Batches` scope).
    let mut after = 0i64;
    loop {
        let chunk = conn
            .transaction::<Chunk, OutboxError, _>(async |conn| {
                publish_chunk(conn, channel, topology, scope, after).await
            })
            .await?;
        total += chunk.published;
        match chunk.window_end {
            Some(end) => after = end,
            None => return Ok(total),
        }
    }
}

/// What one chunk did: how many jobs it published, and whether another may follow (`Some`) and
/// after which job id its window starts (the `Batches` scope; the others start over, since
/// what they took is marked published).
struct Chunk {
    published: usize,
    window_end: Option<i64>,
}

/// A window of the outbox: the next [`CHUNK`] unpublished jobs after `$1`, in id order, read
/// from the partial index `dial_jobs_unpublished` alone.
const WINDOW: &str = "SELECT id FROM dial_jobs WHERE published_at IS NULL AND id > $1 \
     ORDER BY id LIMIT $2";

#[derive(diesel::QueryableByName)]
struct JobId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// One chunk, inside its transaction.
async fn publish_chunk(
    conn: &mut AsyncPgConnection,
    channel: &lapin::Channel,
    topology: &Topology,
    scope: Scope<'_>,
    after: i64,
) -> Result<Chunk, OutboxError> {
    let (jobs, window_end) = match scope {
        Scope::OlderThan(secs) => {
            let jobs: Vec<DialJob> = diesel::sql_query(format!(
                "{SELECT} AND j.created_at < now() - make_interval(secs => $1) {ORDER_AND_LOCK}"
            ))
            .bind::<Double, _>(secs as f64)
            .bind::<BigInt, _>(CHUNK)
            .prepared()
            .load(conn)
            .await?;
            start_over_if_full(jobs)
        }
        Scope::Calls(ids) => {
            let jobs: Vec<DialJob> =
                diesel::sql_query(format!("{SELECT} AND j.call_pk = ANY($1) {ORDER_AND_LOCK}"))
                    .bind::<Array<BigInt>, _>(ids)
                    .bind::<BigInt, _>(CHUNK)
                    .prepared()
                    .load(conn)
                    .await?;
            start_over_if_full(jobs)
        }
        // A batch just written is unknown to the planner's statistics (one row, it guesses), so
        // a statement that filtered on `c.batch_pk` started from the batch's calls and, for each,
        // scanned every unpublished job: quadratic in the batch (530 ms per chunk of 500 on a
        // table with history). The jobs are taken from a window of the outbox instead, by
        // primary key, and the batch is checked on their calls (`+ 0`: never by its index).
        Scope::Batches(batches) => {
            let window: Vec<JobId> = diesel::sql_query(WINDOW)
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(CHUNK)
                .prepared()
                .load(conn)
                .await?;
            let ids: Vec<i64> = window.iter().map(|w| w.id).collect();
            let jobs: Vec<DialJob> = if ids.is_empty() {
                Vec::new()
            } else {
                diesel::sql_query(format!(
                    "{SELECT} AND j.id = ANY($1) AND c.batch_pk + 0 = ANY($2) \
                     ORDER BY j.id FOR UPDATE OF j SKIP LOCKED"
                ))
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<Array<BigInt>, _>(batches)
                .prepared()
                .load(conn)
                .await?
            };
            let more = ids.len() as i64 == CHUNK;
            (jobs, ids.last().copied().filter(|_| more))
        }
    };
    let published = publish_and_mark(conn, channel, topology, jobs).await?;
    Ok(Chunk {
        published,
        window_end,
    })
}

/// A full chunk of a scope that takes from the start of the outbox: another may follow, from
/// the start again (what this one took is marked published by then).
fn start_over_if_full(jobs: Vec<DialJob>) -> (Vec<DialJob>, Option<i64>) {
    let more = jobs.len() as i64 == CHUNK;
    (jobs, more.then_some(0))
}

/// Publishes locked jobs, every one confirmed, then marks them published.
async fn publish_and_mark(
    conn: &mut AsyncPgConnection,
    channel: &lapin::Channel,
    topology: &Topology,
    jobs: Vec<DialJob>,
) -> Result<usize, OutboxError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = jobs.iter().map(|j| j.job_id).collect();
    // Each account's queue exists before its first job is routed to it (an unroutable job
    // would come back as an error, not vanish).
    let mut accounts: Vec<i64> = jobs.iter().map(|j| j.account_id).collect();
    accounts.sort_unstable();
    accounts.dedup();
    for account in accounts {
        topology.declare_account_queue(channel, account).await?;
    }
    // The whole chunk confirmed before anything is marked published.
    topology::publish_all_confirmed(channel, &topology.dial_exchange, &jobs, |job| {
        (
            Topology::account_routing_key(job.account_id),
            job.message_id(),
        )
    })
    .await?;
    diesel::sql_query("UPDATE dial_jobs SET published_at = now() WHERE id = ANY($1)")
        .bind::<Array<BigInt>, _>(&ids)
        .prepared()
        .execute(conn)
        .await?;
    Ok(ids.len())
}
