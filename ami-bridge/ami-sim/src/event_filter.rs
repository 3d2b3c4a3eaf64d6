//! Which events the AMI user is sent, as Asterisk 20's manager decides it: the user's `read`
//! classes (an event goes out when its `Privilege` class is among them), then its manager.conf
//! `eventfilter` lines: each a regular expression searched for anywhere in the event's whole
//! text (`Event:` line to the blank line); a line starting with `!` excludes. An event passes
//! when no include line is configured or one matches, and no exclude line matches
//! (main/manager.c, `match_filter`). Only events are filtered; responses always go out.
//!
//! The subset: POSIX extended regexes are read as Rust `regex` syntax (the same for literals,
//! `^`, `$`, `.`, classes, `|`, `*`, `+`, `?`; `.` also matches line ends, as POSIX's does).
//! Asterisk 20.7+'s advanced `eventfilter(action(...),name(...),...)` keys are not modelled.

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder};

/// A `read` or `eventfilter` value Asterisk would not accept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("read: unknown class {0:?}")]
    UnknownClass(String),
    #[error("eventfilter {line:?}: {source}")]
    Regex {
        line: String,
        source: Box<regex::Error>,
    },
}

#[derive(Debug, Clone, Default)]
pub(crate) struct EventFilter {
    /// The `read` classes; None: `all`.
    read: Option<Vec<String>>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

/// A burst after filtering.
pub(crate) struct Filtered {
    pub bytes: Bytes,
    /// Messages kept.
    pub kept: u64,
    /// Events filtered out.
    pub dropped: u64,
}

impl EventFilter {
    /// `read`: manager.conf's `read =` value (`all`, or classes such as `call,user`).
    pub(crate) fn new(read: &str, lines: &[String]) -> Result<EventFilter, FilterError> {
        let mut f = EventFilter::default();
        let classes: Vec<String> = read
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        if let Some(bad) = classes.iter().find(|c| !CLASSES.contains(&c.as_str())) {
            return Err(FilterError::UnknownClass(bad.clone()));
        }
        if !classes.iter().any(|c| c == "all") {
            f.read = Some(classes);
        }
        for line in lines {
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, line.as_str()),
            };
            let re = RegexBuilder::new(pattern)
                .dot_matches_new_line(true)
                .build()
                .map_err(|e| FilterError::Regex {
                    line: line.clone(),
                    source: Box::new(e),
                })?;
            if exclude {
                f.exclude.push(re);
            } else {
                f.include.push(re);
            }
        }
        Ok(f)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.read.is_none() && self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the user reads events of this class (`system`: FullyBooted at login).
    pub(crate) fn reads(&self, class: &str) -> bool {
        self.read
            .as_ref()
            .is_none_or(|r| r.iter().any(|c| c == class))
    }

    /// Whether this session may see one message (its whole text).
    pub(crate) fn passes(&self, message: &[u8]) -> bool {
        if !message.starts_with(b"Event:") {
            return true;
        }
        if self.read.is_some()
            && !privilege(message).is_none_or(|p| {
                p.split(|b| *b == b',')
                    .any(|c| c != b"all" && self.reads(&String::from_utf8_lossy(c)))
            })
        {
            return false;
        }
        let included = self.include.is_empty() || self.include.iter().any(|r| r.is_match(message));
        included && !self.exclude.iter().any(|r| r.is_match(message))
    }

    /// Keeps the messages of a burst (`Key: Value` lines, each message ended by a blank line)
    /// that pass; `count` is how many messages the burst holds.
    pub(crate) fn apply(&self, burst: Bytes, count: u64) -> Filtered {
        if self.is_empty() {
            return Filtered {
                bytes: burst,
                kept: count,
                dropped: 0,
            };
        }
        let mut out = BytesMut::with_capacity(burst.len());
        let (mut kept, mut dropped) = (0, 0);
        let mut start = 0;
        for end in memmem::find_iter(&burst, b"\r\n\r\n") {
            // Each message ends at its first blank line; a header cannot be empty.
            if end < start {
                continue;
            }
            let message = &burst[start..end + 4];
            start = end + 4;
            if self.passes(message) {
                out.put_slice(message);
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        if start < burst.len() {
            // An unterminated tail cannot be judged; Asterisk never sends one.
            out.put_slice(&burst[start..]);
        }
        Filtered {
            bytes: out.freeze(),
            kept,
            dropped,
        }
    }
}

/// manager.conf's read/write classes.
const CLASSES: &[&str] = &[
    "all",
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
];

/// The value of an event's `Privilege` header (`call,all`), if it has one.
fn privilege(message: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\r\nPrivilege: ";
    let at = memmem::find(message, KEY)? + KEY.len();
    let len = memmem::find(&message[at..], b"\r\n")?;
    Some(&message[at..at + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(lines: &[&str]) -> EventFilter {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        EventFilter::new("all", &lines).expect("valid filter")
    }

    const NEWCHANNEL: &[u8] =
        b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/a-1\r\n\r\n";
    const HANGUP_REQUEST: &[u8] =
        b"Event: HangupRequest\r\nPrivilege: call,all\r\nCause: 16\r\n\r\n";
    const SOFT: &[u8] = b"Event: SoftHangupRequest\r\nPrivilege: call,all\r\nCause: 16\r\n\r\n";
    const VARSET: &[u8] = b"Event: VarSet\r\nPrivilege: dialplan,all\r\nVariable: X\r\n\r\n";
    const RESPONSE: &[u8] = b"Response: Success\r\nMessage: Pong\r\n\r\n";

    #[test]
    fn include_lines_are_a_whitelist_of_regexes_over_the_text() {
        let f = filter(&["Event: Newchannel", "Event: Hangup"]);
        assert!(f.passes(NEWCHANNEL));
        // A regex, not an event name: HangupRequest matches "Event: Hangup" too.
        assert!(f.passes(HANGUP_REQUEST));
        assert!(!f.passes(SOFT));
        assert!(!f.passes(VARSET));
        assert!(f.passes(RESPONSE), "responses are never filtered");
        assert!(
            filter(&["Channel: SIP/a-1"]).passes(NEWCHANNEL),
            "any header"
        );
        assert!(filter(&["^Event: New"]).passes(NEWCHANNEL));
        assert!(!filter(&["^Channel"]).passes(NEWCHANNEL));
        assert!(
            filter(&["Newchannel.*SIP/a"]).passes(NEWCHANNEL),
            "across lines"
        );
    }

    #[test]
    fn exclude_lines_alone_and_combined() {
        let f = filter(&["!Event: VarSet"]);
        assert!(f.passes(NEWCHANNEL));
        assert!(!f.passes(VARSET));
        let f = filter(&["Privilege: call", "!Event: Soft"]);
        assert!(f.passes(NEWCHANNEL));
        assert!(f.passes(HANGUP_REQUEST));
        assert!(!f.passes(SOFT), "included, then excluded");
        assert!(!f.passes(VARSET), "not included");
    }

    #[test]
    fn a_burst_keeps_what_passes() {
        let burst: Vec<u8> = [NEWCHANNEL, VARSET, SOFT, HANGUP_REQUEST].concat();
        let out = filter(&["Event: Newchannel", "Event: Hangup"]).apply(Bytes::from(burst), 4);
        assert_eq!(
            out.bytes,
            Bytes::from([NEWCHANNEL, HANGUP_REQUEST].concat())
        );
        assert_eq!((out.kept, out.dropped), (2, 2));
        let whole = Bytes::from_static(NEWCHANNEL);
        let out = EventFilter::default().apply(whole.clone(), 1);
        assert_eq!((out.bytes, out.kept, out.dropped), (whole, 1, 0));
    }

    #[test]
    fn read_classes_come_first() {
        let f = EventFilter::new("call", &[]).expect("valid");
        assert!(!f.is_empty());
        assert!(f.passes(NEWCHANNEL));
        assert!(!f.passes(VARSET), "dialplan class");
        assert!(f.passes(RESPONSE));
        assert!(!f.reads("system"));
        let f = EventFilter::new("call,dialplan", &["!Event: VarSet".into()]).expect("valid");
        assert!(f.passes(NEWCHANNEL));
        assert!(!f.passes(VARSET), "readable, then excluded");
        let all = EventFilter::new("system, all", &[]).expect("valid");
        assert!(all.is_empty() && all.reads("security"));
        assert!(EventFilter::new("cal", &[]).is_err());
    }

    #[test]
    fn bad_regexes_are_refused() {
        assert!(EventFilter::new("all", &["Event: (".to_string()]).is_err());
    }
}
