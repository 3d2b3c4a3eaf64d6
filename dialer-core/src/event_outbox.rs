//! The event outbox: `call_events` rows are written with the state change they describe (same
//! transaction), then handed to RabbitMQ for the callback worker with publisher confirms and
//! marked `published_at`. Unconfirmed rows are swept again, so a crash never loses an event; a
//! republished event carries the same `event_id`, and delivery is at-least-once anyway.

use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::DbPool;
use crate::outbox::{self, OutboxError};
use crate::topology::{self, BrokerError, Topology};

/// A pointer to a stored event (its body stays in PostgreSQL, so the bytes sent are the stored
/// ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, diesel::QueryableByName)]
pub struct EventMessage {
    #[diesel(sql_type = BigInt)]
    pub event_pk: i64,
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub call_pk: Option<i64>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sequence: Option<i32>,
}

/// The message on the events queue: one prompt for a chunk of newly written events. The worker
/// reads nothing from it but "look at the database", so one message per chunk rather than per
/// event spares RabbitMQ a persisted, confirmed message per event (a fifth of the platform's CPU
/// in `dialerctl bench`); the pointers stay for whoever inspects the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPrompt {
    pub events: Vec<EventMessage>,
}

/// Which unpublished events a sweep takes.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Older than the given seconds (the background sweep).
    OlderThan(i64),
    /// Events of these batches (the request that just wrote them).
    Batches(&'a [i64]),
}

/// Publishes unpublished events in chunks, one prompt a chunk; returns how many were published.
pub async fn publish_pending(
    pool: &DbPool,
    channel: &lapin::Channel,
    topology: &Topology,
    scope: Scope<'_>,
) -> Result<usize, OutboxError> {
    outbox::publish_pending(pool, channel, topology, scope).await
}

impl outbox::Chunk for outbox::Sweep<'_, Scope<'_>> {
    async fn publish(&self, conn: &mut AsyncPgConnection) -> Result<usize, OutboxError> {
        let (channel, topology, scope) = (self.channel, self.topology, self.scope);
        conn.transaction::<usize, OutboxError, _>(async |conn| {
            let select = "SELECT id AS event_pk, event_id, account_id, call_pk, sequence \
                          FROM call_events WHERE published_at IS NULL";
            let lock = "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED";
            let events: Vec<EventMessage> = match scope {
                Scope::OlderThan(secs) => {
                    let sql = format!(
                        "{select} AND occurred_at < now() - make_interval(secs => $1) {lock}"
                    );
                    outbox::lock_older_than(conn, &sql, secs).await?
                }
                Scope::Batches(batches) => {
                    let sql = format!("{select} AND batch_pk = ANY($1) {lock}");
                    outbox::lock_of(conn, &sql, batches).await?
                }
            };
            if events.is_empty() {
                return Ok(0);
            }
            let ids: Vec<i64> = events.iter().map(|e| e.event_pk).collect();
            let message_id = format!("events-{}-{}", ids[0], ids[ids.len() - 1]);
            let payload = serde_json::to_vec(&EventPrompt { events })
                .map_err(|e| BrokerError::Encode(e.to_string()))?;
            // Confirmed before anything is marked published.
            topology::publish_confirmed(
                channel,
                &topology.events_exchange,
                topology::EVENT_ROUTING_KEY,
                &message_id,
                &payload,
            )
            .await?;
            diesel::sql_query("UPDATE call_events SET published_at = now() WHERE id = ANY($1)")
                .bind::<Array<BigInt>, _>(&ids)
                .execute(conn)
                .await?;
            Ok(ids.len())
        })
        .await
    }
}
