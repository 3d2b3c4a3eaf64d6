//! Headers of an action read the way Asterisk's manager reads them (`astman_get_header`): an
//! empty header counts as absent; numbers and booleans (`ast_true`) parsed as it parses them.

use std::str::FromStr;

use ami_bridge::Message;

/// The header's value, or `None` when it is absent or empty.
pub(crate) fn nonempty<'m>(m: &'m Message, key: &str) -> Option<&'m str> {
    m.get(key).filter(|v| !v.is_empty())
}

/// A numeric header: `default` when absent or empty, `None` when it is not a number.
pub(crate) fn number<T: FromStr>(m: &Message, key: &str, default: T) -> Option<T> {
    match nonempty(m, key) {
        None => Some(default),
        Some(v) => v.trim().parse().ok(),
    }
}

/// Asterisk's `ast_true`.
pub(crate) fn ast_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "y" | "t" | "1" | "on"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ast_true_forms() {
        assert!(ast_true("true") && ast_true("Yes") && ast_true("1") && ast_true("on"));
        assert!(!ast_true("false") && !ast_true("0") && !ast_true(""));
    }
}
