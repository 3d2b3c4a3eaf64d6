//! The worker's settings from the environment, beside dialer-core's shared [`Config`].

use std::time::Duration;

use dialer_core::Config;
use dialer_core::config::ConfigError;

use crate::circuit::CircuitSettings;
use crate::schedule::RetrySchedule;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub core: Config,
    /// `DIALER_CALLBACK_TIMEOUT_MS` (10000): whole request, answer included.
    pub request_timeout: Duration,
    /// `DIALER_CALLBACK_CONNECT_TIMEOUT_MS` (5000)
    pub connect_timeout: Duration,
    /// `DIALER_CALLBACK_RETRY_SCHEDULE` (`5s,5m,30m,2h,5h,10h,10h`) and
    /// `DIALER_CALLBACK_RETRY_JITTER_PERCENT` (20)
    pub schedule: RetrySchedule,
    /// `DIALER_CALLBACK_ENDPOINT_CONCURRENCY` (32): concurrent requests per endpoint.
    pub endpoint_concurrency: usize,
    /// `DIALER_CALLBACK_CIRCUIT_FAILURES` (10), `DIALER_CALLBACK_CIRCUIT_COOLDOWN_MS` (30000),
    /// `DIALER_CALLBACK_CIRCUIT_MAX_COOLDOWN_MS` (600000)
    pub circuit: CircuitSettings,
    /// `DIALER_CALLBACK_LEASE_SECS` (120): how long a claimed event is this worker's; after a
    /// crash it comes due again when the lease ends. At least the request timeout plus 2 s.
    pub lease: Duration,
    /// `DIALER_CALLBACK_CLAIM_BATCH` (500): events claimed per statement.
    pub claim_batch: usize,
    /// `DIALER_CALLBACK_MAX_OUTSTANDING` (4000): claimed events not yet recorded, at most.
    pub max_outstanding: usize,
    /// `DIALER_CALLBACK_POLL_MS` (1000): how often the database is looked at without a prompt.
    pub poll_interval: Duration,
    /// `DIALER_CALLBACK_ACCOUNT_CACHE_MS` (5000): how long account settings (URL, secrets, CA)
    /// are reused before being read again.
    pub account_cache: Duration,
    /// `DIALER_CALLBACK_SHUTDOWN_GRACE_SECS` (15): on SIGTERM, how long in-flight requests may
    /// finish.
    pub shutdown_grace: Duration,
    /// `DIALER_CALLBACK_PREFETCH` (1000): unacked prompts from RabbitMQ.
    pub prefetch: u16,
}

impl WorkerConfig {
    pub fn from_env() -> Result<WorkerConfig, ConfigError> {
        WorkerConfig::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<WorkerConfig, ConfigError> {
        let core = Config::from_lookup(&get)?;
        let num = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| ConfigError {
                    name,
                    reason: format!("`{v}` is not a valid number"),
                }),
            }
        };
        let ms = |name: &'static str, default: u64| num(name, default).map(Duration::from_millis);
        let jitter = num("DIALER_CALLBACK_RETRY_JITTER_PERCENT", 20)? as f64 / 100.0;
        let schedule_text = get("DIALER_CALLBACK_RETRY_SCHEDULE")
            .unwrap_or_else(|| RetrySchedule::DEFAULT.to_owned());
        let schedule = RetrySchedule::parse(&schedule_text, jitter).map_err(|e| ConfigError {
            name: "DIALER_CALLBACK_RETRY_SCHEDULE",
            reason: e.reason,
        })?;
        let positive = |name: &'static str, v: u64| -> Result<u64, ConfigError> {
            if v == 0 {
                Err(ConfigError {
                    name,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(v)
            }
        };
        let config = WorkerConfig {
            request_timeout: ms("DIALER_CALLBACK_TIMEOUT_MS", 10_000)?,
            connect_timeout: ms("DIALER_CALLBACK_CONNECT_TIMEOUT_MS", 5_000)?,
            schedule,
            endpoint_concurrency: positive(
                "DIALER_CALLBACK_ENDPOINT_CONCURRENCY",
                num("DIALER_CALLBACK_ENDPOINT_CONCURRENCY", 32)?,
            )? as usize,
            circuit: CircuitSettings {
                failures_to_open: positive(
                    "DIALER_CALLBACK_CIRCUIT_FAILURES",
                    num("DIALER_CALLBACK_CIRCUIT_FAILURES", 10)?,
                )? as u32,
                first_cooldown: ms("DIALER_CALLBACK_CIRCUIT_COOLDOWN_MS", 30_000)?,
                max_cooldown: ms("DIALER_CALLBACK_CIRCUIT_MAX_COOLDOWN_MS", 600_000)?,
            },
            lease: Duration::from_secs(num("DIALER_CALLBACK_LEASE_SECS", 120)?),
            claim_batch: positive(
                "DIALER_CALLBACK_CLAIM_BATCH",
                num("DIALER_CALLBACK_CLAIM_BATCH", 500)?,
            )? as usize,
            max_outstanding: positive(
                "DIALER_CALLBACK_MAX_OUTSTANDING",
                num("DIALER_CALLBACK_MAX_OUTSTANDING", 4_000)?,
            )? as usize,
            poll_interval: ms("DIALER_CALLBACK_POLL_MS", 1_000)?,
            account_cache: ms("DIALER_CALLBACK_ACCOUNT_CACHE_MS", 5_000)?,
            shutdown_grace: Duration::from_secs(num("DIALER_CALLBACK_SHUTDOWN_GRACE_SECS", 15)?),
            prefetch: num("DIALER_CALLBACK_PREFETCH", 1_000)?.min(u16::MAX as u64) as u16,
            core,
        };
        // A request starts only with a request timeout and a second left on its lease.
        if config.lease < config.request_timeout + Duration::from_secs(2) {
            return Err(ConfigError {
                name: "DIALER_CALLBACK_LEASE_SECS",
                reason: "must be at least the request timeout plus 2 seconds".into(),
            });
        }
        Ok(config)
    }

    /// Settings for tests: everything from `core`, short timings.
    pub fn for_tests(core: Config) -> WorkerConfig {
        let mut c = WorkerConfig::from_lookup(|_| None).unwrap_or_else(|e| panic!("defaults: {e}"));
        c.core = core;
        c.core.allow_http_loopback_callbacks = true;
        c.poll_interval = Duration::from_millis(200);
        c.account_cache = Duration::from_millis(200);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_overrides() {
        let c = WorkerConfig::from_lookup(|_| None).expect("defaults");
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.schedule.total_tries(), 8);
        let env: HashMap<&str, &str> = [
            ("DIALER_CALLBACK_RETRY_SCHEDULE", "100ms,200ms"),
            ("DIALER_CALLBACK_TIMEOUT_MS", "500"),
            ("DIALER_CALLBACK_LEASE_SECS", "3"),
        ]
        .into();
        let c = WorkerConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("valid");
        assert_eq!(c.schedule.total_tries(), 3);
        assert_eq!(c.lease, Duration::from_secs(3));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("DIALER_CALLBACK_RETRY_SCHEDULE", "5 minutes"),
            ("DIALER_CALLBACK_LEASE_SECS", "5"),
            ("DIALER_CALLBACK_ENDPOINT_CONCURRENCY", "0"),
        ] {
            let err = WorkerConfig::from_lookup(|key| (key == k).then(|| v.to_string()))
                .err()
                .map(|e| e.name);
            assert_eq!(err, Some(k), "{k}={v}");
        }
    }
}
