//! What `Read()` makes of the keys a callee presses, as Asterisk 20's app_read.c and
//! `ast_readstring` decide it: each key must arrive (its DTMF end) within the timeout of the
//! Read's start or of the previous key; the finish key ends the Read and is not part of the
//! digits (`READSTATUS` `OK`, also when it is the only key); reaching the most digits ends it
//! (`OK`); a timeout ends it with whatever was pressed (`TIMEOUT`, digits possibly empty). The
//! opt-out digit as the first key ends it too (`OK`, the digit kept): the shipped dialplan reads
//! the first key on its own for that.

use std::time::Duration;

use crate::flow_vars::Gather;

/// `READSTATUS` after the Read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadStatus {
    Ok,
    Timeout,
}

impl ReadStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReadStatus::Ok => "OK",
            ReadStatus::Timeout => "TIMEOUT",
        }
    }
}

/// One key, as the callee presses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyPress {
    pub key: char,
    /// Its `DTMFBegin`, from the start of the Read; `DTMFEnd` follows after the hold time.
    pub begin: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadResult {
    /// The keys that reach the Read, in order (the finish key included).
    pub presses: Vec<KeyPress>,
    /// `DIGITS`: without the finish key.
    pub digits: String,
    pub status: ReadStatus,
    /// When the Read returns, from its start.
    pub ends: Duration,
}

/// The Read of `gather` while the callee presses `keys`, each `key_delay` after the Read's
/// start or the previous key's end, holding it `hold`. A key that would end after the timeout
/// is not pressed: the Read has timed out by then and the call is hung up.
pub(crate) fn read(gather: &Gather, keys: &str, key_delay: Duration, hold: Duration) -> ReadResult {
    let mut presses = Vec::new();
    let mut digits = String::new();
    // When the Read started waiting for the next key.
    let mut since = Duration::ZERO;
    let done = |presses, digits, ends| ReadResult {
        presses,
        digits,
        status: ReadStatus::Ok,
        ends,
    };
    for (i, key) in keys.chars().enumerate() {
        let begin = since + key_delay;
        let end = begin + hold;
        if end - since > gather.timeout {
            break;
        }
        presses.push(KeyPress { key, begin });
        since = end;
        // The terminator is checked before anything else (ast_readstring).
        if gather.finish == Some(key) {
            return done(presses, digits, since);
        }
        digits.push(key);
        if i == 0 && gather.opt_out == Some(key) {
            return done(presses, digits, since);
        }
        if digits.chars().count() >= gather.max as usize {
            return done(presses, digits, since);
        }
    }
    ReadResult {
        presses,
        digits,
        status: ReadStatus::Timeout,
        ends: since + gather.timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn gather(max: u32, timeout_ms: u64, finish: Option<char>, opt_out: Option<char>) -> Gather {
        Gather {
            max,
            timeout: MS * timeout_ms as u32,
            finish,
            opt_out,
        }
    }

    fn run(g: &Gather, keys: &str) -> (String, ReadStatus, Vec<char>, Duration) {
        let r = read(g, keys, MS * 100, MS * 50);
        let keys = r.presses.iter().map(|p| p.key).collect();
        (r.digits, r.status, keys, r.ends)
    }

    #[test]
    fn the_finish_key_ends_and_is_left_out() {
        let g = gather(4, 1000, Some('#'), Some('9'));
        assert_eq!(
            run(&g, "12#3"),
            ("12".into(), ReadStatus::Ok, vec!['1', '2', '#'], MS * 450)
        );
        // Alone it still is OK, with no digits (AST_GETDATA_EMPTY_END_TERMINATED).
        assert_eq!(
            run(&g, "#"),
            (String::new(), ReadStatus::Ok, vec!['#'], MS * 150)
        );
    }

    #[test]
    fn max_digits_end_the_read() {
        let g = gather(2, 1000, None, None);
        assert_eq!(
            run(&g, "1234"),
            ("12".into(), ReadStatus::Ok, vec!['1', '2'], MS * 300)
        );
        // Without a finish key `#` is a digit like any other.
        assert_eq!(run(&g, "#5").0, "#5");
    }

    #[test]
    fn opt_out_counts_only_as_the_first_key() {
        let g = gather(4, 1000, Some('#'), Some('9'));
        assert_eq!(
            run(&g, "91"),
            ("9".into(), ReadStatus::Ok, vec!['9'], MS * 150)
        );
        let (digits, status, _, _) = run(&g, "19#");
        assert_eq!((digits.as_str(), status), ("19", ReadStatus::Ok));
    }

    #[test]
    fn timeouts_keep_what_was_pressed() {
        let g = gather(4, 1000, Some('#'), None);
        assert_eq!(
            run(&g, ""),
            (String::new(), ReadStatus::Timeout, vec![], MS * 1000)
        );
        assert_eq!(
            run(&g, "12"),
            ("12".into(), ReadStatus::Timeout, vec!['1', '2'], MS * 1300)
        );
        // A callee slower than the timeout never gets a key in.
        let slow = read(&g, "1", MS * 990, MS * 50);
        assert_eq!(
            (
                slow.digits.as_str(),
                slow.status,
                slow.presses.len(),
                slow.ends
            ),
            ("", ReadStatus::Timeout, 0, MS * 1000)
        );
    }
}
