//! Text a client sent, as an error message may quote it, and the first name a client sent that
//! is not among the known ones: one rule for every refusal that names what it refused.

/// At most 64 characters, control characters escaped, `…` when cut: a name may be a megabyte
/// long or carry NULs, and a message must stay one readable line.
pub fn quoted(text: &str) -> String {
    let mut shown = String::new();
    for c in text.chars().take(64) {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    if text.chars().nth(64).is_some() {
        shown.push('…');
    }
    shown
}

/// The first of `names` (in name order, so a message does not depend on hashing) that is not in
/// `known`.
pub fn first_unknown<'n>(
    names: impl IntoIterator<Item = &'n str>,
    known: &[&str],
) -> Option<&'n str> {
    names.into_iter().filter(|n| !known.contains(n)).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_bounds_and_escapes() {
        assert_eq!(quoted("max_attempt"), "max_attempt");
        assert_eq!(quoted("x\u{0}y\n"), "x\\u{0}y\\n");
        assert_eq!(quoted("é"), "é");
        let long = "k".repeat(100_000);
        assert_eq!(quoted(&long), format!("{}…", "k".repeat(64)));
        assert_eq!(quoted(&"k".repeat(64)), "k".repeat(64));
    }

    #[test]
    fn the_first_unknown_name_in_name_order() {
        let known = ["start", "end", "days"];
        assert_eq!(
            first_unknown(["start", "zeta", "alpha"], &known),
            Some("alpha")
        );
        assert_eq!(first_unknown(["start", "end"], &known), None);
    }
}
