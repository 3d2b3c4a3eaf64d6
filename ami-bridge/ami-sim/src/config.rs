//! What one simulated Asterisk is: address, credentials, `channelvars`, capacity, outcome rules,
//! and the knobs tests turn (login failure delay, shutdown timing). Read from TOML or built in code.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::callee::DTMF_KEYS;
use crate::event_filter::EventFilter;
use crate::outcome::{MixEntry, OutcomePicker, Rule};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The simulator's configuration. Every field has a default, so tests write
/// `SimConfig { listen: "127.0.0.1:0".parse()?, ..Default::default() }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// AMI listen address; port 0 picks a free port (see `Simulator::addr`).
    pub listen: SocketAddr,
    /// Optional control port (line protocol, see README).
    pub control: Option<SocketAddr>,
    pub username: String,
    pub secret: String,
    /// manager.conf `channelvars`: variables shown as `ChanVariable` on channel events.
    pub channelvars: Vec<String>,
    /// Most channels alive at once (a Local call holds two). Beyond it Originate fails like a
    /// full trunk: an immediate `OriginateResponse` Failure, Reason 0.
    pub max_channels: usize,
    /// Asterisk sleeps 1 s before answering a failed Login.
    pub login_failure_delay_ms: u64,
    /// Time between the last hangup of a restart and `Event: Shutdown` (about 1.1 s recorded).
    pub shutdown_event_delay_ms: u64,
    /// After a restart closes every session, how long new connections are closed at once.
    pub restart_downtime_ms: u64,
    /// Start with logins refused (the `refuse_logins` fault).
    pub refuse_logins: bool,
    /// Every call answers at once and hangs up at once (ring 0, talk 0): for benchmarks.
    pub instant_answer: bool,
    /// Seed of the weighted mix, so a load run is repeatable.
    pub seed: u64,
    /// Number pattern -> outcome, first match wins.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    /// Weighted random outcomes for numbers no rule matches. Empty: the last-digit default.
    #[serde(rename = "mix")]
    pub mix: Vec<MixEntry>,
    /// `Context` of a new outbound channel before it is answered (`from-trunk` recorded).
    pub trunk_context: String,
    /// Ring time of every rule, mix entry and last-digit outcome that sets none (else 200 ms).
    pub ring_ms: Option<u64>,
    /// Talk time of every answered outcome that sets none (else 1000 ms).
    pub talk_ms: Option<u64>,
    /// manager.conf `read` of the AMI user: `all` or classes (`call,user`); events of other
    /// classes are not sent (see `event_filter`).
    pub read: String,
    /// manager.conf `eventfilter` lines of the AMI user: regexes over each event's text, a
    /// leading `!` excludes (see `event_filter`). Empty: every event.
    pub eventfilter: Vec<String>,
    /// Channel setups per second the PBX makes; Originates beyond it queue (see
    /// `channel_setup`). None: no limit, Newchannel follows the Originate at once.
    pub capacity_cps: Option<u32>,
    /// Median Originate-to-Newchannel time of an Originate that does not queue (0: at once).
    pub setup_latency_ms: f64,
    /// Its 99th percentile (log-normal jitter between the two); None: no jitter.
    pub setup_latency_p99_ms: Option<f64>,
    /// An Originate that finds this many setups ahead of it (being made or waiting) fails at
    /// once (`OriginateResponse` Failure, Reason 0). None: one second of `capacity_cps`.
    pub max_setup_backlog: Option<u64>,
    /// The Originate `Context` that runs the flow after the answer (docs/call-flow.md) when
    /// the Originate sets any of its variables; the dispatcher's `DIALER_FLOW_CONTEXT`.
    pub flow_context: String,
    /// Time before each key of every rule, mix entry and built-in callee that sets none
    /// (else 1000 ms).
    pub key_delay_ms: Option<u64>,
    /// Answer to AMD's result for a person (amd_human: 1.4 s).
    pub amd_human_ms: u64,
    /// Answer to AMD's result for a machine (amd_machine: 1.6 s, the 1.5 s greeting limit).
    pub amd_machine_ms: u64,
    /// Answer to AMD's result for dead air (amd_silence: 2.5 s, amd.conf initial_silence).
    pub amd_silence_ms: u64,
    /// Answer to the end of a machine's greeting, when `WaitForSilence` returns (amd_machine
    /// streamed a 6 s greeting).
    pub greeting_ms: u64,
    /// How long a key is held: `DTMFBegin` to `DTMFEnd` (its `DurationMs`).
    pub dtmf_ms: u64,
    /// Keeps a copy of each recording made, as `<uniqueid>.wav` (the file MixMonitor left on
    /// the PBX's disk), so a test can compare what the platform serves with it.
    pub recordings_dir: Option<std::path::PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5038)),
            control: None,
            username: "dialer".into(),
            secret: "dialer".into(),
            channelvars: vec!["DIALER_CALL_ID".into()],
            max_channels: 10_000,
            login_failure_delay_ms: 1000,
            shutdown_event_delay_ms: 1100,
            restart_downtime_ms: 200,
            refuse_logins: false,
            instant_answer: false,
            seed: 1,
            rules: Vec::new(),
            mix: Vec::new(),
            trunk_context: "from-trunk".into(),
            ring_ms: None,
            talk_ms: None,
            read: "all".into(),
            eventfilter: Vec::new(),
            capacity_cps: None,
            setup_latency_ms: 0.0,
            setup_latency_p99_ms: None,
            max_setup_backlog: None,
            flow_context: "dialer-flow".into(),
            key_delay_ms: None,
            amd_human_ms: 1400,
            amd_machine_ms: 1600,
            amd_silence_ms: 2500,
            greeting_ms: 6000,
            dtmf_ms: 100,
            recordings_dir: None,
        }
    }
}

impl SimConfig {
    pub fn from_toml_str(text: &str, origin: &str) -> Result<SimConfig, ConfigError> {
        let cfg: SimConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            source: Box::new(e),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<SimConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SimConfig::from_toml_str(&text, &path.display().to_string())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mix.iter().any(|m| m.weight == 0) {
            return Err(ConfigError::Invalid("a mix entry has weight 0".into()));
        }
        if self.rules.iter().any(|r| r.pattern.is_empty()) {
            return Err(ConfigError::Invalid("a rule has an empty pattern".into()));
        }
        let keys = self
            .rules
            .iter()
            .filter_map(|r| r.keys.as_deref())
            .chain(self.mix.iter().filter_map(|m| m.keys.as_deref()));
        for k in keys {
            if let Some(bad) = k.chars().find(|c| !DTMF_KEYS.contains(*c)) {
                return Err(ConfigError::Invalid(format!(
                    "keys {k:?}: {bad:?} is not a DTMF key ({DTMF_KEYS})"
                )));
            }
        }
        if self.flow_context.is_empty() {
            return Err(ConfigError::Invalid("flow_context is empty".into()));
        }
        if self.capacity_cps == Some(0) {
            return Err(ConfigError::Invalid(
                "capacity_cps must be at least 1".into(),
            ));
        }
        if self.max_setup_backlog == Some(0) {
            return Err(ConfigError::Invalid(
                "max_setup_backlog must be at least 1".into(),
            ));
        }
        let median = self.setup_latency_ms;
        if !(median.is_finite() && median >= 0.0) {
            return Err(ConfigError::Invalid(
                "setup_latency_ms must be a number >= 0".into(),
            ));
        }
        if let Some(p99) = self.setup_latency_p99_ms
            && !(p99.is_finite() && p99 >= median && (median > 0.0 || p99 == 0.0))
        {
            return Err(ConfigError::Invalid(
                "setup_latency_p99_ms must be >= setup_latency_ms, which must be > 0".into(),
            ));
        }
        EventFilter::new(&self.read, &self.eventfilter)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(())
    }

    /// The decider of outcomes this configuration describes (rules, mix, seed, instant answer).
    pub fn outcome_picker(&self) -> OutcomePicker {
        OutcomePicker::new(&self.rules, &self.mix, self.seed, self.instant_answer)
            .with_default_times(self.ring_ms, self.talk_ms)
            .with_default_key_delay(self.key_delay_ms)
    }

    pub(crate) fn login_failure_delay(&self) -> Duration {
        Duration::from_millis(self.login_failure_delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callee::AnsweredBy;
    use crate::outcome::OutcomeKind;

    #[test]
    fn toml_with_rules_and_mix() {
        let cfg = SimConfig::from_toml_str(
            r#"
            listen = "127.0.0.1:0"
            channelvars = []
            max_channels = 3
            [[rule]]
            pattern = "1002"
            outcome = "busy"
            ring_ms = 500
            [[mix]]
            outcome = "answered"
            weight = 3
            talk_ms = 5000
            "#,
            "inline",
        )
        .expect("valid config");
        assert_eq!(cfg.max_channels, 3);
        assert!(cfg.channelvars.is_empty());
        assert_eq!(cfg.rules[0].outcome, OutcomeKind::Busy);
        assert_eq!(cfg.rules[0].ring_ms, Some(500));
        assert_eq!(cfg.mix[0].talk_ms, Some(5000));
        assert_eq!(cfg.username, "dialer");
    }

    #[test]
    fn unknown_keys_and_zero_weights_are_refused() {
        assert!(SimConfig::from_toml_str("lisen = \"x\"", "inline").is_err());
        assert!(
            SimConfig::from_toml_str("[[mix]]\noutcome = \"busy\"\nweight = 0\n", "inline")
                .is_err()
        );
        assert!(SimConfig::from_toml_str("capacity_cps = 0", "inline").is_err());
        assert!(SimConfig::from_toml_str("max_setup_backlog = 0", "inline").is_err());
        assert!(SimConfig::from_toml_str("eventfilter = [\"Event: (\"]", "inline").is_err());
        let p99_below = "setup_latency_ms = 10\nsetup_latency_p99_ms = 5";
        assert!(SimConfig::from_toml_str(p99_below, "inline").is_err());
    }

    #[test]
    fn load_keys() {
        let cfg = SimConfig::from_toml_str(
            r#"
            ring_ms = 1000
            talk_ms = 2000
            capacity_cps = 400
            setup_latency_ms = 11
            setup_latency_p99_ms = 74.5
            max_setup_backlog = 800
            read = "call,user"
            eventfilter = ["Event: Newchannel", "!Event: VarSet"]
            "#,
            "inline",
        )
        .expect("valid config");
        assert_eq!((cfg.ring_ms, cfg.talk_ms), (Some(1000), Some(2000)));
        assert_eq!(cfg.capacity_cps, Some(400));
        assert_eq!(cfg.setup_latency_ms, 11.0);
        assert_eq!(cfg.setup_latency_p99_ms, Some(74.5));
        assert_eq!(cfg.max_setup_backlog, Some(800));
        assert_eq!(cfg.eventfilter.len(), 2);
        assert_eq!(cfg.read, "call,user");
        assert!(SimConfig::from_toml_str("read = \"cal\"", "inline").is_err());
    }

    #[test]
    fn callees_per_rule_and_mix_entry() {
        let cfg = SimConfig::from_toml_str(
            r#"
            key_delay_ms = 300
            [[rule]]
            pattern = "1*"
            outcome = "answered"
            answered_by = "human"
            keys = "12#"
            key_delay_ms = 50
            [[mix]]
            outcome = "answered"
            weight = 1
            answered_by = "silence"
            "#,
            "inline",
        )
        .expect("valid config");
        assert_eq!(cfg.key_delay_ms, Some(300));
        assert_eq!(cfg.rules[0].answered_by, Some(AnsweredBy::Human));
        assert_eq!(cfg.rules[0].keys.as_deref(), Some("12#"));
        assert_eq!(cfg.rules[0].key_delay_ms, Some(50));
        assert_eq!(cfg.mix[0].answered_by, Some(AnsweredBy::Silence));
        let bad_keys = "[[rule]]\npattern = \"1\"\noutcome = \"answered\"\nkeys = \"1x\"\n";
        assert!(SimConfig::from_toml_str(bad_keys, "inline").is_err());
        let bad_by = "[[rule]]\npattern = \"1\"\noutcome = \"answered\"\nanswered_by = \"fax\"\n";
        assert!(SimConfig::from_toml_str(bad_by, "inline").is_err());
    }

    #[test]
    fn flow_keys() {
        let cfg = SimConfig::from_toml_str(
            r#"
            flow_context = "my-flow"
            amd_human_ms = 100
            amd_machine_ms = 150
            amd_silence_ms = 200
            greeting_ms = 500
            dtmf_ms = 40
            "#,
            "inline",
        )
        .expect("valid config");
        assert_eq!(cfg.flow_context, "my-flow");
        assert_eq!(
            (cfg.amd_human_ms, cfg.amd_machine_ms, cfg.amd_silence_ms),
            (100, 150, 200)
        );
        assert_eq!((cfg.greeting_ms, cfg.dtmf_ms), (500, 40));
        assert!(SimConfig::from_toml_str("flow_context = \"\"", "inline").is_err());
        let d = SimConfig::default();
        assert_eq!(d.flow_context, "dialer-flow");
        assert_eq!(
            (
                d.amd_human_ms,
                d.amd_machine_ms,
                d.amd_silence_ms,
                d.greeting_ms,
                d.dtmf_ms
            ),
            (1400, 1600, 2500, 6000, 100)
        );
    }
}
