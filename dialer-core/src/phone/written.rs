//! The contract's grammar of a written number: digits with optional spaces, dashes, dots,
//! parentheses and one leading `+`. Anything else (letters, words, an extension, other scripts'
//! digits) is refused here, before the parser could guess at it: libphonenumber would read
//! letters as keypad digits, skip words before the number and keep an extension apart.

/// Longest text taken (after trimming); far above any number written in this grammar.
const MAX_CHARS: usize = 64;

/// A number as written: whether it started with `+`, and its ASCII digits in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Written {
    pub plus: bool,
    pub digits: String,
}

/// `raw` with surrounding whitespace trimmed, if it follows the grammar.
pub(super) fn written(raw: &str) -> Option<Written> {
    let text = raw.trim();
    if text.chars().count() > MAX_CHARS {
        return None;
    }
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    (!digits.is_empty()).then_some(Written { plus, digits })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(raw: &str) -> Option<(bool, String)> {
        written(raw).map(|w| (w.plus, w.digits))
    }

    #[test]
    fn punctuation_of_the_grammar_is_dropped() {
        assert_eq!(
            digits(" +91 (98765) 43-210 "),
            Some((true, "919876543210".into()))
        );
        assert_eq!(
            digits("(0)98765.432-10"),
            Some((false, "09876543210".into()))
        );
        assert_eq!(digits("+ 91 98765"), Some((true, "9198765".into())));
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "98765ABCDE",
            "call me at 9870200011",
            "9876511135 ext. 7",
            "9876511135 x7",
            "9876511135;ext=7",
            "++919876543210",
            "91+9876543210",
            "(+91) 9876543210",
            "#9876543210",
            "*9876543210",
            "9876543210#",
            "tel:+919876543210",
            "98765/43210",
            "٩٨٧٦٥٤٣٢١٠",
            "９８７６５４３２１０",
            "+９１９８７６５４３２１０",
            "98765\u{0}43210",
            "98765\u{a0}43210",
            "98765\t43210",
            "98765_43210",
            "",
            "   ",
            "+",
            "()- .",
        ] {
            assert_eq!(written(raw), None, "{raw:?}");
        }
        assert_eq!(written(&"9".repeat(65)), None);
    }
}
