//! Typed views of the events a dialer acts on; every other event stays a raw [`Message`].
//!
//! Each typed event keeps its message, so any header (repeated `ChanVariable`s included) is still
//! there; the typed part only parses what code branches on (states, causes, reasons).

use crate::message::{Message, MessageKind};

/// An event from Asterisk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Newchannel(ChannelEvent),
    Newstate(ChannelEvent),
    DialBegin(DialEvent),
    DialEnd(DialEvent),
    Hangup(Hangup),
    OriginateResponse(OriginateResponse),
    VarSet(ChannelEvent),
    DtmfEnd(ChannelEvent),
    FullyBooted(Message),
    Shutdown(Shutdown),
    /// The dialplan's `UserEvent()` (class `user`).
    UserEvent(UserEvent),
    /// Any other event, headers as received.
    Other(Message),
}

impl Event {
    /// Types a message whose first header is `Event:`; `None` for responses and garbage.
    pub fn from_message(msg: Message) -> Option<Event> {
        if msg.kind() != MessageKind::Event {
            return None;
        }
        let name = msg.first_value().unwrap_or_default();
        Some(match name {
            "Newchannel" => Event::Newchannel(ChannelEvent::new(msg)),
            "Newstate" => Event::Newstate(ChannelEvent::new(msg)),
            "DialBegin" => Event::DialBegin(DialEvent::new(msg)),
            "DialEnd" => Event::DialEnd(DialEvent::new(msg)),
            "Hangup" => Event::Hangup(Hangup::new(msg)),
            "OriginateResponse" => Event::OriginateResponse(OriginateResponse::new(msg)),
            "VarSet" => Event::VarSet(ChannelEvent::new(msg)),
            "DTMFEnd" => Event::DtmfEnd(ChannelEvent::new(msg)),
            "FullyBooted" => Event::FullyBooted(msg),
            "Shutdown" => Event::Shutdown(Shutdown::new(msg)),
            "UserEvent" => Event::UserEvent(UserEvent::new(msg)),
            _ => Event::Other(msg),
        })
    }

    pub fn message(&self) -> &Message {
        match self {
            Event::Newchannel(e) | Event::Newstate(e) | Event::VarSet(e) | Event::DtmfEnd(e) => {
                &e.msg
            }
            Event::DialBegin(e) | Event::DialEnd(e) => &e.msg,
            Event::Hangup(e) => &e.channel.msg,
            Event::OriginateResponse(e) => &e.msg,
            Event::Shutdown(e) => &e.msg,
            Event::UserEvent(e) => &e.msg,
            Event::FullyBooted(m) | Event::Other(m) => m,
        }
    }

    pub fn name(&self) -> &str {
        self.message().first_value().unwrap_or_default()
    }

    /// When the client read this event off the socket (see [`Message::read_at`]).
    pub fn read_at(&self) -> Option<std::time::Instant> {
        self.message().read_at()
    }

    /// The Uniqueid of the channel the event is about (`DestUniqueid` for Dial events), if any.
    pub fn uniqueid(&self) -> Option<&str> {
        match self {
            Event::DialBegin(e) | Event::DialEnd(e) => e.dest_uniqueid(),
            Event::OriginateResponse(e) => e.uniqueid(),
            other => other.message().get("Uniqueid"),
        }
    }

    /// A channel variable the event carries for its channel (`ChanVariable`, or
    /// `DestChanVariable` on Dial events), as with `channelvars` set in manager.conf.
    pub fn chan_variable(&self, name: &str) -> Option<&str> {
        match self {
            Event::DialBegin(e) | Event::DialEnd(e) => e.dest_chan_variable(name),
            other => other.message().chan_variable(name),
        }
    }
}

/// Asterisk's channel states (`ChannelState` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    Down,
    Reserved,
    OffHook,
    Dialing,
    Ring,
    Ringing,
    Up,
    Busy,
    DialingOffHook,
    PreRing,
    Unknown(u16),
}

impl ChannelState {
    pub fn from_code(code: u16) -> ChannelState {
        match code {
            0 => ChannelState::Down,
            1 => ChannelState::Reserved,
            2 => ChannelState::OffHook,
            3 => ChannelState::Dialing,
            4 => ChannelState::Ring,
            5 => ChannelState::Ringing,
            6 => ChannelState::Up,
            7 => ChannelState::Busy,
            8 => ChannelState::DialingOffHook,
            9 => ChannelState::PreRing,
            other => ChannelState::Unknown(other),
        }
    }
}

/// A typed event: the message kept whole, plus the headers code branches on, parsed once.
macro_rules! typed_event {
    (
        $(#[$doc:meta])*
        $name:ident { $($field:ident: $ty:ty = |$m:ident| $parse:expr),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            msg: Message,
            $(pub $field: $ty,)*
        }

        impl $name {
            fn new(msg: Message) -> $name {
                $(let $field = { let $m = &msg; $parse };)*
                $name { msg, $($field),* }
            }

            pub fn message(&self) -> &Message {
                &self.msg
            }
        }
    };
}

typed_event! {
    /// An event about one channel (Newchannel, Newstate, VarSet, DTMFEnd...).
    ChannelEvent {
        state: Option<ChannelState> =
            |m| parse_num(m.get("ChannelState")).map(ChannelState::from_code),
    }
}

impl ChannelEvent {
    pub fn channel(&self) -> Option<&str> {
        self.msg.get("Channel")
    }
    pub fn uniqueid(&self) -> Option<&str> {
        self.msg.get("Uniqueid")
    }
    pub fn linkedid(&self) -> Option<&str> {
        self.msg.get("Linkedid")
    }
    /// VarSet: the variable's name and value.
    pub fn variable(&self) -> Option<(&str, &str)> {
        Some((
            self.msg.get("Variable")?,
            self.msg.get("Value").unwrap_or(""),
        ))
    }
    /// DTMFEnd: the digit.
    pub fn digit(&self) -> Option<&str> {
        self.msg.get("Digit")
    }
}

typed_event! {
    /// `UserEvent(<name>,<Header>: <value>,...)` from the dialplan: the channel's own headers
    /// first (so `Uniqueid` routes it like any event of the channel), then `UserEvent: <name>`,
    /// then the headers as the dialplan wrote them.
    UserEvent {
        name: Option<String> = |m| m.get("UserEvent").map(str::to_owned),
    }
}

impl UserEvent {
    /// A header the dialplan wrote (the first of that name).
    pub fn header(&self, key: &str) -> Option<&str> {
        self.msg.get(key)
    }
}

/// `DialStatus` of DialState/DialEnd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialStatus {
    Answer,
    Busy,
    NoAnswer,
    Cancel,
    Congestion,
    ChanUnavail,
    DontCall,
    Torture,
    InvalidArgs,
    Ringing,
    Progress,
    Proceeding,
    Other(String),
}

impl DialStatus {
    pub fn parse(s: &str) -> DialStatus {
        match s {
            "ANSWER" => DialStatus::Answer,
            "BUSY" => DialStatus::Busy,
            "NOANSWER" => DialStatus::NoAnswer,
            "CANCEL" => DialStatus::Cancel,
            "CONGESTION" => DialStatus::Congestion,
            "CHANUNAVAIL" => DialStatus::ChanUnavail,
            "DONTCALL" => DialStatus::DontCall,
            "TORTURE" => DialStatus::Torture,
            "INVALIDARGS" => DialStatus::InvalidArgs,
            "RINGING" => DialStatus::Ringing,
            "PROGRESS" => DialStatus::Progress,
            "PROCEEDING" => DialStatus::Proceeding,
            other => DialStatus::Other(other.to_string()),
        }
    }
}

typed_event! {
    /// DialBegin / DialEnd: an originated call has no caller side, so the channel is `Dest*`.
    DialEvent {
        dial_status: Option<DialStatus> = |m| m.get("DialStatus").map(DialStatus::parse),
    }
}

impl DialEvent {
    pub fn dest_channel(&self) -> Option<&str> {
        self.msg.get("DestChannel")
    }
    pub fn dest_uniqueid(&self) -> Option<&str> {
        self.msg.get("DestUniqueid")
    }
    pub fn dest_chan_variable(&self, name: &str) -> Option<&str> {
        self.msg.chan_variable_with_prefix("Dest", name)
    }
}

/// Hangup: the channel is gone; `cause` is the Q.850 code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hangup {
    channel: ChannelEvent,
    pub cause: Option<u16>,
}

impl Hangup {
    fn new(msg: Message) -> Hangup {
        let cause = parse_num(msg.get("Cause"));
        Hangup {
            channel: ChannelEvent::new(msg),
            cause,
        }
    }
    pub fn channel_event(&self) -> &ChannelEvent {
        &self.channel
    }
    pub fn cause_txt(&self) -> Option<&str> {
        self.channel.msg.get("Cause-txt")
    }
}

/// OriginateResponse `Reason` (Asterisk's `AST_CONTROL_*` outcome of the outgoing call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginateReason {
    /// 0: no channel, or the call failed without a clearer reason (404 included).
    Failed,
    /// 1: hung up before an answer.
    Hangup,
    /// 3: rang until the Originate timeout.
    RingTimeout,
    /// 4: answered.
    Answered,
    /// 5: busy (486 and 603 alike).
    Busy,
    /// 8: congestion.
    Congestion,
    Other(u16),
}

impl OriginateReason {
    pub fn from_code(code: u16) -> OriginateReason {
        match code {
            0 => OriginateReason::Failed,
            1 => OriginateReason::Hangup,
            3 => OriginateReason::RingTimeout,
            4 => OriginateReason::Answered,
            5 => OriginateReason::Busy,
            8 => OriginateReason::Congestion,
            other => OriginateReason::Other(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            OriginateReason::Failed => 0,
            OriginateReason::Hangup => 1,
            OriginateReason::RingTimeout => 3,
            OriginateReason::Answered => 4,
            OriginateReason::Busy => 5,
            OriginateReason::Congestion => 8,
            OriginateReason::Other(c) => c,
        }
    }
}

typed_event! {
    /// The final word on an `Async: true` Originate. Its place among the channel's events
    /// varies.
    OriginateResponse {
        success: bool =
            |m| m.get("Response").is_some_and(|r| r.eq_ignore_ascii_case("Success")),
        reason: Option<OriginateReason> =
            |m| parse_num(m.get("Reason")).map(OriginateReason::from_code),
    }
}

impl OriginateResponse {
    pub fn action_id(&self) -> Option<&str> {
        self.msg.action_id()
    }
    /// The channel name on success; the dial string as sent on failure.
    pub fn channel(&self) -> Option<&str> {
        self.msg.get("Channel")
    }
    /// `None` for `<unknown>` (a failure without `ChannelId`).
    pub fn uniqueid(&self) -> Option<&str> {
        self.msg.get("Uniqueid").filter(|u| *u != "<unknown>")
    }
}

typed_event! {
    /// Asterisk is stopping; every channel on it is gone.
    Shutdown {}
}

impl Shutdown {
    pub fn restart(&self) -> bool {
        self.msg
            .get("Restart")
            .is_some_and(|r| r.eq_ignore_ascii_case("true"))
    }
}

fn parse_num(v: Option<&str>) -> Option<u16> {
    v?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_originate_response_has_no_uniqueid() {
        let m = Message::from_pairs(&[
            ("Event", "OriginateResponse"),
            ("Privilege", "call,all"),
            ("ActionID", "busy-orig-1"),
            ("Response", "Failure"),
            ("Channel", "SIP/1002@trunk-busy"),
            ("Reason", "5"),
            ("Uniqueid", "<unknown>"),
        ]);
        let Some(Event::OriginateResponse(o)) = Event::from_message(m) else {
            panic!("not typed")
        };
        assert!(!o.success);
        assert_eq!(o.reason, Some(OriginateReason::Busy));
        assert_eq!(o.uniqueid(), None);
        assert_eq!(o.action_id(), Some("busy-orig-1"));
    }

    #[test]
    fn responses_are_not_events_even_with_event_headers() {
        let m = Message::from_pairs(&[("Response", "Success"), ("Event", "Hangup")]);
        assert_eq!(Event::from_message(m), None);
    }
}
