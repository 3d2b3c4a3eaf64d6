//! What a batch does once a call is answered (contract, "After the answer"): its settings as
//! stored with the batch, checked in one place, and the channel variables the shipped dialplan
//! reads from the Originate (`docs/call-flow.md`).

use serde::{Deserialize, Serialize};

use crate::domain::AmdPolicy;

/// The keys of a phone's keypad: what a finish key or an opt-out digit may be.
const KEYS: &str = "0123456789*#";

/// Gathering keypresses after the message (contract: `gather`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gather {
    pub max_digits: u8,
    pub timeout_seconds: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_on_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_digit: Option<String>,
}

/// Longest gather a batch may ask for: keys, and seconds to wait for each.
pub const MAX_GATHER_DIGITS: u8 = 32;
pub const MAX_GATHER_TIMEOUT_SECONDS: u8 = 60;

impl Gather {
    /// Parses the client's `gather` object, refusing anything that could not be gathered as
    /// asked (the message names the field). Never guesses: `"5"` is not 5.
    pub fn parse(value: &serde_json::Value) -> Result<Gather, String> {
        let g: Gather = serde_json::from_value(value.clone()).map_err(|e| {
            format!(
                "`gather` must be {{\"max_digits\": 1-{MAX_GATHER_DIGITS}, \"timeout_seconds\": \
                 1-{MAX_GATHER_TIMEOUT_SECONDS}, \"finish_on_key\": a key, \"opt_out_digit\": a key}}: {e}"
            )
        })?;
        g.check()?;
        Ok(g)
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=MAX_GATHER_DIGITS).contains(&self.max_digits) {
            return Err(format!(
                "`gather.max_digits` must be from 1 to {MAX_GATHER_DIGITS}"
            ));
        }
        if !(1..=MAX_GATHER_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(format!(
                "`gather.timeout_seconds` must be from 1 to {MAX_GATHER_TIMEOUT_SECONDS}"
            ));
        }
        for (field, key) in [
            ("finish_on_key", &self.finish_on_key),
            ("opt_out_digit", &self.opt_out_digit),
        ] {
            if let Some(k) = key
                && !is_key(k)
            {
                return Err(format!(
                    "`gather.{field}` must be one key of the keypad (0-9, * or #)"
                ));
            }
        }
        if self.finish_on_key.is_some() && self.finish_on_key == self.opt_out_digit {
            return Err(
                "`gather.opt_out_digit` cannot be the finish key: it would end every gather"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Whether the keys gathered are an opt-out: the opt-out digit as the first key.
    pub fn opted_out(&self, digits: &str) -> bool {
        self.opt_out_digit
            .as_deref()
            .is_some_and(|d| digits.starts_with(d))
    }
}

fn is_key(k: &str) -> bool {
    k.len() == 1 && KEYS.contains(k)
}

/// A batch's flow after the answer, as stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallFlow {
    pub amd: Option<AmdPolicy>,
    pub message_prompt: Option<String>,
    pub voicemail_prompt: Option<String>,
    pub gather: Option<Gather>,
    pub record: bool,
}

impl CallFlow {
    /// From the stored columns (`gather` as stored JSON; a stored value that no longer parses
    /// is dropped rather than dialed wrongly, and the check at submission makes it impossible).
    pub fn from_columns(
        amd: AmdPolicy,
        message_prompt: Option<String>,
        voicemail_prompt: Option<String>,
        gather: Option<&serde_json::Value>,
        record: bool,
    ) -> CallFlow {
        CallFlow {
            amd: (amd != AmdPolicy::Off).then_some(amd),
            message_prompt,
            voicemail_prompt,
            gather: gather.and_then(|g| Gather::parse(g).ok()),
            record,
        }
    }

    /// Nothing after the answer: the call goes to the account's own `dial_context`, as before.
    pub fn is_plain(&self) -> bool {
        self.amd.is_none()
            && self.message_prompt.is_none()
            && self.voicemail_prompt.is_none()
            && self.gather.is_none()
            && !self.record
    }

    /// Settings that cannot work together.
    pub fn check(&self) -> Result<(), String> {
        if self.amd == Some(AmdPolicy::Voicemail) && self.voicemail_prompt.is_none() {
            return Err("`amd` `voicemail` needs a `voicemail_prompt`".to_owned());
        }
        if self.voicemail_prompt.is_some() && self.amd != Some(AmdPolicy::Voicemail) {
            return Err("`voicemail_prompt` is played only with `amd` `voicemail`".to_owned());
        }
        Ok(())
    }

    /// The Originate's channel variables for the shipped dialplan (`docs/call-flow.md`); those
    /// that do not apply are left out. `prompt_url` gives a prompt's URL for the PBX;
    /// `record_url` is this attempt's one-time upload URL when the batch records.
    pub fn originate_variables(
        &self,
        prompt_url: impl Fn(&str) -> String,
        record_url: Option<String>,
    ) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(amd) = self.amd {
            v.push(("DIALER_AMD", amd.as_str().to_owned()));
        }
        if let Some(p) = &self.message_prompt {
            v.push(("DIALER_MESSAGE", prompt_url(p)));
        }
        if let (Some(AmdPolicy::Voicemail), Some(p)) = (self.amd, &self.voicemail_prompt) {
            v.push(("DIALER_VOICEMAIL", prompt_url(p)));
        }
        if let Some(g) = &self.gather {
            v.push(("DIALER_GATHER_MAX", g.max_digits.to_string()));
            v.push(("DIALER_GATHER_TIMEOUT", g.timeout_seconds.to_string()));
            if let Some(k) = &g.finish_on_key {
                v.push(("DIALER_GATHER_FINISH", k.clone()));
            }
            if let Some(k) = &g.opt_out_digit {
                v.push(("DIALER_OPT_OUT", k.clone()));
            }
        }
        if self.record
            && let Some(url) = record_url
        {
            v.push(("DIALER_RECORD_URL", url));
        }
        v
    }
}

/// The settings a client gave for a new batch, each over the account's default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowOverrides {
    pub amd: Option<AmdPolicy>,
    pub message_prompt: Option<String>,
    pub voicemail_prompt: Option<String>,
    pub gather: Option<Gather>,
    pub record: Option<bool>,
}

impl FlowOverrides {
    /// The batch's flow: each setting given, else the account's. A voicemail prompt the
    /// account keeps by default goes only with the `voicemail` policy; given with another
    /// policy it is refused (it would never play).
    pub fn over(self, defaults: CallFlow) -> Result<CallFlow, String> {
        let amd = match self.amd {
            Some(AmdPolicy::Off) => None,
            Some(a) => Some(a),
            None => defaults.amd,
        };
        let voicemail_prompt = match self.voicemail_prompt {
            Some(p) => Some(p),
            None if amd == Some(AmdPolicy::Voicemail) => defaults.voicemail_prompt,
            None => None,
        };
        let flow = CallFlow {
            amd,
            message_prompt: self.message_prompt.or(defaults.message_prompt),
            voicemail_prompt,
            gather: self.gather.or(defaults.gather),
            record: self.record.unwrap_or(defaults.record),
        };
        flow.check()?;
        Ok(flow)
    }
}

/// `prm_` and 32 lowercase hex digits: a prompt's id.
pub fn new_prompt_id() -> String {
    format!("prm_{}", uuid::Uuid::new_v4().simple())
}

/// What a prompt id can look like (`prm_` and up to 64 letters or digits): anything else is
/// refused before it reaches a query or a URL.
pub fn is_prompt_id(id: &str) -> bool {
    id.strip_prefix("prm_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gathers_that_cannot_be_gathered_are_refused() {
        let ok = json!({"max_digits": 4, "timeout_seconds": 5, "finish_on_key": "#", "opt_out_digit": "9"});
        assert!(Gather::parse(&ok).is_ok());
        for (bad, names) in [
            (json!({"max_digits": 0, "timeout_seconds": 5}), "max_digits"),
            (
                json!({"max_digits": 33, "timeout_seconds": 5}),
                "max_digits",
            ),
            (
                json!({"max_digits": 1, "timeout_seconds": 0}),
                "timeout_seconds",
            ),
            (
                json!({"max_digits": 1, "timeout_seconds": 61}),
                "timeout_seconds",
            ),
            (json!({"max_digits": "1", "timeout_seconds": 5}), "gather"),
            (json!({"max_digits": 1.5, "timeout_seconds": 5}), "gather"),
            (json!({"max_digits": -1, "timeout_seconds": 5}), "gather"),
            (
                json!({"max_digits": 1, "timeout_seconds": 5, "finish_on_key": "##"}),
                "finish_on_key",
            ),
            (
                json!({"max_digits": 1, "timeout_seconds": 5, "finish_on_key": "a"}),
                "finish_on_key",
            ),
            (
                json!({"max_digits": 1, "timeout_seconds": 5, "opt_out_digit": ""}),
                "opt_out_digit",
            ),
            (
                json!({"max_digits": 1, "timeout_seconds": 5, "finish_on_key": "#", "opt_out_digit": "#"}),
                "opt_out_digit",
            ),
            (
                json!({"max_digits": 1, "timeout_seconds": 5, "finishOnKey": "#"}),
                "finishOnKey",
            ),
            (json!({"timeout_seconds": 5}), "max_digits"),
            (json!([1]), "gather"),
        ] {
            let e = Gather::parse(&bad).expect_err(&bad.to_string());
            assert!(e.contains(names), "{bad}: {e}");
        }
    }

    #[test]
    fn the_opt_out_digit_counts_only_as_the_first_key() {
        let g =
            Gather::parse(&json!({"max_digits": 3, "timeout_seconds": 5, "opt_out_digit": "9"}))
                .expect("valid");
        assert!(g.opted_out("9"));
        assert!(g.opted_out("91"));
        assert!(!g.opted_out("19"));
        assert!(!g.opted_out(""));
        let none = Gather::parse(&json!({"max_digits": 1, "timeout_seconds": 5})).expect("valid");
        assert!(!none.opted_out("9"));
    }

    #[test]
    fn variables_name_only_what_applies() {
        assert!(CallFlow::default().is_plain());
        assert!(
            CallFlow::default()
                .originate_variables(|p| p.into(), None)
                .is_empty()
        );
        let flow = CallFlow {
            amd: Some(AmdPolicy::Voicemail),
            message_prompt: Some("prm_a".into()),
            voicemail_prompt: Some("prm_b".into()),
            gather: Some(Gather {
                max_digits: 2,
                timeout_seconds: 4,
                finish_on_key: Some("#".into()),
                opt_out_digit: None,
            }),
            record: true,
        };
        assert!(flow.check().is_ok());
        let vars = flow.originate_variables(
            |p| format!("http://media/{p}.wav"),
            Some("http://media/rec/x".into()),
        );
        assert_eq!(
            vars,
            [
                ("DIALER_AMD", "voicemail".to_owned()),
                ("DIALER_MESSAGE", "http://media/prm_a.wav".to_owned()),
                ("DIALER_VOICEMAIL", "http://media/prm_b.wav".to_owned()),
                ("DIALER_GATHER_MAX", "2".to_owned()),
                ("DIALER_GATHER_TIMEOUT", "4".to_owned()),
                ("DIALER_GATHER_FINISH", "#".to_owned()),
                ("DIALER_RECORD_URL", "http://media/rec/x".to_owned()),
            ]
        );
        let no_prompt = CallFlow {
            amd: Some(AmdPolicy::Voicemail),
            ..CallFlow::default()
        };
        assert!(no_prompt.check().is_err());
        let stray = CallFlow {
            amd: Some(AmdPolicy::Detect),
            voicemail_prompt: Some("prm_b".into()),
            ..CallFlow::default()
        };
        assert!(stray.check().is_err());
    }

    #[test]
    fn a_batch_s_settings_go_over_the_account_s() {
        let defaults = CallFlow {
            amd: Some(AmdPolicy::Voicemail),
            message_prompt: Some("prm_m".into()),
            voicemail_prompt: Some("prm_v".into()),
            gather: None,
            record: true,
        };
        let none = FlowOverrides::default().over(defaults.clone());
        assert_eq!(none, Ok(defaults.clone()));
        let detect = FlowOverrides {
            amd: Some(AmdPolicy::Detect),
            record: Some(false),
            ..FlowOverrides::default()
        }
        .over(defaults.clone())
        .expect("valid");
        assert_eq!(detect.amd, Some(AmdPolicy::Detect));
        assert_eq!(
            detect.voicemail_prompt, None,
            "the default prompt stays behind"
        );
        assert!(!detect.record);
        assert_eq!(detect.message_prompt.as_deref(), Some("prm_m"));
        let off = FlowOverrides {
            amd: Some(AmdPolicy::Off),
            ..FlowOverrides::default()
        }
        .over(CallFlow::default())
        .expect("valid");
        assert!(off.is_plain());
        let stray = FlowOverrides {
            amd: Some(AmdPolicy::Detect),
            voicemail_prompt: Some("prm_v".into()),
            ..FlowOverrides::default()
        };
        assert!(stray.over(CallFlow::default()).is_err());
        assert!(is_prompt_id(&new_prompt_id()));
        assert!(!is_prompt_id("prm_"));
        assert!(!is_prompt_id("prm_a'b"));
        assert!(!is_prompt_id("abc"));
    }
}
