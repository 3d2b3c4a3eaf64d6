//! Per-API-key request rate limit (the account's `api_requests_per_second`, as a burst of that
//! size refilled each second). governor limits within this process: with several API
//! processes each allows the full rate.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::api_error::ApiError;

#[derive(Default)]
pub struct KeyLimiters {
    // (key id, rate): a changed rate gets a fresh limiter.
    limiters: Mutex<HashMap<(i64, u32), Arc<DefaultDirectRateLimiter>>>,
}

impl KeyLimiters {
    /// Ok, or `429 rate_limited` with the seconds to wait.
    pub fn check(&self, key_id: i64, per_second: i32) -> Result<(), ApiError> {
        let rate = NonZeroU32::new(per_second.max(1) as u32).unwrap_or(NonZeroU32::MIN);
        let limiter = {
            let mut map = self
                .limiters
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            map.entry((key_id, rate.get()))
                .or_insert_with(|| Arc::new(RateLimiter::direct(Quota::per_second(rate))))
                .clone()
        };
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited(
                format!("more than {rate} requests per second with this API key; retry later"),
                wait,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_429_with_retry_after() {
        let l = KeyLimiters::default();
        assert!(l.check(1, 2).is_ok());
        assert!(l.check(1, 2).is_ok());
        let err = l
            .check(1, 2)
            .expect_err("third request in the same second is limited");
        assert_eq!(err.code, "rate_limited");
        assert_eq!(err.retry_after, Some(1));
        assert!(l.check(2, 2).is_ok(), "another key has its own budget");
    }
}
