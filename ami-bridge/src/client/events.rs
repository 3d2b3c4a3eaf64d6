//! What the caller is told about the connection: its event stream (events, and the moments the
//! connection was lost and regained) and its state.

use crate::event::Event;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Asterisk closed the socket (after `Shutdown`, a restart, or a network cut).
    ClosedByPeer,
    /// No bytes and no Pong within the keepalive window.
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connected,
    Reconnecting,
    Closed,
}
