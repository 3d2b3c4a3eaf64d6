//! RabbitMQ: names of exchanges and queues, their declaration, and confirmed publishing.
//!
//! All queues are durable quorum queues, messages are persistent, and a publish counts only when
//! the broker confirms it. A message a consumer rejects too often (quorum queues' delivery
//! limit) goes to the dead-letter queue instead of looping.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

pub use crate::broker_connection::{connect, connect_once};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused the message (nack)")]
    Nacked,
    #[error("RabbitMQ could not route the message to any queue (exchange `{0}`)")]
    Unroutable(String),
    #[error("cannot encode the message: {0}")]
    Encode(String),
    #[error("publisher confirms are not enabled on this channel")]
    NoConfirms,
    #[error("AMQP_URL: {0}")]
    Address(String),
}

/// Routing key of call events on the events exchange.
pub const EVENT_ROUTING_KEY: &str = "event";

/// The names of one deployment's (or one test's) exchanges and queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Direct exchange of dial jobs (for the dispatcher). Each account has its own dial queue
    /// ([`Topology::account_dial_queue`]): with one queue for all, a small batch of one account
    /// would wait behind another account's million jobs, and the dispatcher could not be fair.
    pub dial_exchange: String,
    /// Direct exchange of call events (for the callback worker).
    pub events_exchange: String,
    /// Quorum queue the callback workers consume.
    pub events_queue: String,
    /// Fanout exchange and queue of dead-lettered messages, kept for operators.
    pub dead_exchange: String,
    pub dead_queue: String,
}

impl Topology {
    pub fn new(prefix: &str) -> Topology {
        Topology {
            dial_exchange: format!("{prefix}.dial"),
            events_exchange: format!("{prefix}.events"),
            events_queue: format!("{prefix}.callback.events"),
            dead_exchange: format!("{prefix}.dead"),
            dead_queue: format!("{prefix}.dead"),
        }
    }

    /// Declares everything (idempotent: same arguments every time).
    pub async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        for (exchange, kind) in [
            (&self.dead_exchange, ExchangeKind::Fanout),
            (&self.dial_exchange, ExchangeKind::Direct),
            (&self.events_exchange, ExchangeKind::Direct),
        ] {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    kind,
                    durable,
                    FieldTable::default(),
                )
                .await?;
        }

        self.declare_quorum_queue(channel, &self.dead_queue, None)
            .await?;
        self.declare_quorum_queue(channel, &self.events_queue, Some(&self.dead_exchange))
            .await?;

        let bind = |queue: &str, exchange: &str, key: &str| {
            channel.queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
        };
        bind(&self.dead_queue, &self.dead_exchange, "").await?;
        bind(&self.events_queue, &self.events_exchange, EVENT_ROUTING_KEY).await?;
        Ok(())
    }

    async fn declare_quorum_queue(
        &self,
        channel: &Channel,
        name: &str,
        dead_letter_exchange: Option<&str>,
    ) -> Result<(), BrokerError> {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from("quorum")),
        );
        if let Some(dlx) = dead_letter_exchange {
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(LongString::from(dlx)),
            );
            // Same limit RabbitMQ 4 applies by default; set explicitly so 3.x behaves the same.
            args.insert("x-delivery-limit".into(), AMQPValue::LongInt(20));
        }
        channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await?;
        Ok(())
    }

    /// The dial queue of one account (durable, quorum, dead-lettered like the others).
    pub fn account_dial_queue(&self, account_id: i64) -> String {
        format!("{}.account.{account_id}", self.dial_exchange)
    }

    /// Routing key of an account's dial jobs on the dial exchange.
    pub fn account_routing_key(account_id: i64) -> String {
        format!("account.{account_id}")
    }

    /// Declares and binds an account's dial queue; idempotent, so publishers and consumers both
    /// call it before their first use.
    pub async fn declare_account_queue(
        &self,
        channel: &Channel,
        account_id: i64,
    ) -> Result<String, BrokerError> {
        let queue = self.account_dial_queue(account_id);
        self.declare_quorum_queue(channel, &queue, Some(&self.dead_exchange))
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                self.dial_exchange.as_str().into(),
                Topology::account_routing_key(account_id).as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(queue)
    }

    /// Deletes the dial queues of these accounts (test cleanup).
    pub async fn delete_account_queues(
        &self,
        channel: &Channel,
        account_ids: &[i64],
    ) -> Result<(), BrokerError> {
        for id in account_ids {
            channel
                .queue_delete(
                    self.account_dial_queue(*id).as_str().into(),
                    Default::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// Deletes every exchange and queue (tests clean up their own prefix with it).
    pub async fn delete(&self, channel: &Channel) -> Result<(), BrokerError> {
        for q in [&self.events_queue, &self.dead_queue] {
            channel
                .queue_delete(q.as_str().into(), Default::default())
                .await?;
        }
        for e in [
            &self.dial_exchange,
            &self.events_exchange,
            &self.dead_exchange,
        ] {
            channel
                .exchange_delete(e.as_str().into(), Default::default())
                .await?;
        }
        Ok(())
    }
}

/// A channel in confirm mode, for publishing.
pub async fn confirm_channel(conn: &lapin::Connection) -> Result<Channel, BrokerError> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// Publishes one persistent JSON message and waits for the broker's confirm. Unroutable
/// messages (no bound queue) are an error, not a silent drop.
pub async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    message_id: &str,
    payload: &[u8],
) -> Result<(), BrokerError> {
    let confirm = start_publish(channel, exchange, routing_key, message_id, payload).await?;
    check_confirmation(exchange, confirm.await?)
}

/// Publishes each item as a persistent JSON message, pipelined, then waits for every confirm:
/// `Ok` only when all of them were routed and confirmed. `route` gives an item's routing key and
/// message id.
pub async fn publish_all_confirmed<T: serde::Serialize>(
    channel: &Channel,
    exchange: &str,
    items: &[T],
    route: impl Fn(&T) -> (String, String),
) -> Result<(), BrokerError> {
    let mut pending = Vec::with_capacity(items.len());
    for item in items {
        let payload = serde_json::to_vec(item).map_err(|e| BrokerError::Encode(e.to_string()))?;
        let (routing_key, message_id) = route(item);
        pending.push(start_publish(channel, exchange, &routing_key, &message_id, &payload).await?);
    }
    for confirm in pending {
        check_confirmation(exchange, confirm.await?)?;
    }
    Ok(())
}

/// Starts a publish without waiting for its confirm (to pipeline many, then await each).
pub async fn start_publish(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    message_id: &str,
    payload: &[u8],
) -> Result<lapin::PublisherConfirm, BrokerError> {
    let props = BasicProperties::default()
        .with_delivery_mode(2) // persistent
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(message_id));
    Ok(channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            payload,
            props,
        )
        .await?)
}

/// Turns a broker confirmation into success only for an ack of a routed message.
pub fn check_confirmation(
    exchange: &str,
    confirmation: lapin::Confirmation,
) -> Result<(), BrokerError> {
    use lapin::Confirmation;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(BrokerError::Unroutable(exchange.to_owned())),
        Confirmation::Nack(_) => Err(BrokerError::Nacked),
        Confirmation::NotRequested => Err(BrokerError::NoConfirms),
    }
}
