//! Reading settings from environment variables: one family of functions for every service's
//! config, so each variable has a default and a bad value is an error naming the variable and
//! the value (`environment variable DIALER_DB_POOL_SIZE: `ten` is not a valid number`).
//!
//! ```
//! use std::time::Duration;
//! use dialer_core::config::{ConfigError, Env};
//!
//! struct MyConfig {
//!     workers: usize,
//!     timeout: Duration,
//!     rate: Option<f64>,
//!     verbose: bool,
//! }
//!
//! fn from_env(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<MyConfig, ConfigError> {
//!     Ok(MyConfig {
//!         workers: env.positive("MY_WORKERS", 4)?,
//!         timeout: env.millis("MY_TIMEOUT_MS", 5_000)?,
//!         rate: env.optional("MY_RATE", "a number")?,
//!         verbose: env.flag("MY_VERBOSE", false)?,
//!     })
//! }
//!
//! // In the binary: `from_env(&Env::process())`; in tests, any lookup:
//! let c = from_env(&Env::new(|k| (k == "MY_TIMEOUT_MS").then(|| "250".to_string())))?;
//! assert_eq!(c.timeout, Duration::from_millis(250));
//! assert_eq!((c.workers, c.rate, c.verbose), (4, None, false));
//!
//! let bad = from_env(&Env::new(|k| (k == "MY_WORKERS").then(|| "0".to_string())));
//! assert_eq!(bad.err().map(|e| e.name), Some("MY_WORKERS"));
//! # Ok::<(), ConfigError>(())
//! ```

use std::str::FromStr;
use std::time::Duration;

/// A variable's value is not usable; `Display` names the variable and says why (with the value).
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            name,
            reason: reason.into(),
        }
    }
}

/// The lookup of the process environment.
pub type ProcessLookup = fn(&str) -> Option<String>;

/// Where settings are read from: the process environment ([`Env::process`]) or any lookup
/// ([`Env::new`], e.g. a map in tests; a service that treats an empty variable as unset filters
/// it here: `Env::new(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))`).
#[derive(Debug, Clone, Copy)]
pub struct Env<F> {
    lookup: F,
}

impl Env<ProcessLookup> {
    /// The process's environment variables.
    pub fn process() -> Env<ProcessLookup> {
        Env {
            lookup: |k| std::env::var(k).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Env<F> {
        Env { lookup }
    }

    /// The variable's value, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The variable as text, or `default` when unset.
    pub fn text(&self, name: &'static str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// The variable parsed as `T` (surrounding white space ignored), `None` when unset; a value
    /// that does not parse is an error saying it is not `expected` ("a number", "host:port").
    pub fn optional<T: FromStr>(
        &self,
        name: &'static str,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::new(name, format!("`{v}` is not {expected}"))),
        }
    }

    /// The variable parsed as `T`, or `default` when unset (see [`Env::optional`]).
    pub fn parse<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        Ok(self.optional(name, expected)?.unwrap_or(default))
    }

    /// A number, or `default` when unset.
    pub fn number<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        self.parse(name, default, "a valid number")
    }

    /// A number of at least 1 (counts, sizes), or `default` when unset.
    pub fn positive<T: FromStr + PartialOrd + From<u8>>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        let v = self.number(name, default)?;
        if v < T::from(1) {
            return Err(ConfigError::new(name, "must be at least 1"));
        }
        Ok(v)
    }

    /// Whole milliseconds, or `default_ms` when unset.
    pub fn millis(&self, name: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
        self.number(name, default_ms).map(Duration::from_millis)
    }

    /// Whole seconds, or `default_secs` when unset.
    pub fn secs(&self, name: &'static str, default_secs: u64) -> Result<Duration, ConfigError> {
        self.number(name, default_secs).map(Duration::from_secs)
    }

    /// `1`/`true`/`yes` or `0`/`false`/`no`/empty, or `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no" | "") => Ok(false),
            Some(other) => Err(ConfigError::new(
                name,
                format!("`{other}` is not true/false"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &'static str, value: &'static str) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(move |k| (k == name).then(|| value.to_string()))
    }

    #[test]
    fn defaults_when_unset_and_values_when_set() {
        let env = one("N", " 7 ");
        assert_eq!(env.number("N", 1u32).ok(), Some(7));
        assert_eq!(env.number("OTHER", 1u32).ok(), Some(1));
        assert_eq!(env.text("OTHER", "x"), "x");
        assert_eq!(one("F", "yes").flag("F", false).ok(), Some(true));
        assert_eq!(one("F", "").flag("F", true).ok(), Some(false));
        assert_eq!(
            one("T", "1500").millis("T", 1).ok(),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn errors_name_the_variable_and_the_value() {
        let message = |e: Option<ConfigError>| e.map(|e| e.to_string());
        for (got, want) in [
            (
                message(one("N", "ten").number("N", 1u32).err()),
                "environment variable N: `ten` is not a valid number",
            ),
            (
                message(one("N", "0").positive("N", 1usize).err()),
                "environment variable N: must be at least 1",
            ),
            (
                message(one("A", "here").parse("A", 0u8, "host:port").err()),
                "environment variable A: `here` is not host:port",
            ),
            (
                message(one("F", "maybe").flag("F", false).err()),
                "environment variable F: `maybe` is not true/false",
            ),
        ] {
            assert_eq!(got.as_deref(), Some(want));
        }
    }
}
