//! The worker's settings from the environment, beside dialer-core's shared [`Config`].

use std::time::Duration;

use dialer_core::Config;
use dialer_core::config::{ConfigError, Env};

use crate::circuit::CircuitSettings;
use crate::schedule::RetrySchedule;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub core: Config,
    // The request timeouts (`DIALER_CALLBACK_TIMEOUT_MS`, `..._CONNECT_TIMEOUT_MS`) are in
    // `core`: the API's test events use them too.
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
    /// `DIALER_CALLBACK_QUEUE_VACUUM_MS` (1000): the delivery queue is vacuumed at most this
    /// often, after it changed (0: never, autovacuum only).
    pub queue_vacuum: Duration,
}

impl WorkerConfig {
    pub fn from_env() -> Result<WorkerConfig, ConfigError> {
        WorkerConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// The shared config and the worker's own variables from any key lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<WorkerConfig, ConfigError> {
        let env = Env::new(get);
        let jitter = env.number::<u64>("DIALER_CALLBACK_RETRY_JITTER_PERCENT", 20)? as f64 / 100.0;
        let schedule_text = env.text("DIALER_CALLBACK_RETRY_SCHEDULE", RetrySchedule::DEFAULT);
        let schedule = RetrySchedule::parse(&schedule_text, jitter)
            .map_err(|e| ConfigError::new("DIALER_CALLBACK_RETRY_SCHEDULE", e.reason))?;
        let config = WorkerConfig {
            core: Config::read(&env)?,
            schedule,
            endpoint_concurrency: env.positive("DIALER_CALLBACK_ENDPOINT_CONCURRENCY", 32)?,
            circuit: CircuitSettings {
                failures_to_open: env.positive("DIALER_CALLBACK_CIRCUIT_FAILURES", 10)?,
                first_cooldown: env.millis("DIALER_CALLBACK_CIRCUIT_COOLDOWN_MS", 30_000)?,
                max_cooldown: env.millis("DIALER_CALLBACK_CIRCUIT_MAX_COOLDOWN_MS", 600_000)?,
            },
            lease: env.secs("DIALER_CALLBACK_LEASE_SECS", 120)?,
            claim_batch: env.positive("DIALER_CALLBACK_CLAIM_BATCH", 500)?,
            max_outstanding: env.positive("DIALER_CALLBACK_MAX_OUTSTANDING", 4_000)?,
            poll_interval: env.millis("DIALER_CALLBACK_POLL_MS", 1_000)?,
            account_cache: env.millis("DIALER_CALLBACK_ACCOUNT_CACHE_MS", 5_000)?,
            shutdown_grace: env.secs("DIALER_CALLBACK_SHUTDOWN_GRACE_SECS", 15)?,
            // As the dispatcher's DIALER_PREFETCH: 0 (no limit in AMQP) and values past the
            // protocol's 65535 are refused, not clamped.
            prefetch: env.positive::<u16>("DIALER_CALLBACK_PREFETCH", 1_000)?,
            queue_vacuum: env.millis("DIALER_CALLBACK_QUEUE_VACUUM_MS", 1_000)?,
        };
        // A request starts only with a request timeout and a second left on its lease.
        if config.lease < config.core.callback_timeout + Duration::from_secs(2) {
            return Err(ConfigError::new(
                "DIALER_CALLBACK_LEASE_SECS",
                "must be at least the request timeout plus 2 seconds",
            ));
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
        assert_eq!(c.core.callback_timeout, Duration::from_secs(10));
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
            ("DIALER_CALLBACK_PREFETCH", "0"),
            ("DIALER_CALLBACK_PREFETCH", "70000"),
        ] {
            let err = WorkerConfig::from_lookup(|key| (key == k).then(|| v.to_string()))
                .err()
                .map(|e| e.name);
            assert_eq!(err, Some(k), "{k}={v}");
        }
    }
}
