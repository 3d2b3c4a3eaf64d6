//! Actions matched to their answers by `ActionID`: one waiter per action in flight, the items of
//! a list response collected until the list ends, and every other message handed back for the
//! event stream.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::error::AmiError;
use crate::message::{Message, MessageKind};

/// The answer to one action: its response, plus the items of a list response
/// (`EventList: start` ... `EventList: Complete`).
#[derive(Debug, Clone)]
pub struct Response {
    pub message: Message,
    pub events: Vec<Message>,
    /// The event that closed the list (`CoreShowChannelsComplete`), when there was a list.
    pub list_end: Option<Message>,
    /// When the action's last byte was written to the socket (not when it was queued): with
    /// [`Message::read_at`] of what the PBX sends back, the PBX's own time, without ours.
    pub written_at: Option<Instant>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        matches!(self.message.first_value(), Some(v) if v.eq_ignore_ascii_case("Success")
            || v.eq_ignore_ascii_case("Goodbye") || v.eq_ignore_ascii_case("Follows"))
    }

    pub fn text(&self) -> &str {
        self.message.get("Message").unwrap_or("")
    }

    pub fn action_id(&self) -> Option<&str> {
        self.message.action_id()
    }

    /// Lines of `Command` output: `Output:` headers (Asterisk 14+) or an old `Follows` body.
    pub fn output(&self) -> Vec<&str> {
        let headers: Vec<&str> = self.message.get_all("Output").collect();
        if !headers.is_empty() {
            return headers;
        }
        self.message
            .body_lines()
            .filter(|l| *l != "--END COMMAND--")
            .collect()
    }
}

struct Pending {
    tx: oneshot::Sender<Result<Response, AmiError>>,
    /// Set once a list's `EventList: start` response has arrived; items follow.
    list: Option<(Message, Vec<Message>)>,
    written_at: Option<Instant>,
}

/// The actions waiting for their answers, by ActionID.
#[derive(Default)]
pub(super) struct Waiters(Mutex<HashMap<String, Pending>>);

/// Where an action's answer arrives.
pub(super) type Answer = oneshot::Receiver<Result<Response, AmiError>>;

impl Waiters {
    /// Registers the waiter of `id`; done before the action's bytes leave, so a fast response
    /// always finds it.
    pub(super) fn register(&self, id: &str) -> Result<Answer, AmiError> {
        let (tx, rx) = oneshot::channel();
        self.0.lock().map_err(|_| AmiError::Closed)?.insert(
            id.to_string(),
            Pending {
                tx,
                list: None,
                written_at: None,
            },
        );
        Ok(rx)
    }

    /// The bytes of these actions are all in the socket since `at`.
    pub(super) fn written<'a>(&self, ids: impl IntoIterator<Item = &'a str>, at: Instant) {
        if let Ok(mut p) = self.0.lock() {
            for id in ids {
                if let Some(entry) = p.get_mut(id) {
                    entry.written_at.get_or_insert(at);
                }
            }
        }
    }

    pub(super) fn forget(&self, id: &str) {
        if let Ok(mut p) = self.0.lock() {
            p.remove(id);
        }
    }

    /// The connection is gone: every waiter gets [`AmiError::Disconnected`].
    pub(super) fn fail_all(&self) {
        let drained: Vec<Pending> = match self.0.lock() {
            Ok(mut p) => p.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        for p in drained {
            let _ = p.tx.send(Err(AmiError::Disconnected));
        }
    }

    /// Routes a response or list item to its waiter. Returns the message back when it is an
    /// event for the stream.
    pub(super) fn route(&self, msg: Message) -> Option<Message> {
        let kind = msg.kind();
        let Some(id) = msg.action_id() else {
            return (kind == MessageKind::Event).then_some(msg);
        };
        let Ok(mut pending) = self.0.lock() else {
            return None;
        };
        match kind {
            MessageKind::Response => {
                let Some(entry) = pending.get_mut(id) else {
                    debug!(
                        action_id = id,
                        "response for an action no longer waited for"
                    );
                    return None;
                };
                if msg
                    .get("EventList")
                    .is_some_and(|v| v.eq_ignore_ascii_case("start"))
                {
                    entry.list = Some((msg, Vec::new()));
                    return None;
                }
                let id = id.to_string();
                if let Some(entry) = pending.remove(&id) {
                    let _ = entry.tx.send(Ok(Response {
                        message: msg,
                        events: Vec::new(),
                        list_end: None,
                        written_at: entry.written_at,
                    }));
                }
                None
            }
            MessageKind::Event => {
                // Only list items belong to an action; an OriginateResponse carries the
                // Originate's ActionID long after its response and goes to the stream.
                let collecting = pending.get(id).is_some_and(|e| e.list.is_some());
                if !collecting {
                    return Some(msg);
                }
                let complete = msg
                    .get("EventList")
                    .is_some_and(|v| v.eq_ignore_ascii_case("Complete"));
                let id = id.to_string();
                if complete {
                    if let Some(Pending {
                        tx,
                        list: Some((response, events)),
                        written_at,
                    }) = pending.remove(&id)
                    {
                        let _ = tx.send(Ok(Response {
                            message: response,
                            events,
                            list_end: Some(msg),
                            written_at,
                        }));
                    }
                } else if let Some(Pending {
                    list: Some((_, events)),
                    ..
                }) = pending.get_mut(&id)
                {
                    events.push(msg);
                }
                None
            }
            MessageKind::Action | MessageKind::Unknown => {
                warn!("AMI message of unknown kind ignored");
                None
            }
        }
    }
}
