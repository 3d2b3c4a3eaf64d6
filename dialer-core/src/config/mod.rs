//! Configuration from environment variables, with defaults that work on a developer's machine
//! (PostgreSQL and RabbitMQ on loopback).

mod api_limits;
mod env;

use std::net::SocketAddr;
use std::time::Duration;

pub use api_limits::{AddressRange, ApiLimits};
pub use env::{ConfigError, Env, ProcessLookup};

/// Everything a dialer process reads from its environment.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`
    pub database_url: String,
    /// `DIALER_DB_POOL_SIZE`
    pub db_pool_size: usize,
    /// `DIALER_DB_STATEMENT_TIMEOUT_MS`: applied to every pooled connection.
    pub db_statement_timeout: Duration,
    /// `AMQP_URL`
    pub amqp_url: String,
    /// `DIALER_QUEUE_PREFIX`: prefix of every exchange and queue name (tests use their own).
    pub queue_prefix: String,
    /// `DIALER_API_ADDR`: where `dialer-api` listens (port 0 picks a free port).
    pub api_addr: SocketAddr,
    /// `DIALER_MAX_BODY_BYTES`: largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// `DIALER_MAX_ROWS_PER_REQUEST`: platform ceiling of rows in one insert request; an account
    /// may have a lower one.
    pub max_rows_per_request: usize,
    /// `DIALER_MAX_CUSTOM_DATA_BYTES`: largest `custom_data` of one row.
    pub max_custom_data_bytes: usize,
    /// `DIALER_OUTBOX_INTERVAL_SECS`: how often the dial outbox is swept for jobs never
    /// confirmed by RabbitMQ (after a crash or a broker outage).
    pub outbox_interval: Duration,
    /// `DIALER_OUTBOX_GRACE_SECS`: a sweep takes only rows older than this, leaving younger ones
    /// to the request that wrote them and is publishing them.
    pub outbox_grace: Duration,
    /// `DIALER_API_WORKERS`: HTTP worker threads (0: one per core).
    pub api_workers: usize,
    /// `DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS`: allow `http://` callback URLs on loopback (demos, tests).
    pub allow_http_loopback_callbacks: bool,
    /// `DIALER_CALLBACK_TIMEOUT_MS` (10000): a callback request, answer included (the worker's
    /// deliveries and the API's test events).
    pub callback_timeout: Duration,
    /// `DIALER_CALLBACK_CONNECT_TIMEOUT_MS` (5000)
    pub callback_connect_timeout: Duration,
    /// `dialer-api`'s limits on what one account or one address may hold (`DIALER_API_*`).
    pub api_limits: ApiLimits,
    /// `DIALER_PUBLIC_URL`: the API's address as clients reach it (`recording_url` is built on
    /// it). Default: `http://` and `DIALER_API_ADDR`.
    pub public_url: String,
    /// `DIALER_MEDIA_URL`: the API's address as the Asterisk servers reach it (prompts they
    /// play, recordings they upload). Default: `DIALER_PUBLIC_URL`.
    pub media_url: String,
    /// `DIALER_RECORDINGS_STORE`: where recordings are kept: a directory (`/var/lib/dialer/recordings`,
    /// or `file:///...`), or an S3-compatible bucket (`s3://bucket/prefix`, with the usual
    /// `AWS_*` variables: `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`). Default `data/recordings` under the working directory.
    pub recordings_store: String,
}

impl std::fmt::Debug for Config {
    // URLs may carry passwords: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("amqp_url", &redact_url(&self.amqp_url))
            .field("queue_prefix", &self.queue_prefix)
            .field("api_addr", &self.api_addr)
            .field("db_pool_size", &self.db_pool_size)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_rows_per_request", &self.max_rows_per_request)
            .finish_non_exhaustive()
    }
}

/// `scheme://user:pass@host/db` -> `scheme://user:***@host/db`, each of a comma-separated list.
pub fn redact_url(urls: &str) -> String {
    urls.split(',')
        .map(redact_one)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::read(&Env::process())
    }

    /// Builds the config from any key lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::read(&Env::new(get))
    }

    /// Reads every variable of the shared config from `env`.
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Config, ConfigError> {
        let queue_prefix = env.text("DIALER_QUEUE_PREFIX", "dialer");
        if queue_prefix.is_empty()
            || !queue_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ConfigError::new(
                "DIALER_QUEUE_PREFIX",
                "must be non-empty letters, digits, `-`, `_` or `.`",
            ));
        }
        let default_addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        let api_addr = env.parse("DIALER_API_ADDR", default_addr, "host:port")?;
        let public_url = base_url(env, "DIALER_PUBLIC_URL", &format!("http://{api_addr}"))?;
        let media_url = base_url(env, "DIALER_MEDIA_URL", &public_url)?;
        let amqp_url = env.text("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
        if let Err(e) = crate::broker_connection::BrokerAddresses::parse(&amqp_url) {
            // Checked here so a service with a bad list stops at start with the reason.
            return Err(ConfigError::new(
                "AMQP_URL",
                format!("{e}; expected one amqp:// URL or several, comma-separated"),
            ));
        }
        Ok(Config {
            database_url: env.text("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dialer"),
            db_pool_size: env.positive("DIALER_DB_POOL_SIZE", 10)?,
            db_statement_timeout: env.millis("DIALER_DB_STATEMENT_TIMEOUT_MS", 60_000)?,
            amqp_url,
            queue_prefix,
            api_addr,
            max_body_bytes: env.number("DIALER_MAX_BODY_BYTES", 32 * 1024 * 1024)?,
            max_rows_per_request: env.number("DIALER_MAX_ROWS_PER_REQUEST", 50_000)?,
            max_custom_data_bytes: env.number("DIALER_MAX_CUSTOM_DATA_BYTES", 4096)?,
            outbox_interval: env.secs("DIALER_OUTBOX_INTERVAL_SECS", 5)?,
            outbox_grace: env.secs("DIALER_OUTBOX_GRACE_SECS", 30)?,
            api_workers: env.number("DIALER_API_WORKERS", 0)?,
            allow_http_loopback_callbacks: env
                .flag("DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS", false)?,
            callback_timeout: env.millis("DIALER_CALLBACK_TIMEOUT_MS", 10_000)?,
            callback_connect_timeout: env.millis("DIALER_CALLBACK_CONNECT_TIMEOUT_MS", 5_000)?,
            api_limits: ApiLimits::read(env)?,
            public_url,
            media_url,
            recordings_store: env.text("DIALER_RECORDINGS_STORE", "data/recordings"),
        })
    }
}

impl Config {
    /// How callback requests are made: timeouts, and the URL policy.
    pub fn callback_http(&self) -> crate::callbacks::delivery::HttpSettings {
        crate::callbacks::delivery::HttpSettings {
            connect_timeout: self.callback_connect_timeout,
            request_timeout: self.callback_timeout,
            policy: crate::url_policy::UrlPolicy {
                allow_loopback: self.allow_http_loopback_callbacks,
            },
        }
    }
}

/// An `http(s)` base URL without a trailing slash.
fn base_url<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    key: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let text = env.text(key, default);
    match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(text.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError::new(
            key,
            "must be an http(s) URL such as https://dialer.example.com",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_loopback() {
        let c = Config::from_lookup(|_| None).expect("defaults");
        assert_eq!(c.database_url, "postgres://postgres@127.0.0.1:5432/dialer");
        assert_eq!(c.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert!(c.api_addr.ip().is_loopback());
        assert!(!c.allow_http_loopback_callbacks);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env: HashMap<&str, &str> = [("DIALER_DB_POOL_SIZE", "ten")].into();
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).err();
        assert_eq!(err.map(|e| e.name), Some("DIALER_DB_POOL_SIZE"));
        let env: HashMap<&str, &str> = [("DIALER_QUEUE_PREFIX", "a b")].into();
        assert!(Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
        let env: HashMap<&str, &str> =
            [("AMQP_URL", "amqp://u:secret@h1/%2f,amqp://u:other@h2/%2f")].into();
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).err();
        assert_eq!(err.as_ref().map(|e| e.name), Some("AMQP_URL"));
        assert!(!format!("{err:?}").contains("secret"));
    }

    #[test]
    fn debug_hides_passwords() {
        let c = Config::from_lookup(|_| None).expect("defaults");
        let shown = format!("{c:?}");
        assert!(shown.contains("guest:***@"));
        assert!(!shown.contains("guest:guest"));
        let env: HashMap<&str, &str> =
            [("AMQP_URL", "amqp://u:p1@h1/%2f,amqp://u:p1@h2/%2f")].into();
        let c = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("a list");
        assert_eq!(
            redact_url(&c.amqp_url),
            "amqp://u:***@h1/%2f,amqp://u:***@h2/%2f"
        );
    }
}
