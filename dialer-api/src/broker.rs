//! The API's RabbitMQ publisher: one connection and confirm channel, opened on first use and
//! reopened after a failure, with the topology declared on every (re)open.

use std::time::Duration;

use dialer_core::topology::{self, BrokerError, Topology};
use lapin::{Channel, Connection};
use tokio::sync::Mutex;

pub struct Broker {
    amqp_url: String,
    pub topology: Topology,
    inner: Mutex<Option<(Connection, Channel)>>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Broker {
    pub fn new(amqp_url: String, topology: Topology) -> Broker {
        Broker {
            amqp_url,
            topology,
            inner: Mutex::new(None),
        }
    }

    /// A connected confirm channel.
    pub async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut guard = self.inner.lock().await;
        if let Some((conn, channel)) = guard.as_ref()
            && conn.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let open = async {
            let conn = topology::connect_once(&self.amqp_url, "dialer-api").await?;
            let channel = topology::confirm_channel(&conn).await?;
            self.topology.declare(&channel).await?;
            Ok::<_, BrokerError>((conn, channel))
        };
        let (conn, channel) =
            tokio::time::timeout(CONNECT_TIMEOUT, open)
                .await
                .map_err(|_| {
                    BrokerError::Amqp(lapin::Error::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connecting to RabbitMQ timed out",
                    )))
                })??;
        *guard = Some((conn, channel.clone()));
        Ok(channel)
    }

    /// Drops the connection without waiting on it (it stopped answering); the next
    /// [`Broker::channel`] opens a new one.
    pub async fn forget(&self) {
        if let Some((conn, _)) = self.inner.lock().await.take() {
            // Closing waits for the broker's answer: not here.
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(CONNECT_TIMEOUT, conn.close(200, "unresponsive".into()))
                        .await;
            });
        }
    }

    pub async fn close(&self) {
        if let Some((conn, _)) = self.inner.lock().await.take() {
            let _ = conn.close(200, "shutdown".into()).await;
        }
    }
}
