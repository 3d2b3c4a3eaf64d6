//! RabbitMQ prompts: each message on the events queue says "look at the database". A prompt is
//! acked (manually, many at once) only after a claim round that started after it has finished,
//! so the database has been looked at for it; the event itself is never lost by an ack, since
//! it stays pending in `call_events` until it is delivered or failed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dialer_core::topology::Topology;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::watch;

use crate::WorkerError;
use crate::engine::Shared;

pub async fn consume(
    connection: &lapin::Connection,
    topology: &Topology,
    prefetch: u16,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    channel
        .basic_qos(prefetch, BasicQosOptions { global: false })
        .await?;
    let mut consumer = channel
        .basic_consume(
            topology.events_queue.as_str().into(),
            "callback-worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut finished = shared.rounds.finished.subscribe();
    loop {
        let first = tokio::select! {
            d = consumer.next() => d,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let mut last = match first {
            None => return Ok(()),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "RabbitMQ consumer error; waiting for recovery");
                channel.wait_for_recovery(e).await?;
                continue;
            }
            Some(Ok(d)) => d,
        };
        // Take the whole burst, then ack it with one frame.
        while let Some(Some(Ok(d))) = consumer.next().now_or_never() {
            last = d;
        }
        let wanted = shared.rounds.started.load(Ordering::Acquire) + 1;
        shared.wake.notify_one();
        tokio::select! {
            r = finished.wait_for(|done| *done >= wanted) => {
                if r.is_err() {
                    return Ok(());
                }
            }
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        if let Err(e) = last.acker.ack(BasicAckOptions { multiple: true }).await {
            // Unacked prompts come back after a reconnect; an extra look is harmless.
            tracing::warn!(error = %e, "acking prompts failed");
        }
    }
}
