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

/// A page read with one row more than `limit` (`limit + 1` asked): cut to `limit`, and the
/// `next_cursor` (the key of its last row) when there was more.
pub fn next_cursor<T>(rows: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> i64) -> Option<String> {
    if rows.len() as i64 <= limit {
        return None;
    }
    rows.truncate(limit as usize);
    rows.last().map(|r| key(r).to_string())
}

/// Refuses a query parameter outside `known`: a typo must not silently widen a listing.
pub fn refuse_unknown_params<'k>(
    names: impl IntoIterator<Item = &'k str>,
    known: &[&str],
) -> OpsResult<()> {
    match dialer_core::client_text::first_unknown(names, known) {
        None => Ok(()),
        Some(name) => Err(OpsError::invalid(format!(
            "unknown query parameter `{}` (known: {})",
            dialer_core::client_text::quoted(name),
            known.join(", ")
        ))),
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

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_came() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_cursor(&mut rows, 3, |r| *r), None);
        assert_eq!(rows, [1, 2, 3]);
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_cursor(&mut rows, 2, |r| *r), Some("2".to_owned()));
        assert_eq!(rows, [1, 2]);
    }
}
