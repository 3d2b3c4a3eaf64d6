//! What one client connects to and how patiently: address, credentials, timeouts, keepalive,
//! reconnect delays, and the largest message it accepts.

use std::fmt;
use std::time::Duration;

use crate::codec::DEFAULT_MAX_MESSAGE_BYTES;

#[derive(Clone)]
pub struct ClientConfig {
    /// `host:port` of the AMI listener.
    pub addr: String,
    pub username: String,
    pub secret: String,
    pub connect_timeout: Duration,
    /// Banner plus Login; Asterisk answers a wrong secret after about one second.
    pub login_timeout: Duration,
    /// Default time an action may wait for its response.
    pub action_timeout: Duration,
    /// A `Ping` is sent this often; silence longer than `ping_interval + ping_timeout` means the
    /// connection is dead or stalled.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub reconnect: bool,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub max_message_bytes: usize,
    /// Runs the connection (reads, writes, keepalive) on a thread and runtime of its own rather
    /// than the caller's: the moments stamped on what was written and read
    /// ([`Response::written_at`], [`Message::read_at`]) are then the socket's, not delayed by
    /// whatever keeps the caller's runtime busy. Off by default (one thread per connection).
    ///
    /// [`Response::written_at`]: super::Response::written_at
    /// [`Message::read_at`]: crate::message::Message::read_at
    pub io_thread: bool,
}

impl ClientConfig {
    pub fn new(
        addr: impl Into<String>,
        username: impl Into<String>,
        secret: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            addr: addr.into(),
            username: username.into(),
            secret: secret.into(),
            connect_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(5),
            action_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(3),
            reconnect: true,
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            io_thread: false,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("action_timeout", &self.action_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("reconnect", &self.reconnect)
            .field("io_thread", &self.io_thread)
            .finish_non_exhaustive()
    }
}
