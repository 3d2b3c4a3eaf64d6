//! Slowing down key guessing: failed authentications are counted per client address in a fixed
//! window; past the limit, that address's requests answer `429 rate_limited` (with
//! `Retry-After`, the rest of the window) without a database lookup. A key that authenticated
//! recently (from any address) still goes through, so a legitimate client behind the same
//! address as a guesser keeps working. Each throttled address gets one warning per window, with
//! counts, instead of a line per failure. Per process; the address is the TCP peer's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api_error::ApiError;

/// Entries kept before expired ones are swept out.
const SWEEP_ABOVE: usize = 10_000;

struct Window {
    started: Instant,
    failures: u32,
    /// Requests refused with 429 in this window.
    refused: u32,
}

struct Tables {
    by_address: HashMap<IpAddr, Window>,
    /// Key hashes that authenticated, and when.
    good_keys: HashMap<[u8; 32], Instant>,
}

pub struct AuthFailures {
    max_failures: u32,
    window: Duration,
    tables: Mutex<Tables>,
}

impl AuthFailures {
    pub fn new(max_failures: u32, window: Duration) -> AuthFailures {
        AuthFailures {
            max_failures: max_failures.max(1),
            window,
            tables: Mutex::new(Tables {
                by_address: HashMap::new(),
                good_keys: HashMap::new(),
            }),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Before the lookup: `429` when `address` is past its failures and `key_hash` has not
    /// authenticated within the window.
    pub fn check(
        &self,
        address: IpAddr,
        key_hash: &[u8; 32],
        now: Instant,
    ) -> Result<(), ApiError> {
        let mut t = self.tables();
        let known = t
            .good_keys
            .get(key_hash)
            .is_some_and(|at| now.duration_since(*at) < self.window);
        let Some(w) = t.by_address.get_mut(&address) else {
            return Ok(());
        };
        let elapsed = now.duration_since(w.started);
        if elapsed >= self.window || w.failures < self.max_failures || known {
            return Ok(());
        }
        w.refused += 1;
        Err(ApiError::rate_limited(
            format!(
                "more than {} failed authentications from this address in {} s; retry later",
                self.max_failures,
                self.window.as_secs()
            ),
            self.window - elapsed,
        ))
    }

    /// A lookup found no key.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        let mut t = self.tables();
        if t.by_address.len() > SWEEP_ABOVE {
            let window = self.window;
            t.by_address
                .retain(|_, w| now.duration_since(w.started) < window);
        }
        let w = t.by_address.entry(address).or_insert(Window {
            started: now,
            failures: 0,
            refused: 0,
        });
        if now.duration_since(w.started) >= self.window {
            if w.refused > 0 {
                tracing::warn!(
                    %address,
                    failures = w.failures,
                    refused = w.refused,
                    "failed authentications in the last window ended"
                );
            }
            *w = Window {
                started: now,
                failures: 0,
                refused: 0,
            };
        }
        w.failures += 1;
        if w.failures == self.max_failures {
            tracing::warn!(
                %address,
                failures = w.failures,
                window_secs = self.window.as_secs(),
                "failed authentications: answering 429 to this address until the window ends"
            );
        } else {
            tracing::debug!(%address, failures = w.failures, "failed authentication");
        }
    }

    /// A lookup found this key.
    pub fn succeeded(&self, key_hash: [u8; 32], now: Instant) {
        let mut t = self.tables();
        if t.good_keys.len() > SWEEP_ABOVE {
            let window = self.window;
            t.good_keys.retain(|_, at| now.duration_since(*at) < window);
        }
        t.good_keys.insert(key_hash, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_an_address_past_its_failures_until_the_window_ends() {
        let f = AuthFailures::new(3, Duration::from_secs(60));
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (guess, good) = ([1u8; 32], [2u8; 32]);
        let t0 = Instant::now();
        f.succeeded(good, t0);
        for _ in 0..3 {
            assert!(f.check(a, &guess, t0).is_ok());
            f.failed(a, t0);
        }
        let err = f.check(a, &guess, t0 + Duration::from_secs(20)).err();
        assert_eq!(
            err.map(|e| (e.status.as_u16(), e.code, e.retry_after)),
            Some((429, "rate_limited", Some(40)))
        );
        assert!(
            f.check(a, &good, t0).is_ok(),
            "a key known good still passes"
        );
        assert!(
            f.check(b, &guess, t0).is_ok(),
            "another address is not throttled"
        );
        let later = t0 + Duration::from_secs(60);
        assert!(f.check(a, &guess, later).is_ok(), "the window ended");
        f.failed(a, later);
        assert!(
            f.check(a, &guess, later).is_ok(),
            "a new window counts from 1"
        );
    }
}
