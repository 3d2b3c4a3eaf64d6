//! The outcome of an attempt, as the contract names it.

crate::text_enum! {
    /// `unknown`: the platform lost track of the call (never retried on its own).
    pub enum Disposition("disposition") {
        Answered = "answered", Busy = "busy", NoAnswer = "no_answer", Rejected = "rejected",
        Congestion = "congestion", InvalidNumber = "invalid_number", Unreachable = "unreachable",
        Failed = "failed", Unknown = "unknown",
        DoNotCall = "do_not_call", DestinationNotAllowed = "destination_not_allowed",
    }
}

impl Disposition {
    /// Dispositions a retry policy may name in `retry_on`. `unknown` is left out on purpose:
    /// the person may have been reached. Never-dialed outcomes are not retryable either.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            Disposition::Busy
                | Disposition::NoAnswer
                | Disposition::Rejected
                | Disposition::Congestion
                | Disposition::Unreachable
                | Disposition::Failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_is_never_retryable() {
        assert!(!Disposition::Unknown.is_retryable());
        assert!(!Disposition::Answered.is_retryable());
        assert!(Disposition::Busy.is_retryable());
        for d in Disposition::ALL {
            assert_eq!(d.as_str().parse::<Disposition>(), Ok(*d));
        }
    }
}
