//! `ami-bridge`: an Asterisk Manager Interface client for the dialer.
//!
//! - [`codec`]: incremental framing of the AMI byte stream (banner, messages), bounded and
//!   panic-free on any input.
//! - [`message`]: one message as ordered headers, repeated keys kept.
//! - [`event`]: typed views of the events a dialer acts on.
//! - [`action`]: actions and the `Originate` builder, refusing header injection.
//! - [`client`]: the connection: login, correlated actions, lists, keepalive, reconnect.

pub mod action;
mod backoff;
pub mod client;
pub mod codec;
pub mod event;
pub mod message;

pub use action::{Action, ActionError, Originate};
pub use backoff::Backoff;
pub use client::{
    AmiClient, AmiError, ClientConfig, ClientEvent, ConnectionState, DisconnectReason, Response,
};
pub use codec::{DecodeError, Decoder, Frame};
pub use event::{
    ChannelEvent, ChannelState, DialEvent, DialStatus, Event, Hangup, OriginateReason,
    OriginateResponse, Shutdown, UserEvent,
};
pub use message::{Message, MessageKind};
