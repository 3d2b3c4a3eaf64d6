//! Page sizes and cursors of the listings (callback events, calls, do-not-call entries).

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

/// `cursor`: a `next_cursor` this API returned.
pub fn parse_cursor(text: Option<&str>) -> OpsResult<Option<i64>> {
    match text {
        None | Some("") => Ok(None),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| OpsError::invalid("`cursor` is not a cursor this API returned")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(Some("42")).ok(), Some(Some(42)));
        assert_eq!(parse_cursor(Some("")).ok(), Some(None));
        assert!(parse_cursor(Some("-1")).is_err());
        assert!(parse_cursor(Some("x")).is_err());
    }
}
