//! From AMI events to the contract's call events: the one table, in one place.
//!
//! An [`AttemptTracker`] follows one call attempt (its channel, or both halves of a `Local/`
//! channel) and says when the contract's `call_started`, `call_answered` and the terminal event
//! happen, and with which disposition. Rules, from the recordings of a real Asterisk 20
//! (`shared/ami-transcripts/README.md`):
//! - started: the attempt's `Newchannel`, never "Originate successfully queued", which Asterisk
//!   answers even for a peer that is down;
//! - answered: `Newstate` Up, `DialEnd` ANSWER, or `OriginateResponse` Reason 4, whichever
//!   comes first (the order varies from run to run);
//! - ended: once the `OriginateResponse` is in and every channel seen has hung up. A failure with
//!   no channel at all ends at the `OriginateResponse` (Reason 0: peer down, unknown
//!   technology). The hangup cause decides before the Reason does: `Reason 0` alone cannot tell a
//!   404 (cause 1) from a failed originate, and a 603 arrives as `Reason 5` with cause 21.
//!   A `Local/` channel's own half hangs up with cause 0; the other half's cause counts.

use ami_bridge::{ChannelState, DialStatus, Event, OriginateReason};
use dialer_core::domain::{AnsweredBy, Disposition, EventType};

/// What an event meant for the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Started,
    Answered,
    /// The flow's answering-machine detection decided (`UserEvent: DialerAMD`).
    Amd {
        answered_by: AnsweredBy,
        cause: Option<String>,
    },
    /// The flow's gathering ended (`UserEvent: DialerDTMF`): the keys, finish key left out.
    Input {
        digits: String,
    },
    Ended(Outcome),
}

/// The `UserEvent` names of the shipped dialplan (`docs/call-flow.md`).
pub const USER_EVENT_AMD: &str = "DialerAMD";
pub const USER_EVENT_INPUT: &str = "DialerDTMF";
pub const USER_EVENT_PLAYBACK: &str = "DialerPlayback";

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub disposition: Disposition,
    /// The Q.850 hangup cause that decided it, if a channel existed.
    pub cause: Option<u16>,
    /// For dispositions that do not speak for themselves (`failed`, `unreachable`, `unknown`).
    pub error_message: Option<String>,
}

impl Outcome {
    /// The terminal event type of the contract's table.
    pub fn event_type(&self) -> EventType {
        EventType::for_outcome(self.disposition, false)
    }
}

/// Q.850 causes that decide the disposition on their own.
pub fn disposition_for_cause(cause: u16) -> Option<Disposition> {
    Some(match cause {
        17 => Disposition::Busy,
        21 => Disposition::Rejected,
        18 | 19 => Disposition::NoAnswer,
        34 | 38 | 41 | 42 => Disposition::Congestion,
        1 | 28 => Disposition::InvalidNumber,
        27 => Disposition::Unreachable,
        _ => return None,
    })
}

/// `OriginateResponse` Reason, when no cause decided.
pub fn disposition_for_reason(reason: OriginateReason, channel_existed: bool) -> Disposition {
    match reason {
        OriginateReason::Answered => Disposition::Answered,
        OriginateReason::Busy => Disposition::Busy,
        OriginateReason::RingTimeout => Disposition::NoAnswer,
        OriginateReason::Congestion => Disposition::Congestion,
        OriginateReason::Failed if !channel_existed => Disposition::Unreachable,
        OriginateReason::Failed | OriginateReason::Hangup | OriginateReason::Other(_) => {
            Disposition::Failed
        }
    }
}

#[derive(Debug, Clone)]
struct Channel {
    uniqueid: String,
    hung_up: bool,
}

/// Follows one attempt's events; feed it only events already routed to this attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptTracker {
    channels: Vec<Channel>,
    answered: bool,
    response: Option<Option<OriginateReason>>,
    cause: Option<u16>,
    cause_txt: Option<String>,
    ended: bool,
    /// Prompts the flow could not play (`UserEvent: DialerPlayback`), for the end's message.
    failed_prompts: Vec<String>,
    amd_reported: bool,
    input_reported: bool,
}

impl AttemptTracker {
    pub fn new() -> AttemptTracker {
        AttemptTracker::default()
    }

    /// Follows a call found live on the PBX after the dispatcher that originated it died: its
    /// OriginateResponse went to that dispatcher's session, so the channel's hangup alone ends it.
    pub fn adopted(uniqueid: String, answered: bool) -> AttemptTracker {
        AttemptTracker {
            channels: vec![Channel {
                uniqueid,
                hung_up: false,
            }],
            answered,
            response: Some(None),
            ..AttemptTracker::default()
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// Whether the attempt has a live channel on the PBX.
    pub fn has_live_channel(&self) -> bool {
        self.channels.iter().any(|c| !c.hung_up)
    }

    /// The signal this event gives, if any. Events after the end give nothing.
    pub fn on_event(&mut self, event: &Event) -> Option<Signal> {
        if self.ended {
            return None;
        }
        match event {
            Event::Newchannel(c) => {
                let uniqueid = c.uniqueid()?.to_string();
                if self.channels.iter().any(|ch| ch.uniqueid == uniqueid) {
                    return None;
                }
                let first = self.channels.is_empty();
                self.channels.push(Channel {
                    uniqueid,
                    hung_up: false,
                });
                first.then_some(Signal::Started)
            }
            Event::Newstate(c) if c.state == Some(ChannelState::Up) => self.answer(),
            Event::DialEnd(d) if d.dial_status == Some(DialStatus::Answer) => self.answer(),
            Event::Hangup(h) => {
                let uniqueid = h.channel_event().uniqueid()?;
                if let Some(ch) = self.channels.iter_mut().find(|c| c.uniqueid == uniqueid) {
                    ch.hung_up = true;
                }
                if matches!(self.cause, None | Some(0)) && h.cause.is_some() {
                    self.cause = h.cause;
                    self.cause_txt = h.cause_txt().map(str::to_string);
                }
                self.try_end()
            }
            Event::UserEvent(u) => self.user_event(u),
            Event::OriginateResponse(o) => {
                self.response = Some(o.reason);
                if o.success && !self.answered {
                    self.answered = true;
                    if self.channels.iter().all(|c| !c.hung_up) {
                        return Some(Signal::Answered);
                    }
                }
                self.try_end()
            }
            _ => None,
        }
    }

    /// The flow's reports, once each, and only for an answered call (the dialplan runs after
    /// the answer; anything else is not ours to believe).
    fn user_event(&mut self, u: &ami_bridge::UserEvent) -> Option<Signal> {
        if !self.answered {
            return None;
        }
        match u.name.as_deref()? {
            USER_EVENT_AMD if !self.amd_reported => {
                self.amd_reported = true;
                Some(Signal::Amd {
                    answered_by: AnsweredBy::from_amd_status(u.header("Status").unwrap_or("")),
                    cause: u
                        .header("Cause")
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned),
                })
            }
            USER_EVENT_INPUT if !self.input_reported => {
                self.input_reported = true;
                Some(Signal::Input {
                    digits: keys_only(u.header("Digits").unwrap_or("")),
                })
            }
            USER_EVENT_PLAYBACK => {
                let prompt = u.header("Prompt").unwrap_or("a").trim().to_owned();
                if !self.failed_prompts.contains(&prompt) {
                    self.failed_prompts.push(prompt);
                }
                None
            }
            _ => None,
        }
    }

    fn answer(&mut self) -> Option<Signal> {
        if self.answered {
            return None;
        }
        self.answered = true;
        Some(Signal::Answered)
    }

    fn try_end(&mut self) -> Option<Signal> {
        if self.response.is_none() || self.has_live_channel() {
            return None;
        }
        Some(self.end())
    }

    /// Ends the attempt on what was seen when no `OriginateResponse` came in time after the
    /// channels were gone (a synchronous Originate never sends one).
    pub fn finish_without_response(&mut self) -> Option<Signal> {
        if self.ended || self.has_live_channel() || self.channels.is_empty() {
            return None;
        }
        Some(self.end())
    }

    /// The platform lost track of the attempt (PBX gone, guard time passed): `unknown`, which is
    /// never retried on its own since the person may have been reached.
    pub fn lost(&mut self, why: &str) -> Option<Signal> {
        if self.ended {
            return None;
        }
        self.ended = true;
        Some(Signal::Ended(Outcome {
            disposition: Disposition::Unknown,
            cause: self.cause,
            error_message: Some(why.to_string()),
        }))
    }

    fn end(&mut self) -> Signal {
        self.ended = true;
        let channel_existed = !self.channels.is_empty();
        let reason = self.response.flatten();
        let disposition = if self.answered {
            Disposition::Answered
        } else if let Some(d) = self.cause.and_then(disposition_for_cause) {
            d
        } else if let Some(r) = reason {
            disposition_for_reason(r, channel_existed)
        } else {
            Disposition::Failed
        };
        let error_message = match disposition {
            Disposition::Unreachable if !channel_existed => Some(format!(
                "no channel could be created (OriginateResponse Reason {})",
                reason.map_or(0, |r| r.code())
            )),
            Disposition::Failed => Some(match (self.cause, &self.cause_txt, reason) {
                (Some(c), Some(t), _) => format!("hangup cause {c} ({t}) before answer"),
                (Some(c), None, _) => format!("hangup cause {c} before answer"),
                (None, _, Some(r)) => format!("originate failed (Reason {})", r.code()),
                (None, _, None) => "originate failed".to_string(),
            }),
            Disposition::Answered if !self.failed_prompts.is_empty() => Some(format!(
                "the PBX could not play the {} prompt",
                self.failed_prompts.join(" and the ")
            )),
            _ => None,
        };
        Signal::Ended(Outcome {
            disposition,
            cause: self.cause.filter(|c| *c != 0),
            error_message,
        })
    }
}

/// The keys of a keypad in what the dialplan reported, nothing else: a value is echoed to the
/// client, and a PBX's odd header must not put anything else into it.
fn keys_only(digits: &str) -> String {
    digits
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_of_the_contract_table() {
        assert_eq!(disposition_for_cause(17), Some(Disposition::Busy));
        assert_eq!(disposition_for_cause(21), Some(Disposition::Rejected));
        assert_eq!(disposition_for_cause(19), Some(Disposition::NoAnswer));
        assert_eq!(disposition_for_cause(18), Some(Disposition::NoAnswer));
        for c in [34, 38, 41, 42] {
            assert_eq!(disposition_for_cause(c), Some(Disposition::Congestion));
        }
        assert_eq!(disposition_for_cause(1), Some(Disposition::InvalidNumber));
        assert_eq!(disposition_for_cause(28), Some(Disposition::InvalidNumber));
        assert_eq!(disposition_for_cause(27), Some(Disposition::Unreachable));
        assert_eq!(disposition_for_cause(16), None);
        assert_eq!(disposition_for_cause(0), None);
    }

    #[test]
    fn reasons_without_a_cause() {
        assert_eq!(
            disposition_for_reason(OriginateReason::Failed, false),
            Disposition::Unreachable
        );
        assert_eq!(
            disposition_for_reason(OriginateReason::Failed, true),
            Disposition::Failed
        );
        assert_eq!(
            disposition_for_reason(OriginateReason::RingTimeout, true),
            Disposition::NoAnswer
        );
    }

    #[test]
    fn lost_is_unknown_and_final() {
        let mut t = AttemptTracker::new();
        let Some(Signal::Ended(o)) = t.lost("PBX connection lost") else {
            panic!()
        };
        assert_eq!(o.disposition, Disposition::Unknown);
        assert_eq!(o.event_type(), EventType::CallTimeout);
        assert_eq!(t.lost("again"), None);
    }
}
