//! The Originate's variables of the flow after the answer (docs/call-flow.md), read as the
//! shipped dialplan reads them: an unset variable and an empty one are the same, and a value the
//! dialplan's applications would not understand is taken the way they take it.

use std::time::Duration;

/// `DIALER_AMD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AmdMode {
    /// Report and go on as for a person.
    Detect,
    /// A machine is hung up on.
    HangupMachine,
    /// A machine gets the voicemail prompt after its greeting.
    Voicemail,
}

/// `Read()`'s arguments: `DIALER_GATHER_MAX`, `_TIMEOUT`, `_FINISH`, `DIALER_OPT_OUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gather {
    pub max: u32,
    /// For each key, from the start of the Read or the previous key.
    pub timeout: Duration,
    /// Ends the Read early; not part of the digits.
    pub finish: Option<char>,
    /// As the first key, ends the Read (and is part of the digits).
    pub opt_out: Option<char>,
}

/// Read's own limit on digits (app_read.c: outside 1-255 it reads up to 255).
const READ_MAX_DIGITS: u32 = 255;
/// Read without a usable timeout waits the channel's response timeout (`TIMEOUT(response)`,
/// 10 s unless the dialplan sets it).
const READ_DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FlowVars {
    /// `DIALER_CALL_ID`, the `CallID` of every UserEvent.
    pub call_id: String,
    pub amd: Option<AmdMode>,
    pub message: Option<String>,
    pub voicemail: Option<String>,
    pub gather: Option<Gather>,
    pub record_url: Option<String>,
}

impl FlowVars {
    /// The flow's variables among an Originate's `Variable:` pairs (the last one of a name wins,
    /// as Asterisk sets them in order).
    pub(crate) fn from_variables(vars: &[(String, String)]) -> FlowVars {
        let get = |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let owned = |name: &str| get(name).map(str::to_string);
        // The dialplan compares against the two special modes; anything else only detects.
        let amd = get("DIALER_AMD").map(|v| match v {
            "hangup_machine" => AmdMode::HangupMachine,
            "voicemail" => AmdMode::Voicemail,
            _ => AmdMode::Detect,
        });
        let gather = get("DIALER_GATHER_MAX").map(|max| Gather {
            // atoi, then Read's own bounds.
            max: max
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=READ_MAX_DIGITS).contains(m))
                .unwrap_or(READ_MAX_DIGITS),
            // atof: seconds, fractions allowed; none or not positive is the default.
            timeout: get("DIALER_GATHER_TIMEOUT")
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t > 0.0)
                .map_or(READ_DEFAULT_TIMEOUT, |t| {
                    Duration::from_millis((t * 1000.0) as u64)
                }),
            finish: get("DIALER_GATHER_FINISH").and_then(|f| f.chars().next()),
            opt_out: get("DIALER_OPT_OUT").and_then(|o| o.chars().next()),
        });
        FlowVars {
            call_id: owned("DIALER_CALL_ID").unwrap_or_default(),
            amd,
            message: owned("DIALER_MESSAGE"),
            voicemail: owned("DIALER_VOICEMAIL"),
            gather,
            record_url: owned("DIALER_RECORD_URL"),
        }
    }

    /// Whether the flow does anything beyond answering: without any step the call is answered
    /// and hung up as any other.
    pub(crate) fn has_steps(&self) -> bool {
        self.amd.is_some()
            || self.message.is_some()
            || self.gather.is_some()
            || self.record_url.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> FlowVars {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FlowVars::from_variables(&v)
    }

    #[test]
    fn every_variable() {
        let f = vars(&[
            ("DIALER_CALL_ID", "call-1"),
            ("DIALER_ATTEMPT", "1"),
            ("DIALER_AMD", "voicemail"),
            ("DIALER_MESSAGE", "http://127.0.0.1/m.wav"),
            ("DIALER_VOICEMAIL", "http://127.0.0.1/v.wav"),
            ("DIALER_GATHER_MAX", "4"),
            ("DIALER_GATHER_TIMEOUT", "5"),
            ("DIALER_GATHER_FINISH", "#"),
            ("DIALER_OPT_OUT", "9"),
            ("DIALER_RECORD_URL", "http://127.0.0.1/up"),
        ]);
        assert!(f.has_steps());
        assert_eq!(f.call_id, "call-1");
        assert_eq!(f.amd, Some(AmdMode::Voicemail));
        assert_eq!(f.message.as_deref(), Some("http://127.0.0.1/m.wav"));
        assert_eq!(f.voicemail.as_deref(), Some("http://127.0.0.1/v.wav"));
        assert_eq!(f.record_url.as_deref(), Some("http://127.0.0.1/up"));
        assert_eq!(
            f.gather,
            Some(Gather {
                max: 4,
                timeout: Duration::from_secs(5),
                finish: Some('#'),
                opt_out: Some('9'),
            })
        );
    }

    #[test]
    fn unset_empty_and_odd_values() {
        let f = vars(&[("DIALER_CALL_ID", "c"), ("DIALER_AMD", "")]);
        assert!(!f.has_steps(), "empty is unset");
        assert_eq!(vars(&[("DIALER_AMD", "detect")]).amd, Some(AmdMode::Detect));
        assert_eq!(vars(&[("DIALER_AMD", "yes")]).amd, Some(AmdMode::Detect));
        assert_eq!(
            vars(&[("DIALER_AMD", "hangup_machine")]).amd,
            Some(AmdMode::HangupMachine)
        );
        let g = vars(&[("DIALER_GATHER_MAX", "0"), ("DIALER_GATHER_TIMEOUT", "x")])
            .gather
            .expect("gather set");
        assert_eq!((g.max, g.timeout), (255, Duration::from_secs(10)));
        assert_eq!((g.finish, g.opt_out), (None, None));
        let g = vars(&[("DIALER_GATHER_MAX", "2"), ("DIALER_GATHER_TIMEOUT", "1.5")])
            .gather
            .expect("gather set");
        assert_eq!((g.max, g.timeout), (2, Duration::from_millis(1500)));
        // Only the voicemail prompt: nothing plays it without AMD.
        assert!(!vars(&[("DIALER_VOICEMAIL", "http://x/v.wav")]).has_steps());
    }
}
