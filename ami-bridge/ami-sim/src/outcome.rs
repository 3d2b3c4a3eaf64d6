//! Which outcome a dialed number gets: config rules (glob patterns), then a seeded weighted mix,
//! then the built-in last-digit default; with it, who answers and what they press (`callee`).

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::callee::{AnsweredBy, Callee, DEFAULT_KEY_DELAY_MS, callee_for};

/// What the far end does, one per recorded transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// 180 then 200 OK; the dialplan hangs up after the talk time (answered.ami).
    Answered,
    /// Answered, then the callee sends BYE after the talk time (answered_remote_bye.ami).
    RemoteHangup,
    /// 486 Busy Here.
    Busy,
    /// 603 Decline: Reason 5, DialStatus BUSY, cause 21.
    Decline,
    /// Rings until the Originate `Timeout`; no DialEnd, cause 19, Reason 3.
    NoAnswer,
    /// 503: Reason 8, DialStatus CONGESTION, cause 34.
    Congestion,
    /// 404: Reason 0, DialStatus NOANSWER, cause 1.
    NotFound,
    /// Peer unreachable: no channel, an immediate failed OriginateResponse.
    Unreachable,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Answered => "answered",
            OutcomeKind::RemoteHangup => "remote_hangup",
            OutcomeKind::Busy => "busy",
            OutcomeKind::Decline => "decline",
            OutcomeKind::NoAnswer => "no_answer",
            OutcomeKind::Congestion => "congestion",
            OutcomeKind::NotFound => "not_found",
            OutcomeKind::Unreachable => "unreachable",
        }
    }
}

/// An outcome with its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub ring: Duration,
    pub talk: Duration,
    /// Whether `talk` was configured (by the entry, the top-level `talk_ms` or
    /// `instant_answer`) rather than the built-in 1 s. In the flow context the talk time is how
    /// long the callee stays on the line; an `answered` callee whose talk time nobody set stays
    /// until the flow hangs up.
    pub talk_configured: bool,
    /// Who answers and what they press (the flow context only).
    pub callee: Callee,
}

/// Ring and talk times of an entry that sets none (and of the last-digit plan), unless the
/// config's top-level `ring_ms`/`talk_ms` say otherwise.
pub const DEFAULT_RING_MS: u64 = 200;
pub const DEFAULT_TALK_MS: u64 = 1000;

/// `pattern` -> outcome. Patterns are globs over the dialed number (the dial string's user
/// part): `*` any run of characters, `?` any one character, `#` any one digit, anything else
/// itself. `1555*` is a prefix rule, `*7` a suffix rule.
///
/// `answered_by`, `keys` and `key_delay_ms` say who picks up and what they press once the call
/// is up (the flow context only; unset: the number's built-in plan, see `callee`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub pattern: String,
    pub outcome: OutcomeKind,
    pub ring_ms: Option<u64>,
    pub talk_ms: Option<u64>,
    pub answered_by: Option<AnsweredBy>,
    /// Keys the person presses in order (`"12#"`); `""` presses nothing.
    pub keys: Option<String>,
    pub key_delay_ms: Option<u64>,
}

impl Rule {
    /// A rule with both times set, as tests write them.
    pub fn timed(pattern: &str, outcome: OutcomeKind, ring_ms: u64, talk_ms: u64) -> Rule {
        Rule {
            pattern: pattern.into(),
            outcome,
            ring_ms: Some(ring_ms),
            talk_ms: Some(talk_ms),
            answered_by: None,
            keys: None,
            key_delay_ms: None,
        }
    }

    /// The rule with who answers.
    pub fn with_answered_by(mut self, by: AnsweredBy) -> Rule {
        self.answered_by = Some(by);
        self
    }

    /// The rule with the keys the person presses, each `key_delay_ms` after the last.
    pub fn with_keys(mut self, keys: &str, key_delay_ms: u64) -> Rule {
        self.keys = Some(keys.into());
        self.key_delay_ms = Some(key_delay_ms);
        self
    }
}

/// A weighted outcome; the callee fields as in [`Rule`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    pub outcome: OutcomeKind,
    pub weight: u32,
    pub ring_ms: Option<u64>,
    pub talk_ms: Option<u64>,
    pub answered_by: Option<AnsweredBy>,
    pub keys: Option<String>,
    pub key_delay_ms: Option<u64>,
}

/// What an entry (rule, mix entry, or nothing for the built-in plans) sets.
struct Entry<'a> {
    ring_ms: Option<u64>,
    talk_ms: Option<u64>,
    answered_by: Option<AnsweredBy>,
    keys: Option<&'a str>,
    key_delay_ms: Option<u64>,
}

/// Decides outcomes; owns the seeded generator of the mix.
#[derive(Debug)]
pub struct OutcomePicker {
    rules: Vec<Rule>,
    mix: Vec<MixEntry>,
    mix_total: u64,
    instant: bool,
    rng: SmallRng,
    /// Times of an entry without its own.
    ring_ms: u64,
    talk_ms: u64,
    /// Whether `talk_ms` is the config's (top-level `talk_ms`), not the built-in default.
    talk_configured: bool,
    key_delay_ms: u64,
}

impl OutcomePicker {
    /// `instant`: every call answered at once, ring 0 and talk 0 (`instant_answer`).
    pub fn new(rules: &[Rule], mix: &[MixEntry], seed: u64, instant: bool) -> OutcomePicker {
        OutcomePicker {
            rules: rules.to_vec(),
            mix_total: mix.iter().map(|m| u64::from(m.weight)).sum(),
            mix: mix.to_vec(),
            instant,
            rng: SmallRng::seed_from_u64(seed),
            ring_ms: DEFAULT_RING_MS,
            talk_ms: DEFAULT_TALK_MS,
            talk_configured: false,
            key_delay_ms: DEFAULT_KEY_DELAY_MS,
        }
    }

    /// Ring and talk times for every entry (and the last-digit plan) that sets none.
    pub fn with_default_times(mut self, ring_ms: Option<u64>, talk_ms: Option<u64>) -> Self {
        self.ring_ms = ring_ms.unwrap_or(DEFAULT_RING_MS);
        self.talk_ms = talk_ms.unwrap_or(DEFAULT_TALK_MS);
        self.talk_configured = talk_ms.is_some();
        self
    }

    /// Time before each key for every entry (and the built-in plan) that sets none.
    pub fn with_default_key_delay(mut self, key_delay_ms: Option<u64>) -> Self {
        self.key_delay_ms = key_delay_ms.unwrap_or(DEFAULT_KEY_DELAY_MS);
        self
    }

    fn outcome(&self, number: &str, kind: OutcomeKind, e: Entry<'_>) -> Outcome {
        let key_delay = Duration::from_millis(e.key_delay_ms.unwrap_or(self.key_delay_ms));
        Outcome {
            kind,
            ring: Duration::from_millis(e.ring_ms.unwrap_or(self.ring_ms)),
            talk: Duration::from_millis(e.talk_ms.unwrap_or(self.talk_ms)),
            talk_configured: e.talk_ms.is_some() || self.talk_configured,
            callee: callee_for(number, e.answered_by, e.keys, key_delay),
        }
    }

    pub fn pick(&mut self, number: &str) -> Outcome {
        if self.instant {
            let mut o = self.outcome(number, OutcomeKind::Answered, Entry::NONE);
            o.ring = Duration::ZERO;
            o.talk = Duration::ZERO;
            o.talk_configured = true;
            return o;
        }
        if let Some(rule) = self.rules.iter().find(|r| glob_match(&r.pattern, number)) {
            let e = Entry {
                ring_ms: rule.ring_ms,
                talk_ms: rule.talk_ms,
                answered_by: rule.answered_by,
                keys: rule.keys.as_deref(),
                key_delay_ms: rule.key_delay_ms,
            };
            return self.outcome(number, rule.outcome, e);
        }
        if self.mix_total > 0 {
            let mut roll = self.rng.random_range(0..self.mix_total);
            for entry in &self.mix {
                let w = u64::from(entry.weight);
                if roll < w {
                    let e = Entry {
                        ring_ms: entry.ring_ms,
                        talk_ms: entry.talk_ms,
                        answered_by: entry.answered_by,
                        keys: entry.keys.as_deref(),
                        key_delay_ms: entry.key_delay_ms,
                    };
                    return self.outcome(number, entry.outcome, e);
                }
                roll -= w;
            }
        }
        self.outcome(number, last_digit_default(number), Entry::NONE)
    }
}

impl Entry<'_> {
    const NONE: Entry<'static> = Entry {
        ring_ms: None,
        talk_ms: None,
        answered_by: None,
        keys: None,
        key_delay_ms: None,
    };
}

/// The built-in plan: 0-5 answered, 6 busy, 7 no answer, 8 congestion, 9 not found; a number
/// that does not end in a digit is answered.
pub fn last_digit_default(number: &str) -> OutcomeKind {
    match number.chars().last() {
        Some('6') => OutcomeKind::Busy,
        Some('7') => OutcomeKind::NoAnswer,
        Some('8') => OutcomeKind::Congestion,
        Some('9') => OutcomeKind::NotFound,
        _ => OutcomeKind::Answered,
    }
}

/// Glob match without recursion blow-up: the classic two-pointer walk with one backtrack point.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len()
            && (p[pi] == '?' || (p[pi] == '#' && t[ti].is_ascii_digit()) || p[pi] == t[ti])
        {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    #[test]
    fn globs() {
        assert!(glob_match("1001", "1001"));
        assert!(!glob_match("1001", "10011"));
        assert!(glob_match("+1555*", "+15550100"));
        assert!(glob_match("*7", "5550107"));
        assert!(!glob_match("*7", "5550108"));
        assert!(glob_match("555###", "555123"));
        assert!(!glob_match("555###", "55512a"));
        assert!(glob_match("b?sy", "busy"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("?", ""));
    }

    #[test]
    fn default_plan_by_last_digit() {
        let mut p = SimConfig::default().outcome_picker();
        let kinds: Vec<_> = (0..10).map(|d| p.pick(&format!("55501{d}")).kind).collect();
        use OutcomeKind::*;
        assert_eq!(
            kinds,
            [
                Answered, Answered, Answered, Answered, Answered, Answered, Busy, NoAnswer,
                Congestion, NotFound
            ]
        );
        let o = p.pick("5550100");
        assert_eq!(o.ring, Duration::from_millis(200));
        assert_eq!(o.talk, Duration::from_millis(1000));
        assert_eq!(p.pick("answer").kind, Answered);
    }

    #[test]
    fn rules_win_and_instant_overrides() {
        let cfg = SimConfig {
            rules: vec![Rule {
                ring_ms: Some(5),
                talk_ms: None,
                ..Rule::timed("*0", OutcomeKind::Busy, 0, 0)
            }],
            ..Default::default()
        };
        let mut p = cfg.outcome_picker();
        assert_eq!(p.pick("100").kind, OutcomeKind::Busy);
        assert_eq!(p.pick("100").ring, Duration::from_millis(5));
        let mut p = SimConfig {
            instant_answer: true,
            ..cfg
        }
        .outcome_picker();
        let o = p.pick("100");
        assert_eq!(
            (o.kind, o.ring, o.talk),
            (OutcomeKind::Answered, Duration::ZERO, Duration::ZERO)
        );
    }

    #[test]
    fn top_level_times_apply_only_where_an_entry_sets_none() {
        let cfg = SimConfig::from_toml_str(
            r#"
            ring_ms = 1000
            talk_ms = 2000
            [[rule]]
            pattern = "1*"
            outcome = "answered"
            talk_ms = 50
            [[mix]]
            outcome = "answered"
            weight = 1
            "#,
            "inline",
        )
        .expect("valid config");
        let mut p = cfg.outcome_picker();
        let rule = p.pick("100");
        assert_eq!(
            (rule.ring, rule.talk),
            (Duration::from_millis(1000), Duration::from_millis(50))
        );
        let mixed = p.pick("200");
        assert_eq!(
            (mixed.ring, mixed.talk),
            (Duration::from_millis(1000), Duration::from_millis(2000))
        );
        let plain = SimConfig {
            ring_ms: Some(300),
            ..Default::default()
        };
        let o = plain.outcome_picker().pick("5550100");
        assert_eq!(
            (o.ring, o.talk),
            (Duration::from_millis(300), Duration::from_millis(1000))
        );
    }

    #[test]
    fn callees_come_from_entries_then_the_second_to_last_digit() {
        let cfg = SimConfig::from_toml_str(
            r#"
            key_delay_ms = 700
            [[rule]]
            pattern = "10*"
            outcome = "answered"
            answered_by = "machine"
            [[rule]]
            pattern = "11*"
            outcome = "remote_hangup"
            keys = "12#"
            key_delay_ms = 50
            talk_ms = 400
            "#,
            "inline",
        )
        .expect("valid config");
        let mut p = cfg.outcome_picker();
        let machine = p.pick("1000");
        assert_eq!(machine.callee.answered_by, AnsweredBy::Machine);
        assert_eq!(machine.callee.key_delay, Duration::from_millis(700));
        assert!(!machine.talk_configured, "nobody set a talk time");
        let keyed = p.pick("1160");
        assert_eq!(
            (keyed.callee.answered_by, keyed.callee.keys.as_str()),
            (AnsweredBy::Human, "12#"),
            "the rule's keys over the plan's machine"
        );
        assert_eq!(keyed.callee.key_delay, Duration::from_millis(50));
        assert!(keyed.talk_configured);
        // The last-digit outcome is untouched; the callee reads the digit before it.
        let plain = p.pick("5550175");
        assert_eq!(plain.kind, OutcomeKind::Answered);
        assert_eq!(plain.callee.answered_by, AnsweredBy::Silence);
        let busy = p.pick("5550196");
        assert_eq!(busy.kind, OutcomeKind::Busy);
        assert_eq!(busy.callee.keys, "9");
        let plain = SimConfig::default().outcome_picker().pick("5550100");
        assert_eq!(plain.callee.key_delay, Duration::from_millis(1000));
        assert_eq!(plain.callee.keys, "1");
    }

    #[test]
    fn mix_is_weighted_and_repeatable() {
        let cfg = SimConfig {
            mix: vec![
                MixEntry {
                    outcome: OutcomeKind::Answered,
                    weight: 3,
                    ring_ms: None,
                    talk_ms: None,
                    answered_by: None,
                    keys: None,
                    key_delay_ms: None,
                },
                MixEntry {
                    outcome: OutcomeKind::Busy,
                    weight: 1,
                    ring_ms: None,
                    talk_ms: None,
                    answered_by: None,
                    keys: None,
                    key_delay_ms: None,
                },
            ],
            ..Default::default()
        };
        let run = || {
            let mut p = cfg.outcome_picker();
            (0..4000).map(|_| p.pick("1").kind).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same sequence");
        let busy = a.iter().filter(|k| **k == OutcomeKind::Busy).count();
        assert!(
            (800..1200).contains(&busy),
            "busy {busy} of 4000, expected about 1000"
        );
    }
}
