//! Page sizes of the listings (callback events, the calls of a batch).

use crate::ops::error::{OpsError, OpsResult};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// `limit`: 1 to 1000.
pub fn parse_limit(text: Option<&str>) -> OpsResult<i64> {
    match text {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                OpsError::invalid(format!("`limit` must be an integer from 1 to {MAX_LIMIT}"))
            }),
    }
}
