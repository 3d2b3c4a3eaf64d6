//! The state of one dial attempt (the `call_attempts.state` column): how far its channel got.

crate::text_enum! {
    /// Lifecycle of an attempt, forward only (a repeated or late signal never moves it back):
    /// `originating` (claimed, Originate sent or about to be, no channel yet), `started` (its
    /// channel exists on the PBX), `answered`, `ended` (its outcome is written).
    pub enum AttemptState("attempt state") {
        Originating = "originating", Started = "started", Answered = "answered", Ended = "ended",
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
