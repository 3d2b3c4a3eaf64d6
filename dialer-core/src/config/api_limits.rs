//! `dialer-api`'s protections of shared resources: how much of the connection pool one account
//! may hold, how failed authentications are slowed down, how long a request may take to arrive.

use std::net::IpAddr;
use std::time::Duration;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// `DIALER_API_ACCOUNT_CONCURRENCY`: requests of one account served at once (each may hold a
    /// pooled connection); 0: half the pool, at least 1 (see [`ApiLimits::account_share`]).
    pub account_concurrency: usize,
    /// `DIALER_API_ACCOUNT_SUBMISSIONS`: submissions of one account served at once (they take the
    /// account's ingestion lock in turn anyway; more would only hold connections while waiting).
    pub account_submissions: usize,
    /// `DIALER_API_ACCOUNT_WAIT_MS`: how long a request waits for one of its account's places
    /// (holding no connection) before `429 rate_limited`.
    pub account_wait: Duration,
    /// `DIALER_API_AUTH_POOL_SIZE`: connections of authentication's own pool, so that API key
    /// lookups never wait behind the accounts' work.
    pub auth_pool_size: usize,
    /// `DIALER_API_AUTH_MAX_FAILURES`: failed authentications from one address per window before
    /// its requests answer `429` without a database lookup.
    pub auth_max_failures: u32,
    /// `DIALER_API_AUTH_FAILURE_WINDOW_SECS`: that window.
    pub auth_failure_window: Duration,
    /// `DIALER_API_HEAD_TIMEOUT_MS`: time to receive a request's head (actix answers 408 and
    /// closes past it).
    pub head_timeout: Duration,
    /// `DIALER_API_BODY_IDLE_TIMEOUT_MS`: longest pause while a request body arrives (408 past it).
    pub body_idle_timeout: Duration,
    /// `DIALER_API_BODY_TIMEOUT_MS`: longest time to receive a whole request body (408 past it).
    pub body_timeout: Duration,
    /// `DIALER_API_TRUSTED_PROXIES`: addresses or CIDR ranges (comma separated) of the reverse
    /// proxies in front of the API, whose `X-Forwarded-For` names the client; empty: none (the
    /// TCP peer is the client).
    pub trusted_proxies: Vec<AddressRange>,
}

/// An address range such as `10.0.0.0/8` or `::1/128` (a bare address is its own range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    pub fn parse(text: &str) -> Option<AddressRange> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
        };
        Some(AddressRange { network, prefix })
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let bits = |a: IpAddr| -> Option<(u128, u32)> {
            match a {
                IpAddr::V4(v4) => Some((u128::from(u32::from(v4)) << 96, 32)),
                IpAddr::V6(v6) => Some((u128::from(v6), 128)),
            }
        };
        let (Some((net, width)), Some((other, other_width))) = (bits(self.network), bits(addr))
        else {
            return false;
        };
        if width != other_width {
            return false;
        }
        let prefix = u32::from(self.prefix);
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        net & mask == other & mask
    }
}

impl ApiLimits {
    /// Requests of one account served at once with a pool of `db_pool_size` connections.
    pub fn account_share(&self, db_pool_size: usize) -> usize {
        match self.account_concurrency {
            0 => (db_pool_size / 2).max(1),
            n => n,
        }
    }

    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ApiLimits, ConfigError> {
        Ok(ApiLimits {
            account_concurrency: env.number("DIALER_API_ACCOUNT_CONCURRENCY", 0)?,
            account_submissions: env.positive("DIALER_API_ACCOUNT_SUBMISSIONS", 2)?,
            account_wait: env.millis("DIALER_API_ACCOUNT_WAIT_MS", 1_000)?,
            auth_pool_size: env.positive("DIALER_API_AUTH_POOL_SIZE", 2)?,
            auth_max_failures: env.positive("DIALER_API_AUTH_MAX_FAILURES", 30)?,
            auth_failure_window: positive_duration(
                "DIALER_API_AUTH_FAILURE_WINDOW_SECS",
                env.secs("DIALER_API_AUTH_FAILURE_WINDOW_SECS", 60)?,
            )?,
            head_timeout: env.millis("DIALER_API_HEAD_TIMEOUT_MS", 5_000)?,
            body_idle_timeout: positive_duration(
                "DIALER_API_BODY_IDLE_TIMEOUT_MS",
                env.millis("DIALER_API_BODY_IDLE_TIMEOUT_MS", 15_000)?,
            )?,
            body_timeout: positive_duration(
                "DIALER_API_BODY_TIMEOUT_MS",
                env.millis("DIALER_API_BODY_TIMEOUT_MS", 300_000)?,
            )?,
            trusted_proxies: trusted_proxies(env)?,
        })
    }
}

fn trusted_proxies<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Vec<AddressRange>, ConfigError> {
    const NAME: &str = "DIALER_API_TRUSTED_PROXIES";
    let text = env.text(NAME, "");
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            AddressRange::parse(t).ok_or_else(|| {
                ConfigError::new(NAME, "must be addresses or CIDR ranges, comma separated")
            })
        })
        .collect()
}

fn positive_duration(name: &'static str, d: Duration) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::new(name, "must be more than 0"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(value: Option<&str>, pool: usize) -> Option<usize> {
        let env = Env::new(|k: &str| {
            (k == "DIALER_API_ACCOUNT_CONCURRENCY")
                .then(|| value.map(str::to_owned))
                .flatten()
        });
        ApiLimits::read(&env).map(|l| l.account_share(pool)).ok()
    }

    #[test]
    fn address_ranges() {
        let net = |t| AddressRange::parse(t).expect("range");
        let ip = |t: &str| t.parse::<IpAddr>().expect("address");
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("fd00::/8").contains(ip("fd12::1")));
        assert!(!net("fd00::/8").contains(ip("10.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "proxy", "10.0.0/8", "::/129"] {
            assert_eq!(AddressRange::parse(bad), None, "{bad}");
        }
        let env =
            Env::new(|k| (k == "DIALER_API_TRUSTED_PROXIES").then(|| "10.0.0.1, nope".to_owned()));
        assert_eq!(
            ApiLimits::read(&env).err().map(|e| e.name),
            Some("DIALER_API_TRUSTED_PROXIES")
        );
    }

    #[test]
    fn account_share_defaults_to_half_the_pool() {
        assert_eq!((share(None, 10), share(None, 1)), (Some(5), Some(1)));
        assert_eq!(
            (share(Some("0"), 4), share(Some("3"), 10)),
            (Some(2), Some(3))
        );
        let zero = Env::new(|k| (k == "DIALER_API_BODY_IDLE_TIMEOUT_MS").then(|| "0".to_owned()));
        assert_eq!(
            ApiLimits::read(&zero).err().map(|e| e.name),
            Some("DIALER_API_BODY_IDLE_TIMEOUT_MS")
        );
    }
}
