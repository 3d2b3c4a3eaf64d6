//! After the answer: the batch's answering-machine policy and who the PBX says answered.

crate::text_enum! {
    /// What a batch does about answering machines (contract: `amd`). `off`: no detection;
    /// `detect`: report who answered, the flow goes on as for a person; `hangup_machine`: end
    /// the call when a machine answers; `voicemail`: play `voicemail_prompt` to a machine once
    /// its greeting has ended.
    pub enum AmdPolicy("amd policy") {
        Off = "off", Detect = "detect", HangupMachine = "hangup_machine", Voicemail = "voicemail",
    }
}

crate::text_enum! {
    /// Who answered (contract: `answered_by`), from Asterisk's `AMDSTATUS`.
    pub enum AnsweredBy("answered_by") {
        Human = "human", Machine = "machine", Unknown = "unknown",
    }
}

impl AnsweredBy {
    /// Asterisk's `AMDSTATUS`: `HUMAN`, `MACHINE`; `NOTSURE` and `HANGUP` (and anything else)
    /// are `unknown`, which the flow handles as a person.
    pub fn from_amd_status(status: &str) -> AnsweredBy {
        match status.trim() {
            "HUMAN" => AnsweredBy::Human,
            "MACHINE" => AnsweredBy::Machine,
            _ => AnsweredBy::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amd_statuses() {
        assert_eq!(AnsweredBy::from_amd_status("HUMAN"), AnsweredBy::Human);
        assert_eq!(AnsweredBy::from_amd_status("MACHINE"), AnsweredBy::Machine);
        assert_eq!(AnsweredBy::from_amd_status("NOTSURE"), AnsweredBy::Unknown);
        assert_eq!(AnsweredBy::from_amd_status("HANGUP"), AnsweredBy::Unknown);
        assert_eq!(AnsweredBy::from_amd_status(""), AnsweredBy::Unknown);
        assert_eq!("hangup_machine".parse(), Ok(AmdPolicy::HangupMachine));
    }
}
