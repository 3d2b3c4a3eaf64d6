//! One AMI message: an ordered list of `Key: Value` headers, repeated keys kept.
//!
//! The text is held in one buffer and headers as spans into it, so parsing a message costs two
//! allocations however many headers it has.

use std::fmt;
use std::ops::Range;
use std::time::Instant;

/// What a message is, decided by its first header only: `OriginateResponse` is an event that also
/// carries `Response:` and `ActionID`, and list items (`CoreShowChannel`) carry `ActionID` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Response,
    Event,
    Action,
    /// First line is not `Response`, `Event` or `Action`: garbage or an unknown dialect.
    Unknown,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Span {
    key: (u32, u32),
    value: (u32, u32),
}

impl Span {
    fn key(&self) -> Range<usize> {
        self.key.0 as usize..self.key.1 as usize
    }
    fn value(&self) -> Range<usize> {
        self.value.0 as usize..self.value.1 as usize
    }
}

/// When a message's last bytes were read off the socket. Not part of what the message says: two
/// messages with the same headers are equal whenever they were read.
#[derive(Clone, Copy, Default)]
struct ReadAt(Option<Instant>);

impl PartialEq for ReadAt {
    fn eq(&self, _: &ReadAt) -> bool {
        true
    }
}

impl Eq for ReadAt {}

/// A parsed AMI message. Header names compare case-insensitively, as Asterisk does.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    text: Box<str>,
    headers: Vec<Span>,
    /// Lines without a `:` (the body of an old `Response: Follows`, or garbage), in order.
    body: Vec<(u32, u32)>,
    read_at: ReadAt,
}

impl Message {
    /// Builds a message from lines already split (no line terminators). A line without `:` is
    /// kept as a body line. Exactly one space after the colon is part of the separator; any
    /// further spaces belong to the value, as Asterisk sends them (`Value:   minrxlost=...`).
    pub(crate) fn from_text(text: Box<str>, line_ends_crlf_stripped: &[(u32, u32)]) -> Message {
        let mut headers = Vec::with_capacity(line_ends_crlf_stripped.len());
        let mut body = Vec::new();
        let bytes = text.as_bytes();
        for &(start, end) in line_ends_crlf_stripped {
            let line = &bytes[start as usize..end as usize];
            match memchr::memchr(b':', line) {
                Some(colon) => {
                    let key_end = start + colon as u32;
                    let mut value_start = key_end + 1;
                    if bytes.get(value_start as usize) == Some(&b' ') && value_start < end {
                        value_start += 1;
                    }
                    headers.push(Span {
                        key: (start, key_end),
                        value: (value_start, end),
                    });
                }
                None => body.push((start, end)),
            }
        }
        Message {
            text,
            headers,
            body,
            read_at: ReadAt::default(),
        }
    }

    /// When the client read the message's last bytes off the socket, before decoding it: the
    /// moment the PBX's words reached this host, however late the caller handles them. `None`
    /// for a message that was not received (built here, or by the simulator).
    pub fn read_at(&self) -> Option<Instant> {
        self.read_at.0
    }

    pub(crate) fn set_read_at(&mut self, at: Instant) {
        self.read_at = ReadAt(Some(at));
    }

    /// Builds a message from header pairs (used by the simulator and tests).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Message {
        let mut text = String::new();
        let mut lines = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let start = text.len() as u32;
            text.push_str(k.as_ref());
            text.push_str(": ");
            text.push_str(v.as_ref());
            lines.push((start, text.len() as u32));
            text.push('\n');
        }
        Message::from_text(text.into_boxed_str(), &lines)
    }

    pub fn kind(&self) -> MessageKind {
        match self.headers.first() {
            Some(first) => {
                let key = &self.text[first.key()];
                if key.eq_ignore_ascii_case("Event") {
                    MessageKind::Event
                } else if key.eq_ignore_ascii_case("Response") {
                    MessageKind::Response
                } else if key.eq_ignore_ascii_case("Action") {
                    MessageKind::Action
                } else {
                    MessageKind::Unknown
                }
            }
            None => MessageKind::Unknown,
        }
    }

    /// The value of the first header, when it is `Event`, `Response` or `Action`.
    pub fn first_value(&self) -> Option<&str> {
        self.headers.first().map(|s| &self.text[s.value()])
    }

    /// The event name (`Hangup`), when this is an event.
    pub fn event_name(&self) -> Option<&str> {
        (self.kind() == MessageKind::Event)
            .then(|| self.first_value())
            .flatten()
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// Every value of `key`, in order (`ChanVariable`, `Variable`, `Output` repeat).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(move |s| (&self.text[s.key()], &self.text[s.value()]))
    }

    pub fn len(&self) -> usize {
        self.headers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Lines that had no `Key:` form (old `Response: Follows` bodies, stray text).
    pub fn body_lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.body
            .iter()
            .map(move |&(s, e)| &self.text[s as usize..e as usize])
    }

    pub fn action_id(&self) -> Option<&str> {
        self.get("ActionID")
    }

    /// A channel variable as Asterisk reports it with `channelvars` set: `ChanVariable: NAME=v`,
    /// or on a successful OriginateResponse `ChanVariable(SIP/x-0001): NAME=v` (the parentheses
    /// hold the channel name). `prefix` is `""` for the channel itself, `"Dest"` for Dial events,
    /// `"LocalOne"`/`"LocalTwo"` for LocalBridge.
    pub fn chan_variable_with_prefix(&self, prefix: &str, name: &str) -> Option<&str> {
        self.iter().find_map(|(k, v)| {
            let rest = strip_prefix_ci(k, prefix)?;
            let rest = strip_prefix_ci(rest, "ChanVariable")?;
            if !(rest.is_empty() || (rest.starts_with('(') && rest.ends_with(')'))) {
                return None;
            }
            let (var, value) = v.split_once('=')?;
            var.eq_ignore_ascii_case(name).then_some(value)
        })
    }

    /// `ChanVariable` of the channel itself (see [`Message::chan_variable_with_prefix`]).
    pub fn chan_variable(&self, name: &str) -> Option<&str> {
        self.chan_variable_with_prefix("", name)
    }

    /// Writes the message in wire form, CRLF line ends and the blank line that ends it.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for (k, v) in self.iter() {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for line in self.body_lines() {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach a log through Debug.
        let mut m = f.debug_map();
        for (k, v) in self.iter() {
            if k.eq_ignore_ascii_case("Secret") {
                m.entry(&k, &"<redacted>");
            } else {
                m.entry(&k, &v);
            }
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_and_case_insensitive_lookup() {
        let m = Message::from_pairs(&[
            ("Event", "VarSet"),
            ("ChanVariable", "A=1"),
            ("chanvariable", "B=2"),
            ("Value", "  spaced"),
        ]);
        assert_eq!(m.kind(), MessageKind::Event);
        assert_eq!(
            m.get_all("ChanVariable").collect::<Vec<_>>(),
            ["A=1", "B=2"]
        );
        assert_eq!(m.chan_variable("b"), Some("2"));
        assert_eq!(m.get("VALUE"), Some("  spaced"));
    }

    #[test]
    fn originate_response_chan_variable_names_the_channel() {
        let m = Message::from_pairs(&[
            ("Event", "OriginateResponse"),
            (
                "ChanVariable(SIP/trunk-00000000)",
                "DIALER_CALL_ID=call-0001",
            ),
        ]);
        assert_eq!(m.chan_variable("DIALER_CALL_ID"), Some("call-0001"));
        assert_eq!(m.chan_variable_with_prefix("Dest", "DIALER_CALL_ID"), None);
    }

    #[test]
    fn debug_redacts_secret() {
        let m = Message::from_pairs(&[("Action", "Login"), ("Secret", "hunter2")]);
        assert!(!format!("{m:?}").contains("hunter2"));
    }
}
