//! The event outbox: `call_events` rows are written with the state change they describe (same
//! transaction), then handed to RabbitMQ for the callback worker with publisher confirms and
//! marked `published_at`. Unconfirmed rows are swept again, so a crash never loses an event; a
//! republished event carries the same `event_id`, and delivery is at-least-once anyway.

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use serde::{Deserialize, Serialize};

use crate::outbox::{self, OutboxError, Pick};
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

/// Publishes unpublished events in chunks, one prompt a chunk (see
/// [`outbox::publish_pending`]); returns how many were published.
pub use crate::outbox::publish_pending;

impl outbox::Outbox for Scope<'_> {
    type Row = EventMessage;
    const SELECT: &'static str = "SELECT id AS event_pk, event_id, account_id, call_pk, sequence \
         FROM call_events WHERE published_at IS NULL";
    const WRITTEN_AT: &'static str = "occurred_at";
    const ORDER_AND_LOCK: &'static str = "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED";
    const TABLE: &'static str = "call_events";

    fn pick(&self) -> Pick<'_> {
        match *self {
            Scope::OlderThan(secs) => Pick::OlderThan(secs),
            Scope::Batches(ids) => Pick::Of {
                column: "batch_pk",
                ids,
            },
        }
    }

    fn id(event: &EventMessage) -> i64 {
        event.event_pk
    }

    async fn publish(
        channel: &lapin::Channel,
        topology: &Topology,
        events: Vec<EventMessage>,
    ) -> Result<(), OutboxError> {
        let (first, last) = match (events.first(), events.last()) {
            (Some(first), Some(last)) => (first.event_pk, last.event_pk),
            _ => return Ok(()),
        };
        let message_id = format!("events-{first}-{last}");
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
        Ok(())
    }
}
