//! Connecting to RabbitMQ: one node or the nodes of a cluster, with failover.
//!
//! `AMQP_URL` holds one `amqp://` URL or several, comma-separated (the nodes of one cluster). A
//! connection tries them in turn and takes the first that accepts TCP within
//! [`CONNECT_TIMEOUT`]; a recovering connection that loses its node tries the *others* first,
//! so a service fails over to a live node instead of waiting for its own to come back. lapin's
//! recovery then replays the channels, confirms, `qos` and consumers on the new node (quorum
//! queues live on every node of the cluster). The first node tried is drawn at random, as the
//! RabbitMQ Java client shuffles its address list: services spread over the cluster.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::tcp::AMQPUriTcpExt;
use lapin::types::LongString;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::topology::BrokerError;

/// How long one node may take to accept TCP before the next is tried: a node that is down
/// refuses at once, but one behind a partition or a dead host would hold a connect for minutes.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The parsed addresses of `AMQP_URL`.
#[derive(Debug, Clone)]
pub struct BrokerAddresses {
    uris: Vec<AMQPUri>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("no RabbitMQ address given")]
    Empty,
    /// The parser's message says what is wrong; the text itself may hold a password.
    #[error("address {position} is not an amqp:// URL ({reason})")]
    Invalid { position: usize, reason: String },
    #[error(
        "address {position} differs from the first in user, password or virtual host: the nodes \
         of one cluster share them"
    )]
    Mismatch { position: usize },
}

impl BrokerAddresses {
    /// Parses one URL or a comma-separated list. Every address must carry the same credentials
    /// and virtual host: the handshake after a failover is the first address's.
    pub fn parse(text: &str) -> Result<BrokerAddresses, AddressError> {
        let mut uris: Vec<AMQPUri> = Vec::new();
        for (i, part) in text.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let uri: AMQPUri = part.parse().map_err(|reason| AddressError::Invalid {
                position: i + 1,
                reason,
            })?;
            if let Some(first) = uris.first()
                && (first.authority.userinfo != uri.authority.userinfo || first.vhost != uri.vhost)
            {
                return Err(AddressError::Mismatch { position: i + 1 });
            }
            uris.push(uri);
        }
        match uris.is_empty() {
            true => Err(AddressError::Empty),
            false => Ok(BrokerAddresses { uris }),
        }
    }

    /// `host:port` of each address (no credentials), for logs.
    pub fn hosts(&self) -> Vec<String> {
        self.uris.iter().map(host_port).collect()
    }

    /// The order to try the addresses in, starting at `first`.
    fn order(&self, first: usize) -> impl Iterator<Item = usize> + '_ {
        let n = self.uris.len();
        (0..n).map(move |i| (first + i) % n)
    }
}

fn host_port(uri: &AMQPUri) -> String {
    format!("{}:{}", uri.authority.host, uri.authority.port)
}

/// Connects with automatic recovery (lapin restores channels and consumers after a reconnect),
/// for the long-lived services. The first connection waits for a broker too, as long as it
/// takes: a dispatcher or worker started before RabbitMQ begins once one node answers.
pub async fn connect(amqp_url: &str, connection_name: &str) -> Result<Connection, BrokerError> {
    // Recovery reconnects and replays channels and consumers. Its default gives up after 16
    // tries (about 11 minutes of outage, after which a consumer would stay silently dead) and
    // waits up to a minute between tries (a 30 s outage was noticed 23 s late): here it tries
    // for as long as it takes, at most 2 s apart (a refused connect costs nothing), jittered so
    // services do not reconnect at once. Each try goes round every address.
    let props = ConnectionProperties::default()
        .with_connection_name(LongString::from(connection_name))
        .configure_backoff(|b| {
            b.with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(2))
                .with_factor(2.0)
                .with_jitter()
                .with_max_times(usize::MAX)
        })
        .enable_auto_recover();
    connect_with(amqp_url, props).await
}

/// One connection, without recovery or retry: it fails at once when no address answers, and
/// stays closed once lost. For callers that reconnect themselves (the API's publisher, which
/// opens a fresh one on demand) or connect briefly (probes, cleanups): with recovery, each
/// abandoned attempt would go on retrying in the background.
pub async fn connect_once(
    amqp_url: &str,
    connection_name: &str,
) -> Result<Connection, BrokerError> {
    let props =
        ConnectionProperties::default().with_connection_name(LongString::from(connection_name));
    connect_with(amqp_url, props).await
}

async fn connect_with(
    amqp_url: &str,
    props: ConnectionProperties,
) -> Result<Connection, BrokerError> {
    let addresses = Arc::new(
        BrokerAddresses::parse(amqp_url).map_err(|e| BrokerError::Address(e.to_string()))?,
    );
    let first = addresses.uris[0].clone();
    let start = random_index(addresses.uris.len());
    // The address in use; `usize::MAX` until the first connection.
    let current = Arc::new(AtomicUsize::new(usize::MAX));
    let runtime = lapin::runtime::default_runtime()?;
    let connection = Connection::connector(
        first,
        runtime,
        async move |_uri, runtime| {
            let n = addresses.uris.len();
            let was = current.load(Ordering::Relaxed);
            // After losing a node, the others first; it comes last, as it may be back.
            let from = match was {
                usize::MAX => start,
                i => (i + 1) % n,
            };
            let mut last_error = io::Error::other("no address tried");
            for i in addresses.order(from) {
                let uri = &addresses.uris[i];
                match tokio::time::timeout(CONNECT_TIMEOUT, uri.connect_async(&runtime)).await {
                    Ok(Ok(stream)) => {
                        if was == usize::MAX {
                            tracing::info!(node = %host_port(uri), "RabbitMQ: connected");
                        } else if was != i {
                            tracing::warn!(
                                node = %host_port(uri),
                                previous = %host_port(&addresses.uris[was]),
                                "RabbitMQ: failed over to another node"
                            );
                        }
                        current.store(i, Ordering::Relaxed);
                        return Ok(stream);
                    }
                    Ok(Err(e)) => last_error = e,
                    Err(_) => {
                        last_error = io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "{} did not accept within {} s",
                                host_port(uri),
                                CONNECT_TIMEOUT.as_secs()
                            ),
                        )
                    }
                }
            }
            Err(lapin::Error::from(last_error))
        },
        props,
    )
    .await?;
    Ok(connection)
}

fn random_index(n: usize) -> usize {
    let mut b = [0u8; 4];
    // Without randomness every service starts on the first node, which only loses spread.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b) as usize % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_several_addresses_with_the_same_credentials_and_vhost() {
        let one = BrokerAddresses::parse("amqp://guest:guest@127.0.0.1:5672/%2f").expect("one");
        assert_eq!(one.hosts(), ["127.0.0.1:5672"]);
        let three = BrokerAddresses::parse(
            "amqp://u:p@h1:5672/%2f, amqp://u:p@h2:5673/%2f,amqp://u:p@h3/%2f,",
        )
        .expect("three");
        assert_eq!(three.hosts(), ["h1:5672", "h2:5673", "h3:5672"]);
        assert_eq!(three.order(2).collect::<Vec<_>>(), [2, 0, 1]);
    }

    #[test]
    fn a_list_that_cannot_be_one_cluster_is_refused_without_echoing_it() {
        assert_eq!(
            BrokerAddresses::parse(" , ").unwrap_err(),
            AddressError::Empty
        );
        let bad = BrokerAddresses::parse("amqp://u:secret@h1/%2f,http://u:secret@h2/").unwrap_err();
        assert!(
            matches!(bad, AddressError::Invalid { position: 2, .. }),
            "{bad:?}"
        );
        assert!(!bad.to_string().contains("secret"), "{bad}");
        assert_eq!(
            BrokerAddresses::parse("amqp://u:p@h1/%2f,amqp://u:other@h2/%2f").unwrap_err(),
            AddressError::Mismatch { position: 2 }
        );
        assert_eq!(
            BrokerAddresses::parse("amqp://u:p@h1/%2f,amqp://u:p@h2/other").unwrap_err(),
            AddressError::Mismatch { position: 2 }
        );
    }
}
