//! Callback event types and the `call_status` each one carries (the contract's event table).

use super::{CallStatus, Disposition};

crate::text_enum! {
    pub enum EventType("event type") {
        CallStarted = "call_started", CallAnswered = "call_answered",
        CallCompleted = "call_completed", CallBusy = "call_busy", CallNoAnswer = "call_no_answer",
        CallFailed = "call_failed", CallTimeout = "call_timeout", CallCancelled = "call_cancelled",
        CallSkipped = "call_skipped", CallExpired = "call_expired",
        CallAmdResult = "call_amd_result", CallInput = "call_input",
        CallRecordingReady = "call_recording_ready",
        BatchCompleted = "batch_completed",
    }
}

impl EventType {
    /// The `call_status` of the event's body; `None` for batch events.
    pub const fn call_status(self) -> Option<CallStatus> {
        Some(match self {
            EventType::CallStarted => CallStatus::Started,
            EventType::CallAnswered => CallStatus::Answered,
            EventType::CallCompleted => CallStatus::Completed,
            EventType::CallBusy => CallStatus::Busy,
            EventType::CallNoAnswer => CallStatus::NoAnswer,
            EventType::CallFailed => CallStatus::Failed,
            EventType::CallTimeout => CallStatus::Timeout,
            EventType::CallCancelled => CallStatus::Cancelled,
            EventType::CallSkipped => CallStatus::Skipped,
            EventType::CallExpired => CallStatus::Expired,
            EventType::CallAmdResult | EventType::CallInput => CallStatus::Answered,
            // The attempt's terminal event's: its writer sets it.
            EventType::CallRecordingReady | EventType::BatchCompleted => return None,
        })
    }

    /// Ends an attempt (every call event but `call_started`, `call_answered`, and the events
    /// of after the answer: `call_amd_result`, `call_input`, `call_recording_ready`).
    pub const fn is_terminal(self) -> bool {
        !matches!(
            self,
            EventType::CallStarted
                | EventType::CallAnswered
                | EventType::CallAmdResult
                | EventType::CallInput
                | EventType::CallRecordingReady
                | EventType::BatchCompleted
        )
    }

    /// The event type for a terminal attempt outcome.
    pub const fn for_outcome(d: Disposition, answered_then_cut: bool) -> EventType {
        match d {
            Disposition::Answered if answered_then_cut => EventType::CallTimeout,
            Disposition::Answered => EventType::CallCompleted,
            Disposition::Busy => EventType::CallBusy,
            Disposition::NoAnswer => EventType::CallNoAnswer,
            Disposition::Unknown => EventType::CallTimeout,
            Disposition::DoNotCall | Disposition::DestinationNotAllowed => EventType::CallSkipped,
            Disposition::Rejected
            | Disposition::Congestion
            | Disposition::InvalidNumber
            | Disposition::Unreachable
            | Disposition::Failed => EventType::CallFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_table() {
        assert_eq!(
            EventType::CallNoAnswer.call_status(),
            Some(CallStatus::NoAnswer)
        );
        assert_eq!(
            EventType::CallCancelled.call_status(),
            Some(CallStatus::Cancelled)
        );
        assert_eq!(EventType::BatchCompleted.call_status(), None);
        assert!(!EventType::CallStarted.is_terminal());
        assert!(EventType::CallCancelled.is_terminal());
        assert_eq!(
            EventType::for_outcome(Disposition::Rejected, false),
            EventType::CallFailed
        );
        assert_eq!(
            EventType::for_outcome(Disposition::Answered, true),
            EventType::CallTimeout
        );
        assert_eq!(
            EventType::for_outcome(Disposition::Unknown, false),
            EventType::CallTimeout
        );
        // every terminal call event's status is a final state; the in-progress ones are not
        for e in EventType::ALL {
            if let Some(s) = e.call_status() {
                assert_eq!(s.is_final(), e.is_terminal(), "{e}");
            }
        }
    }
}
