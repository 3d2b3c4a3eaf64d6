//! Intake: each active account's dial queue consumed (one consumer each, manual acks, bounded
//! prefetch), its jobs handed to the scheduler; a malformed job is dead-lettered.

use std::collections::HashSet;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use dialer_core::db::{self, DbPool};
use dialer_core::dial_outbox::DialJob;
use dialer_core::topology::Topology;

use crate::scheduler::Job;
use dialer_core::prepared::PrepareOnce;

/// Consumes the dial queue of every active account (one consumer each, bounded prefetch each),
/// picking up new accounts as they appear.
pub async fn intake_loop(
    pool: DbPool,
    channel: lapin::Channel,
    topology: Topology,
    tag: String,
    jobs: mpsc::Sender<Job>,
    mut stop: watch::Receiver<bool>,
) {
    let mut consuming: HashSet<i64> = HashSet::new();
    loop {
        match active_accounts(&pool).await {
            Ok(ids) => {
                let new: Vec<i64> = ids
                    .into_iter()
                    .filter(|id| !consuming.contains(id))
                    .collect();
                for id in new {
                    match start_consumer(&channel, &topology, &tag, id, jobs.clone()).await {
                        Ok(()) => {
                            consuming.insert(id);
                        }
                        Err(e) => warn!(error = %e, account = id, "cannot consume dial jobs"),
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot list accounts"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // Unacknowledged jobs go back to their queues when the channel closes.
    let _ = channel.close(200, "dispatcher stopping".into()).await;
}

#[derive(QueryableByName)]
struct AccountId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

async fn active_accounts(pool: &DbPool) -> anyhow::Result<Vec<i64>> {
    let mut conn = pool.get().await.map_err(db::DbError::from)?;
    let rows: Vec<AccountId> =
        diesel::sql_query("SELECT id FROM accounts WHERE status = 'active' ORDER BY id")
            .prepared()
            .load(&mut conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

async fn start_consumer(
    channel: &lapin::Channel,
    topology: &Topology,
    tag: &str,
    account: i64,
    jobs: mpsc::Sender<Job>,
) -> anyhow::Result<()> {
    let queue = topology.declare_account_queue(channel, account).await?;
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("{tag}-{account}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    warn!(error = %e, account, "dial job consumer error");
                    continue;
                }
            };
            match serde_json::from_slice::<DialJob>(&delivery.data) {
                Ok(job) => {
                    let job = Job {
                        job,
                        acker: delivery.acker,
                    };
                    if jobs.send(job).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // Not a dial job: to the dead-letter queue for an operator, never retried.
                    warn!(error = %e, account, "malformed dial job dead-lettered");
                    let _ = delivery
                        .acker
                        .reject(BasicRejectOptions { requeue: false })
                        .await;
                }
            }
        }
    });
    Ok(())
}
