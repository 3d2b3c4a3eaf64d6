//! The dispatcher's settings: the shared config plus its own, from the environment.

use std::time::Duration;

use dialer_core::Config;
use dialer_core::config::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub core: Config,
    /// `DIALER_DISPATCHER_ID`: unique per process (default: host, pid and a random suffix).
    pub id: String,
    /// `DIALER_GLOBAL_CPS`: calls per second across the platform; unset: no global limit.
    pub global_cps: Option<f64>,
    /// `DIALER_LEASE_TTL_SECS`: a server lease lapses this long after its holder's last renewal.
    pub lease_ttl: Duration,
    /// `DIALER_PREFETCH`: dial jobs held unacknowledged at most. Small enough that jobs stay in
    /// the queue for other dispatchers rather than wait in this one's memory.
    pub prefetch: u16,
    /// `DIALER_SHUTDOWN_SECS`: on SIGTERM, how long calls in flight may still be followed.
    pub shutdown_deadline: Duration,
    /// `DIALER_FLOW_CONTEXT`: the shipped dialplan's context, where batches with a flow after
    /// the answer are dialed (`asterisk/extensions_dialer.conf`).
    pub flow_context: String,
}

impl DispatcherConfig {
    /// The core settings and the dispatcher's own; an empty variable counts as unset.
    pub fn from_env() -> Result<DispatcherConfig, ConfigError> {
        let env = Env::new(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Ok(DispatcherConfig {
            core: Config::from_env()?,
            id: env.get("DIALER_DISPATCHER_ID").unwrap_or_else(default_id),
            global_cps: env.optional("DIALER_GLOBAL_CPS", "a number")?,
            lease_ttl: env.secs("DIALER_LEASE_TTL_SECS", 8)?,
            prefetch: env.positive("DIALER_PREFETCH", 200)?,
            shutdown_deadline: env.secs("DIALER_SHUTDOWN_SECS", 30)?,
            flow_context: env.text("DIALER_FLOW_CONTEXT", "dialer-flow"),
        })
    }

    /// For tests: the given core config and defaults for the rest.
    pub fn with_core(core: Config) -> DispatcherConfig {
        DispatcherConfig {
            core,
            id: default_id(),
            global_cps: None,
            lease_ttl: Duration::from_secs(8),
            prefetch: 200,
            shutdown_deadline: Duration::from_secs(30),
            flow_context: "dialer-flow".to_owned(),
        }
    }
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
