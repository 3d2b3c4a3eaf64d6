//! Prompts for the callback worker. A call event is safe once its transaction commits: if it is
//! to be delivered, the insert triggers have put it in the delivery queue (`callback_queue`),
//! which the worker claims from by itself every `DIALER_CALLBACK_POLL_MS` whether prompted or
//! not. A prompt on RabbitMQ only spares that wait: whoever commits events that entered the
//! queue publishes one, confirmed, after the commit. A prompt lost to a crash or a broker outage
//! costs at most one poll interval, never an event, so nothing is marked and nothing is swept
//! (an outbox of prompts cost a statement on `call_events` for every written group: a tenth of
//! PostgreSQL's time per call at 50 calls/s).

use serde::{Deserialize, Serialize};

use crate::topology::{self, BrokerError, Topology};

/// The message on the events queue: "events of these batches entered the delivery queue; look
/// at the database". The worker reads nothing else from it; the batches are for whoever
/// inspects the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPrompt {
    pub batches: Vec<i64>,
}

/// Publishes one prompt for `batches` and waits for its confirm. Nothing to do for none.
pub async fn prompt(
    channel: &lapin::Channel,
    topology: &Topology,
    batches: &[i64],
) -> Result<(), BrokerError> {
    if batches.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_vec(&EventPrompt {
        batches: batches.to_vec(),
    })
    .map_err(|e| BrokerError::Encode(e.to_string()))?;
    let message_id = format!("prompt-{}", uuid::Uuid::new_v4());
    topology::publish_confirmed(
        channel,
        &topology.events_exchange,
        topology::EVENT_ROUTING_KEY,
        &message_id,
        &payload,
    )
    .await
}
