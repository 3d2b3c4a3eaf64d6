//! Who picks up an answered call and what they press: what the flow after the answer
//! (docs/call-flow.md) reacts to. Per number from the config's rules and mix, else from the
//! built-in plan on the number's **second-to-last** digit. Only a call into the flow context
//! runs the flow, and the plan reads another digit than the last-digit plan of outcomes, so no
//! number's outcome changes: only what happens after its answer, in the flow context.

use std::time::Duration;

use serde::Deserialize;

/// Who answers, as AMD would tell them apart (amd_human, amd_machine, amd_silence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    /// Says "hello?" and waits: AMD `HUMAN`, `HUMAN-800-800`.
    Human,
    /// An answering machine's greeting: AMD `MACHINE`, `LONGGREETING-1500-1500`.
    Machine,
    /// Dead air: AMD `MACHINE`, `INITIALSILENCE-2500-2500`.
    Silence,
}

impl AnsweredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::Machine => "machine",
            AnsweredBy::Silence => "silence",
        }
    }
}

/// What the callee of an answered call does once it is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callee {
    pub answered_by: AnsweredBy,
    /// Keys pressed in order once asked (the flow's `Read` runs); empty: presses nothing.
    /// Always empty for a machine or dead air.
    pub keys: String,
    /// Before each key: from the start of the `Read`, then from the previous key's end.
    pub key_delay: Duration,
}

/// Time before each key when neither the entry nor the config's top level sets one: the
/// recorded person (amd_human) pressed 1.6 s into the Read; a second keeps runs short.
pub const DEFAULT_KEY_DELAY_MS: u64 = 1000;

/// The keys a DTMF sender can press.
pub const DTMF_KEYS: &str = "0123456789*#ABCD";

/// The built-in plan, by the number's second-to-last digit:
///
/// | digit | callee |
/// |---|---|
/// | 0-5 (or none) | a person who presses `1` |
/// | 6 | an answering machine |
/// | 7 | dead air |
/// | 8 | a person who presses nothing |
/// | 9 | a person who presses `9` (the usual opt-out digit) |
///
/// "None" is a number shorter than two characters or whose second-to-last is not a digit.
pub fn second_to_last_digit_default(number: &str) -> (AnsweredBy, &'static str) {
    match number.chars().rev().nth(1) {
        Some('6') => (AnsweredBy::Machine, ""),
        Some('7') => (AnsweredBy::Silence, ""),
        Some('8') => (AnsweredBy::Human, ""),
        Some('9') => (AnsweredBy::Human, "9"),
        _ => (AnsweredBy::Human, "1"),
    }
}

/// The callee of `number`: what an entry sets, the rest from the built-in plan. An entry that
/// sets keys but not who answers means a person; a machine or dead air presses no key,
/// whatever `keys` says.
pub fn callee_for(
    number: &str,
    answered_by: Option<AnsweredBy>,
    keys: Option<&str>,
    key_delay: Duration,
) -> Callee {
    let (plan_by, plan_keys) = second_to_last_digit_default(number);
    let answered_by = match (answered_by, keys) {
        (Some(by), _) => by,
        (None, Some(_)) => AnsweredBy::Human,
        (None, None) => plan_by,
    };
    let keys = match answered_by {
        AnsweredBy::Human => keys.unwrap_or(plan_keys).to_string(),
        AnsweredBy::Machine | AnsweredBy::Silence => String::new(),
    };
    Callee {
        answered_by,
        keys,
        key_delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_by_second_to_last_digit() {
        use AnsweredBy::*;
        let plan: Vec<_> = (0..10)
            .map(|d| second_to_last_digit_default(&format!("55501{d}0")))
            .collect();
        assert_eq!(
            plan,
            [
                (Human, "1"),
                (Human, "1"),
                (Human, "1"),
                (Human, "1"),
                (Human, "1"),
                (Human, "1"),
                (Machine, ""),
                (Silence, ""),
                (Human, ""),
                (Human, "9"),
            ]
        );
        assert_eq!(second_to_last_digit_default("7"), (Human, "1"));
        assert_eq!(second_to_last_digit_default("busy"), (Human, "1"));
    }

    #[test]
    fn entries_override_the_plan_field_by_field() {
        let d = Duration::from_millis(5);
        let c = callee_for("5550160", Some(AnsweredBy::Human), None, d);
        assert_eq!((c.answered_by, c.keys.as_str()), (AnsweredBy::Human, ""));
        let c = callee_for("5550160", None, Some("12#"), d);
        assert_eq!(
            (c.answered_by, c.keys.as_str()),
            (AnsweredBy::Human, "12#"),
            "keys mean a person, even where the plan has a machine"
        );
        let c = callee_for("5550100", Some(AnsweredBy::Machine), Some("1"), d);
        assert_eq!(c.keys, "", "machines press nothing");
        assert_eq!(c.key_delay, d);
    }
}
