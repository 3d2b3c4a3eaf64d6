//! Incremental AMI framing: bytes in, banner and messages out.
//!
//! A message is `Key: Value` lines ended by an empty line. Line ends may be CRLF or a bare LF.
//! The decoder keeps its scan position across partial reads (a 100 KB event arriving in 1-byte
//! pieces is scanned once), never panics on any input, and never holds more than
//! `max_message_bytes` of one message: a longer one is skipped up to its end and reported once.

use bytes::{Buf, BytesMut};
use thiserror::Error;

use crate::message::Message;

/// Default cap on one message. Real events are under 2 KB; `Command` output can be large.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The end of an old-style `Response: Follows` body.
const END_COMMAND: &[u8] = b"--END COMMAND--";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The first line of a session: `Asterisk Call Manager/9.0.0`.
    Banner(String),
    Message(Message),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("AMI message over {limit} bytes skipped")]
    MessageTooLarge { limit: usize },
}

#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    /// Start of the line not yet terminated (everything before it is split into `lines`).
    scan: usize,
    /// Line spans `(start, end)` of the current message, line terminators excluded.
    lines: Vec<(u32, u32)>,
    expect_banner: bool,
    /// Skipping the rest of an oversized message.
    discarding: bool,
    /// Inside a `Response: Follows` body: blank lines belong to it until `--END COMMAND--`.
    follows: Follows,
    /// Only Asterisk sends `Follows` bodies; on the server side such a line is just a header,
    /// or a client could make the server swallow its later actions.
    follows_bodies: bool,
    max_message_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follows {
    No,
    Body,
    Ended,
}

impl Decoder {
    /// A decoder for the client side: the first line is the banner.
    pub fn client() -> Decoder {
        Decoder::new(true, DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// A decoder for the server side (reads actions; no banner).
    pub fn server() -> Decoder {
        Decoder::new(false, DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// `expect_banner` is the client side: it reads a banner first and old `Follows` bodies.
    pub fn new(expect_banner: bool, max_message_bytes: usize) -> Decoder {
        Decoder {
            buf: BytesMut::with_capacity(16 * 1024),
            scan: 0,
            lines: Vec::with_capacity(32),
            expect_banner,
            discarding: false,
            follows: Follows::No,
            follows_bodies: expect_banner,
            max_message_bytes: max_message_bytes.max(64),
        }
    }

    /// The buffer to read into (`AsyncReadExt::read_buf`).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held for a message not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        loop {
            let Some(nl) = memchr::memchr(b'\n', &self.buf[self.scan..]) else {
                return self.check_unterminated();
            };
            let line_start = self.scan;
            let line_end = self.scan + nl;
            self.scan = line_end + 1;
            let content_end = if line_end > line_start && self.buf[line_end - 1] == b'\r' {
                line_end - 1
            } else {
                line_end
            };

            if self.discarding {
                // Drop each line as it is seen so the skipped message never accumulates.
                let empty = content_end == line_start;
                self.consume();
                if empty {
                    self.discarding = false;
                }
                continue;
            }

            if self.expect_banner {
                self.expect_banner = false;
                let banner = String::from_utf8_lossy(&self.buf[line_start..content_end]);
                let banner = banner.trim().to_string();
                self.consume();
                return Some(Ok(Frame::Banner(banner)));
            }

            let line = &self.buf[line_start..content_end];
            if line.is_empty() && self.follows != Follows::Body {
                if self.lines.is_empty() {
                    // Stray blank line between messages.
                    self.consume();
                    continue;
                }
                return Some(Ok(Frame::Message(self.take_message(line_start))));
            }
            if self.follows == Follows::Body && line == END_COMMAND {
                self.follows = Follows::Ended;
            }
            if self.follows_bodies && self.lines.is_empty() && is_response_follows(line) {
                self.follows = Follows::Body;
            }
            self.lines.push((line_start as u32, content_end as u32));

            if self.scan > self.max_message_bytes {
                return Some(Err(self.start_discarding()));
            }
        }
    }

    /// No line end in the buffer: bound what an endless line may hold.
    fn check_unterminated(&mut self) -> Option<Result<Frame, DecodeError>> {
        if self.buf.len() <= self.max_message_bytes {
            return None;
        }
        if self.discarding {
            self.buf.clear();
            self.scan = 0;
            return None;
        }
        let err = self.start_discarding();
        self.buf.clear();
        self.scan = 0;
        Some(Err(err))
    }

    fn start_discarding(&mut self) -> DecodeError {
        self.discarding = true;
        self.follows = Follows::No;
        self.consume();
        DecodeError::MessageTooLarge {
            limit: self.max_message_bytes,
        }
    }

    /// Drops everything scanned so far and starts a new message.
    fn consume(&mut self) {
        self.buf.advance(self.scan);
        self.scan = 0;
        self.lines.clear();
    }

    fn take_message(&mut self, end: usize) -> Message {
        let raw = &self.buf[..end];
        let message = match std::str::from_utf8(raw) {
            Ok(text) => Message::from_text(text.into(), &self.lines),
            // Invalid UTF-8 must not kill the connection: replace it, then split again since
            // the replacement shifts every offset after it.
            Err(_) => {
                let text = String::from_utf8_lossy(raw).into_owned();
                let lines = split_lines(&text);
                Message::from_text(text.into_boxed_str(), &lines)
            }
        };
        self.follows = Follows::No;
        self.consume();
        message
    }
}

fn is_response_follows(line: &[u8]) -> bool {
    line.len() == "Response: Follows".len() && line.eq_ignore_ascii_case(b"Response: Follows")
}

fn split_lines(text: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0usize;
    while let Some(nl) = memchr::memchr(b'\n', &bytes[start..]) {
        let end = start + nl;
        let content_end = if end > start && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        out.push((start as u32, content_end as u32));
        start = end + 1;
    }
    if start < bytes.len() {
        out.push((start as u32, bytes.len() as u32));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageKind;

    fn all(dec: &mut Decoder) -> Vec<Result<Frame, DecodeError>> {
        std::iter::from_fn(|| dec.next_frame()).collect()
    }

    #[test]
    fn banner_then_messages_in_one_read() {
        let mut d = Decoder::client();
        d.extend(b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: a\r\nMessage: ok\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n");
        let frames = all(&mut d);
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[0],
            Ok(Frame::Banner("Asterisk Call Manager/9.0.0".into()))
        );
        let Ok(Frame::Message(m)) = &frames[1] else {
            panic!("not a message: {:?}", frames[1])
        };
        assert_eq!(m.kind(), MessageKind::Response);
        assert_eq!(m.action_id(), Some("a"));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn lf_only_line_ends() {
        let mut d = Decoder::server();
        d.extend(b"Action: Ping\nActionID: 1\n\n");
        let Some(Ok(Frame::Message(m))) = d.next_frame() else {
            panic!("no message")
        };
        assert_eq!(m.get("ActionID"), Some("1"));
    }

    #[test]
    fn response_follows_body_keeps_blank_lines_and_colons() {
        let mut d = Decoder::client();
        d.extend(b"Asterisk Call Manager/1.1\r\nResponse: Follows\r\nPrivilege: Command\r\nActionID: c1\r\nline one\r\n\r\nName: value\r\n--END COMMAND--\r\n\r\nEvent: X\r\n\r\n");
        let frames = all(&mut d);
        let Ok(Frame::Message(m)) = &frames[1] else {
            panic!("{frames:?}")
        };
        assert_eq!(m.action_id(), Some("c1"));
        let body: Vec<_> = m.body_lines().collect();
        assert_eq!(body, ["line one", "", "--END COMMAND--"]);
        assert_eq!(m.get("Name"), Some("value"));
        assert!(matches!(&frames[2], Ok(Frame::Message(e)) if e.event_name() == Some("X")));
    }

    #[test]
    fn server_side_does_not_read_follows_bodies() {
        let mut d = Decoder::server();
        d.extend(b"Response: Follows\r\n\r\nAction: Ping\r\nActionID: 2\r\n\r\n");
        let frames = all(&mut d);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(matches!(&frames[1], Ok(Frame::Message(m)) if m.get("ActionID") == Some("2")));
    }

    #[test]
    fn oversized_message_is_skipped_once_and_decoding_resumes() {
        let mut d = Decoder::new(false, 128);
        d.extend(b"Event: Big\r\n");
        for _ in 0..100 {
            d.extend(b"Filler: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
        }
        d.extend(b"\r\nEvent: Small\r\n\r\n");
        let frames = all(&mut d);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(frames[0].is_err());
        assert!(matches!(&frames[1], Ok(Frame::Message(m)) if m.event_name() == Some("Small")));
    }

    #[test]
    fn endless_line_is_bounded() {
        let mut d = Decoder::new(false, 1024);
        let mut errors = 0;
        for _ in 0..1000 {
            d.extend(&[b'x'; 100]);
            while let Some(r) = d.next_frame() {
                assert!(r.is_err());
                errors += 1;
            }
            assert!(d.buffered() <= 1024 + 100);
        }
        assert_eq!(errors, 1);
        // The oversized message ends at the next blank line; the next message follows it.
        d.extend(b"\r\n\r\nEvent: After\r\n\r\n");
        assert!(
            matches!(d.next_frame(), Some(Ok(Frame::Message(m))) if m.event_name() == Some("After"))
        );
    }

    #[test]
    fn invalid_utf8_and_nul_survive() {
        let mut d = Decoder::server();
        d.extend(b"Event: Odd\r\nName: a\xffb\0c\r\nNext: ok\r\n\r\n");
        let Some(Ok(Frame::Message(m))) = d.next_frame() else {
            panic!()
        };
        assert_eq!(m.get("Name"), Some("a\u{fffd}b\0c"));
        assert_eq!(m.get("Next"), Some("ok"));
    }
}
