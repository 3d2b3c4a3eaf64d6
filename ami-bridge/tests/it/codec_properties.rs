//! Property tests: the decoder never panics, never holds more than its limit, and any message
//! written in wire form comes back identical however the bytes are cut.

use ami_bridge::{Decoder, Frame, Message};
use proptest::prelude::*;

const LIMIT: usize = 4096;

fn chunked(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = data;
    for &c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = (c % rest.len()).max(1);
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        out.push(rest.to_vec());
    }
    out
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9()/_-]{0,20}"
}

fn value() -> impl Strategy<Value = String> {
    // Anything but line breaks: spaces, colons, '=', NUL, non-ASCII.
    proptest::collection::vec(
        prop_oneof![
            any::<char>().prop_filter("no line breaks", |c| *c != '\r' && *c != '\n'),
            Just(':'),
            Just(' '),
            Just('\0'),
        ],
        0..40,
    )
    .prop_map(|cs| cs.into_iter().collect::<String>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..20_000),
        cuts in proptest::collection::vec(1usize..5000, 0..20),
    ) {
        let mut d = Decoder::new(true, LIMIT);
        for chunk in chunked(&data, &cuts) {
            d.extend(&chunk);
            while let Some(frame) = d.next_frame() {
                if let Ok(Frame::Message(m)) = frame {
                    prop_assert!(m.len() <= LIMIT);
                }
            }
            // What stays buffered is at most one message under the limit plus the last read.
            prop_assert!(d.buffered() <= LIMIT + chunk.len() + 1);
        }
    }

    #[test]
    fn garbage_mixed_with_messages_never_panics(
        parts in proptest::collection::vec(prop_oneof![
            Just(b"Event: Hangup\r\nCause: 16\r\n\r\n".to_vec()),
            Just(b"\r\n\r\n\n\n\r".to_vec()),
            Just(b"Response: Follows\r\n".to_vec()),
            Just(b"--END COMMAND--\r\n".to_vec()),
            Just(vec![0u8; 100]),
            Just(vec![b':'; 10]),
            proptest::collection::vec(any::<u8>(), 0..300),
        ], 0..60),
        cuts in proptest::collection::vec(1usize..700, 0..30),
    ) {
        let data: Vec<u8> = parts.concat();
        let mut d = Decoder::new(false, LIMIT);
        for chunk in chunked(&data, &cuts) {
            d.extend(&chunk);
            while d.next_frame().is_some() {}
        }
    }

    #[test]
    fn messages_round_trip_through_any_segmentation(
        msgs in proptest::collection::vec(
            (prop_oneof![Just("Event"), Just("Response")], "[A-Za-z]{1,12}",
             proptest::collection::vec((key(), value()), 0..12)),
            1..8),
        cuts in proptest::collection::vec(1usize..300, 0..40),
        lf_only in any::<bool>(),
    ) {
        let mut wire = b"Asterisk Call Manager/9.0.0\r\n".to_vec();
        let mut expected = Vec::new();
        for (kind, name, headers) in &msgs {
            let mut pairs = vec![(kind.to_string(), name.clone())];
            pairs.extend(headers.iter().cloned());
            let m = Message::from_pairs(&pairs);
            let mut bytes = Vec::new();
            m.write_to(&mut bytes);
            if lf_only {
                bytes = String::from_utf8(bytes).expect("utf8").replace("\r\n", "\n").into_bytes();
            }
            wire.extend_from_slice(&bytes);
            expected.push(pairs);
        }
        let mut d = Decoder::client();
        let mut got = Vec::new();
        for chunk in chunked(&wire, &cuts) {
            d.extend(&chunk);
            while let Some(frame) = d.next_frame() {
                match frame.expect("valid input decodes") {
                    Frame::Banner(b) => prop_assert_eq!(b, "Asterisk Call Manager/9.0.0"),
                    Frame::Message(m) => got.push(
                        m.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>(),
                    ),
                }
            }
        }
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn a_100_kb_event_arriving_in_small_pieces_parses() {
    let mut wire = b"Event: Big\r\n".to_vec();
    for i in 0..2000 {
        wire.extend_from_slice(format!("Variable: X{i}=").as_bytes());
        wire.extend_from_slice(&[b'v'; 40]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    assert!(wire.len() > 100_000);
    let mut d = Decoder::server();
    let mut got = None;
    for piece in wire.chunks(7) {
        d.extend(piece);
        if let Some(f) = d.next_frame() {
            got = Some(f.expect("under the default limit"));
        }
    }
    let Some(Frame::Message(m)) = got else {
        panic!("no message")
    };
    assert_eq!(m.get_all("Variable").count(), 2000);
}
