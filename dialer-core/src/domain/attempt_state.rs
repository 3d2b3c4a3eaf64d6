//! The state of one dial attempt (the `call_attempts.state` column): how far its channel got.

crate::text_enum! {
    /// Lifecycle of an attempt, forward only: a repeated or late signal never moves it back.
    pub enum AttemptState("attempt state") {
        /// Claimed and (about to be) sent as an Originate; no channel yet.
        Originating = "originating",
        /// Its channel exists on the PBX.
        Started = "started",
        /// The callee answered.
        Answered = "answered",
        /// Over: its outcome is written.
        Ended = "ended",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_schemas() {
        let names: Vec<&str> = AttemptState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["originating", "started", "answered", "ended"]);
        for s in AttemptState::ALL {
            assert_eq!(s.as_str().parse::<AttemptState>(), Ok(*s));
        }
    }
}
