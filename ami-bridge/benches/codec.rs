//! Codec throughput on one core: the recorded Asterisk sessions' events, repeated into a
//! stream of about 100 MB, fed in 64 KB reads (as a socket delivers them), decoded and typed.
//!
//! `cargo bench -p ami-bridge --bench codec` prints events/s and MB/s.

use std::path::PathBuf;
use std::time::Instant;

use ami_bridge::{Decoder, Event, Frame};

fn main() {
    let dir = std::env::var_os("AMI_TRANSCRIPTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ami-transcripts")
        });
    // The call events of real sessions, without their banners.
    let mut one_round = Vec::new();
    let mut events_per_round = 0usize;
    for name in [
        "answered",
        "busy",
        "no_answer",
        "local_answered",
        "concurrent",
        "dtmf",
    ] {
        let bytes = match std::fs::read(dir.join(format!("{name}.ami"))) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot read {name}.ami in {}: {e}", dir.display());
                std::process::exit(1);
            }
        };
        let start = bytes
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(0, |p| p + 2);
        one_round.extend_from_slice(&bytes[start..]);
        events_per_round += bytes[start..]
            .windows(4)
            .filter(|w| w == b"\r\n\r\n")
            .count();
    }
    let rounds = (100 << 20) / one_round.len();
    let stream: Vec<u8> = one_round.repeat(rounds);
    let expected = events_per_round * rounds;

    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut d = Decoder::server();
        let mut n = 0usize;
        let mut typed = 0usize;
        for chunk in stream.chunks(64 * 1024) {
            d.extend(chunk);
            while let Some(f) = d.next_frame() {
                if let Ok(Frame::Message(m)) = f {
                    n += 1;
                    if let Some(e) = Event::from_message(m)
                        && !matches!(e, Event::Other(_))
                    {
                        typed += 1;
                    }
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(n, expected, "every message decoded");
        std::hint::black_box(typed);
        best = best.min(secs);
    }
    println!(
        "codec: {} messages ({:.1} MB, avg {} bytes) decoded and typed in {:.3} s on one core",
        expected,
        stream.len() as f64 / 1e6,
        stream.len() / expected,
        best
    );
    println!(
        "codec: {:.2} million events/s, {:.0} MB/s (best of 5)",
        expected as f64 / best / 1e6,
        stream.len() as f64 / best / 1e6
    );
}
