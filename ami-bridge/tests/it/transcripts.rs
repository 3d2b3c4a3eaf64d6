//! Every recorded Asterisk session parses into the messages its recorder listed, whatever the
//! TCP segmentation.

use ami_bridge::{Decoder, Event, Frame, Message, MessageKind, OriginateReason};

use crate::helpers;

fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Frame> {
    let mut d = Decoder::client();
    let mut frames = Vec::new();
    for chunk in chunks {
        d.extend(chunk);
        while let Some(f) = d.next_frame() {
            frames.push(f.expect("recorded bytes decode without error"));
        }
    }
    assert_eq!(d.buffered(), 0, "bytes left over");
    frames
}

/// The typed events of a recording, in order.
fn events_of(received: &[u8]) -> Vec<Event> {
    decode_chunks([received])
        .into_iter()
        .filter_map(|f| match f {
            Frame::Message(m) => Event::from_message(m),
            Frame::Banner(_) => None,
        })
        .collect()
}

fn label(m: &Message) -> String {
    match m.kind() {
        MessageKind::Response => format!("Response:{}", m.first_value().unwrap_or("")),
        _ => m.first_value().unwrap_or("").to_string(),
    }
}

/// Checks one message against a timeline entry written by the recorder, e.g.
/// `OriginateResponse Reason=5 Response=Failure [SIP/1002@trunk-busy <unknown>]` or
/// `Response: Success (ActionID login-1) - Authentication accepted`.
fn check_timeline_entry(name: &str, entry: &str, m: &Message) {
    if let Some(rest) = entry.strip_prefix("Response: ") {
        let (value, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        assert_eq!(m.first_value(), Some(value), "{name}: {entry}");
        if let Some(after) = rest.strip_prefix("(ActionID ") {
            let (id, msg) = after.split_once(')').expect("closing paren");
            assert_eq!(m.action_id(), Some(id), "{name}: {entry}");
            if let Some(text) = msg.strip_prefix(" - ") {
                assert_eq!(m.get("Message"), Some(text), "{name}: {entry}");
            }
        }
        return;
    }
    let (head, bracket) = match entry.split_once(" [") {
        Some((h, b)) => (h, Some(b.trim_end_matches(']'))),
        None => (entry, None),
    };
    let mut words = head.split(' ');
    assert_eq!(m.event_name(), words.next(), "{name}: {entry}");
    for kv in words {
        let (k, v) = kv.split_once('=').expect("k=v");
        assert_eq!(m.get(k), Some(v), "{name}: {entry}: header {k}");
    }
    if let Some(b) = bracket {
        let (chan, uid) = b.rsplit_once(' ').expect("channel uniqueid");
        let prefix = if m.get("DestChannel").is_some() {
            "Dest"
        } else {
            ""
        };
        assert_eq!(
            m.get(&format!("{prefix}Channel")),
            Some(chan),
            "{name}: {entry}"
        );
        assert_eq!(
            m.get(&format!("{prefix}Uniqueid")),
            Some(uid),
            "{name}: {entry}"
        );
    }
}

#[test]
fn every_transcript_parses_into_the_recorded_messages() {
    for t in helpers::all() {
        let frames = decode_chunks([t.received.as_slice()]);
        let Some(Frame::Banner(banner)) = frames.first() else {
            panic!("{}: no banner", t.name)
        };
        assert_eq!(banner, "Asterisk Call Manager/9.0.0", "{}", t.name);
        let messages: Vec<&Message> = frames[1..]
            .iter()
            .map(|f| match f {
                Frame::Message(m) => m,
                Frame::Banner(b) => panic!("{}: second banner {b}", t.name),
            })
            .collect();
        let labels: Vec<String> = messages.iter().map(|m| label(m)).collect();
        assert_eq!(labels, t.sequence(), "{}", t.name);

        let timeline = t.timeline();
        assert!(timeline[0].starts_with("banner: "), "{}", t.name);
        assert_eq!(timeline.len() - 1, messages.len(), "{}", t.name);
        for (entry, m) in timeline[1..].iter().zip(&messages) {
            check_timeline_entry(&t.name, entry, m);
        }

        // Re-encoding each message gives back the recorded bytes exactly.
        let mut again = format!("{banner}\r\n").into_bytes();
        for m in &messages {
            m.write_to(&mut again);
        }
        assert!(again == t.received, "{}: re-encoded bytes differ", t.name);
    }
}

#[test]
fn every_split_point_gives_the_same_messages() {
    for t in helpers::all() {
        let whole = decode_chunks([t.received.as_slice()]);
        // One byte at a time: every boundary at once.
        let bytes = decode_chunks(t.received.chunks(1));
        assert_eq!(bytes, whole, "{}: byte by byte", t.name);
        // Every two-piece split.
        for k in 1..t.received.len() {
            let (a, b) = t.received.split_at(k);
            let split = decode_chunks([a, b]);
            assert!(split == whole, "{}: split at byte {k}", t.name);
        }
    }
}

fn headers_of(frames: Vec<Frame>) -> Vec<Vec<(String, String)>> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Message(m) => Some(
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            Frame::Banner(_) => None,
        })
        .collect()
}

#[test]
fn lf_only_line_ends_parse_the_same() {
    for t in helpers::all() {
        let lf: Vec<u8> = String::from_utf8_lossy(&t.received)
            .replace("\r\n", "\n")
            .into_bytes();
        assert_eq!(
            headers_of(decode_chunks([lf.as_slice()])),
            headers_of(decode_chunks([t.received.as_slice()])),
            "{}",
            t.name
        );
    }
}

#[test]
fn typed_events_of_the_outcomes() {
    struct Want {
        name: &'static str,
        reason: OriginateReason,
        success: bool,
        hangup_causes: &'static [u16],
        dial_end: Option<&'static str>,
    }
    let wants = [
        Want {
            name: "answered",
            reason: OriginateReason::Answered,
            success: true,
            hangup_causes: &[16],
            dial_end: Some("ANSWER"),
        },
        Want {
            name: "busy",
            reason: OriginateReason::Busy,
            success: false,
            hangup_causes: &[17],
            dial_end: Some("BUSY"),
        },
        Want {
            name: "decline",
            reason: OriginateReason::Busy,
            success: false,
            hangup_causes: &[21],
            dial_end: Some("BUSY"),
        },
        Want {
            name: "no_answer",
            reason: OriginateReason::RingTimeout,
            success: false,
            hangup_causes: &[19],
            dial_end: None,
        },
        Want {
            name: "congestion",
            reason: OriginateReason::Congestion,
            success: false,
            hangup_causes: &[34],
            dial_end: Some("CONGESTION"),
        },
        Want {
            name: "not_found",
            reason: OriginateReason::Failed,
            success: false,
            hangup_causes: &[1],
            dial_end: Some("NOANSWER"),
        },
        Want {
            name: "originate_unreachable",
            reason: OriginateReason::Failed,
            success: false,
            hangup_causes: &[],
            dial_end: None,
        },
        Want {
            name: "originate_unknown_tech",
            reason: OriginateReason::Failed,
            success: false,
            hangup_causes: &[],
            dial_end: None,
        },
        Want {
            name: "local_busy",
            reason: OriginateReason::Busy,
            success: false,
            hangup_causes: &[0, 17],
            dial_end: Some("BUSY"),
        },
        Want {
            name: "local_answered",
            reason: OriginateReason::Answered,
            success: true,
            hangup_causes: &[16, 16],
            dial_end: Some("ANSWER"),
        },
    ];
    for w in wants {
        let t = helpers::load(w.name);
        let events = events_of(&t.received);
        let responses: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::OriginateResponse(o) => Some(o),
                _ => None,
            })
            .collect();
        assert_eq!(responses.len(), 1, "{}", w.name);
        assert_eq!(responses[0].reason, Some(w.reason), "{}", w.name);
        assert_eq!(responses[0].success, w.success, "{}", w.name);
        assert_eq!(
            responses[0].action_id(),
            Some(format!("{}-orig-1", w.name).as_str())
        );
        if !w.success {
            assert_eq!(responses[0].uniqueid(), None, "{}", w.name);
        }
        let causes: Vec<u16> = events
            .iter()
            .filter_map(|e| match e {
                Event::Hangup(h) => h.cause,
                _ => None,
            })
            .collect();
        assert_eq!(causes, w.hangup_causes, "{}", w.name);
        let dial_end: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::DialEnd(d) => d.message().get("DialStatus"),
                _ => None,
            })
            .collect();
        assert_eq!(dial_end.first().copied(), w.dial_end, "{}", w.name);
        // Every channel event after the variable is set names the call.
        if w.name == "answered" {
            let hangup = events.iter().find(|e| matches!(e, Event::Hangup(_)));
            assert_eq!(
                hangup.and_then(|e| e.chan_variable("DIALER_CALL_ID")),
                Some("call-0001")
            );
            let dial = events.iter().find(|e| matches!(e, Event::DialBegin(_)));
            assert_eq!(
                dial.and_then(|e| e.chan_variable("DIALER_CALL_ID")),
                Some("call-0001")
            );
            assert_eq!(
                responses[0].message().chan_variable("DIALER_CALL_ID"),
                Some("call-0001")
            );
        }
    }
}

#[test]
fn channel_id_becomes_the_uniqueid_even_on_failure() {
    let t = helpers::load("busy_channelid");
    let sent = String::from_utf8_lossy(&t.sent).to_string();
    let id = sent
        .lines()
        .find_map(|l| l.strip_prefix("ChannelId: "))
        .expect("ChannelId sent")
        .trim()
        .to_string();
    let events = events_of(&t.received);
    let channel_events: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e, Event::Other(_) | Event::FullyBooted(_)))
        .collect();
    assert!(channel_events.len() > 5);
    for e in channel_events {
        assert_eq!(e.uniqueid(), Some(id.as_str()), "{}", e.name());
    }
}
