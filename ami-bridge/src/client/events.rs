//! What the caller is told about the connection: its event stream (events, and the moments the
//! connection was lost and regained) and its state.

use crate::event::Event;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Asterisk closed the socket (after `Shutdown`, a restart, or a network cut).
    ClosedByPeer,
    /// No byte at all within the keepalive window (ping interval + ping timeout), the socket
    /// itself read before the verdict.
    Stalled,
    Io(String),
    /// We logged off or the client was dropped.
    Closed,
}

/// What the event stream carries.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// Logged in; `reconnected` is true after a loss. Events between the loss and now are gone:
    /// reconcile calls in flight (`CoreShowChannels`).
    Connected {
        reconnected: bool,
    },
    Disconnected {
        reason: DisconnectReason,
    },
    Event(Event),
    /// Every byte that had arrived when [`AmiClient::catch_up`] returned this number was read,
    /// and its events are before this on the stream.
    ///
    /// [`AmiClient::catch_up`]: super::AmiClient::catch_up
    CaughtUp(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connected,
    Reconnecting,
    Closed,
}
