//! Dispatch: queued calls become `scheduled` and get a dial job in the outbox, in one
//! transaction; the jobs are then published to RabbitMQ with confirms. Concurrent or repeated
//! dispatches cannot schedule a call twice: the update takes only `queued` rows, and row locks
//! make a second dispatch re-check them after the first commits.

use std::sync::Arc;

use diesel::sql_types::{BigInt, Nullable};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::db::DbPool;
use dialer_core::dial_outbox::{self, Scope};
use dialer_core::domain::BatchStatus;

use crate::api_error::{ApiError, ApiResult};
use crate::batches::find_batch;
use crate::broker::Broker;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatchOutcome {
    pub dispatched: i64,
    /// Client batch ids that had calls dispatched.
    pub batches: Vec<i64>,
    #[serde(skip)]
    pub batch_pks: Vec<i64>,
}

#[derive(diesel::QueryableByName)]
struct Scheduled {
    #[diesel(sql_type = BigInt)]
    batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    batch_id: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Schedules the queued calls of the account's dispatchable batches (or of one batch), inside
/// the caller's transaction.
pub async fn schedule_in_tx(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    only_batch_pk: Option<i64>,
) -> diesel::QueryResult<DispatchOutcome> {
    let rows: Vec<Scheduled> = diesel::sql_query(
        "WITH eligible AS (
            SELECT id, batch_id FROM batches
            WHERE account_id = $1 AND ($2::bigint IS NULL OR id = $2)
              AND status IN ('pending', 'dispatching', 'completed')
         ), sched AS (
            UPDATE calls c SET status = 'scheduled', dispatched_at = now(), updated_at = now()
            FROM eligible b
            WHERE c.batch_pk = b.id AND c.status = 'queued'
            RETURNING c.id, c.batch_pk, c.attempts
         ), jobs AS (
            INSERT INTO dial_jobs (call_pk, attempt)
            SELECT id, attempts + 1 FROM sched
            ON CONFLICT (call_pk, attempt) DO NOTHING
         ), marked AS (
            UPDATE batches SET status = 'dispatching', dispatched_at = coalesce(dispatched_at, now()),
                   completed_at = NULL, updated_at = now()
            WHERE id IN (SELECT batch_pk FROM sched) AND status IN ('pending', 'dispatching', 'completed')
         )
         SELECT s.batch_pk, b.batch_id, count(*) AS n
         FROM sched s JOIN eligible b ON b.id = s.batch_pk
         GROUP BY s.batch_pk, b.batch_id ORDER BY b.batch_id",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Nullable<BigInt>, _>(only_batch_pk)
    .load(conn)
    .await?;
    Ok(DispatchOutcome {
        dispatched: rows.iter().map(|r| r.n).sum(),
        batches: rows.iter().map(|r| r.batch_id).collect(),
        batch_pks: rows.iter().map(|r| r.batch_pk).collect(),
    })
}

/// Hands the committed jobs of these batches to RabbitMQ. A failure here loses nothing: the
/// jobs stay in the outbox and the sweeper publishes them later.
pub async fn publish_committed(pool: &DbPool, broker: &Broker, batch_pks: &[i64]) {
    if batch_pks.is_empty() {
        return;
    }
    let result: Result<usize, String> = async {
        let channel = broker.channel().await.map_err(|e| e.to_string())?;
        dial_outbox::publish_pending(pool, &channel, &broker.topology, Scope::Batches(batch_pks))
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(n) => tracing::info!(published = n, "dial jobs published"),
        Err(e) => tracing::warn!(error = %e, "dial jobs left in the outbox for the sweeper"),
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

pub async fn hand_off(
    pool: &DbPool,
    broker: &Arc<Broker>,
    outcome: &DispatchOutcome,
    how: Handoff,
) {
    match how {
        Handoff::BackgroundAbove(limit) if outcome.dispatched > limit => {
            let (pool, broker, pks) = (pool.clone(), broker.clone(), outcome.batch_pks.clone());
            tokio::spawn(async move { publish_committed(&pool, &broker, &pks).await });
        }
        _ => publish_committed(pool, broker, &outcome.batch_pks).await,
    }
}

/// The whole dispatch of the contract: `batch_id` limits it to one batch.
pub async fn dispatch(
    pool: &DbPool,
    broker: &Arc<Broker>,
    account_id: i64,
    batch_id: Option<i64>,
    how: Handoff,
) -> ApiResult<DispatchOutcome> {
    let mut conn = pool.get().await?;
    let outcome = conn
        .transaction::<DispatchOutcome, ApiError, _>(async |conn| {
            let only = match batch_id {
                None => None,
                Some(id) => {
                    let batch = find_batch(conn, account_id, id).await?;
                    match batch.status {
                        BatchStatus::Cancelled => {
                            return Err(ApiError::conflict(
                                "batch_closed",
                                format!("batch {id} is cancelled"),
                            ));
                        }
                        BatchStatus::Paused => {
                            return Err(ApiError::conflict(
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
    hand_off(pool, broker, &outcome, how).await;
    Ok(outcome)
}
