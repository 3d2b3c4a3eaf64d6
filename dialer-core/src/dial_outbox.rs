//! The dial outbox: `dial_jobs` rows are written in the same transaction that schedules their
//! calls, then handed to RabbitMQ with publisher confirms and marked `published_at`. A crash
//! between commit and publish leaves rows unpublished, and the next sweep publishes them, so no
//! call is lost. A crash after the confirm but before marking republishes a job: the dispatcher
//! claims each (call, attempt) with a conditional update, so a duplicate job never dials twice.

use diesel::sql_types::{BigInt, Integer, Uuid as SqlUuid};
use serde::{Deserialize, Serialize};

use crate::outbox::{self, OutboxError, Pick};
use crate::topology::{self, Topology};

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

/// Publishes unpublished dial jobs in chunks (see [`outbox::publish_pending`]); returns how
/// many were published.
pub use crate::outbox::publish_pending;

impl outbox::Outbox for Scope<'_> {
    type Row = DialJob;
    const SELECT: &'static str = "SELECT j.id AS job_id, j.call_pk, c.call_id, c.account_id, \
         c.batch_pk, j.attempt, b.priority FROM dial_jobs j JOIN calls c ON c.id = j.call_pk \
         JOIN batches b ON b.id = c.batch_pk WHERE j.published_at IS NULL";
    const WRITTEN_AT: &'static str = "j.created_at";
    const ORDER_AND_LOCK: &'static str = "ORDER BY j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED";
    const TABLE: &'static str = "dial_jobs";

    fn pick(&self) -> Pick<'_> {
        match *self {
            Scope::OlderThan(secs) => Pick::OlderThan(secs),
            Scope::Calls(ids) => Pick::Of {
                column: "j.call_pk",
                ids,
            },
            Scope::Batches(ids) => Pick::Of {
                column: "c.batch_pk",
                ids,
            },
        }
    }

    fn id(job: &DialJob) -> i64 {
        job.job_id
    }

    async fn publish(
        channel: &lapin::Channel,
        topology: &Topology,
        jobs: Vec<DialJob>,
    ) -> Result<(), OutboxError> {
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
        Ok(())
    }
}
