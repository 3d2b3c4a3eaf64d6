//! Event volume per call as the recordings have it (`read = all`, no filter), the counts of
//! events and bytes in the simulator's stats, and manager.conf `eventfilter` lines.

use std::time::Duration;

use ami_bridge::{Message, MessageKind};
use ami_sim::SimConfig;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(10);

/// Events that belong to the session or to other peers, not to the call.
const NOT_THE_CALL: &[&str] = &["FullyBooted", "SuccessfulAuth", "PeerStatus"];

/// The call's events and their bytes on the wire.
fn call_volume(messages: &[Message]) -> (usize, usize) {
    let mut events = 0;
    let mut bytes = 0;
    for m in messages {
        if m.kind() != MessageKind::Event || NOT_THE_CALL.contains(&m.event_name().unwrap_or("")) {
            continue;
        }
        let mut wire = Vec::new();
        m.write_to(&mut wire);
        events += 1;
        bytes += wire.len();
    }
    (events, bytes)
}

/// Names of the call's events, in order.
fn call_events(messages: &[Message]) -> Vec<String> {
    labels(messages)
        .into_iter()
        .filter(|l| !l.starts_with("Response:") && !NOT_THE_CALL.contains(&l.as_str()))
        .collect()
}

/// Replays the recording's Originate against a simulator with `cfg`; the messages after it
/// up to the call's `Hangup` (inclusive), and the stats.
async fn one_call(name: &str, cfg: SimConfig) -> (Vec<Message>, ami_sim::StatsSnapshot) {
    let sim = start(cfg).await;
    // Not `Conn::login`: a filter may keep SuccessfulAuth from the session.
    let mut c = Conn::connect(sim.addr()).await;
    c.send_pairs(&[
        ("Action", "Login"),
        ("Username", "dialer"),
        ("Secret", SECRET),
    ])
    .await;
    let accepted = c
        .wait_for(WAIT, |m| {
            m.get("Message") == Some("Authentication accepted")
        })
        .await;
    assert!(accepted.is_some(), "login: {:?}", labels(&c.got));
    c.read_some(Duration::from_millis(100)).await;
    c.got.clear();
    sim.reset_stats();
    let originate = sent_actions(name)
        .into_iter()
        .find(|a| a.get("Action") == Some("Originate"))
        .expect("the recording sends an Originate");
    c.send(&originate).await;
    // The last event of the call: its Hangup and its OriginateResponse, in either order.
    let ended = |c: &Conn| {
        let has = |e: &str| c.got.iter().any(|m| m.event_name() == Some(e));
        has("Hangup") && has("OriginateResponse")
    };
    let until = tokio::time::Instant::now() + WAIT;
    while !ended(&c) && tokio::time::Instant::now() < until {
        c.read_some(Duration::from_millis(200)).await;
    }
    // Nothing else comes afterwards.
    c.read_some(Duration::from_millis(300)).await;
    let stats = sim.stats();
    sim.shutdown().await;
    (c.got, stats)
}

fn within(got: usize, want: usize, tolerance: f64) -> bool {
    (got as f64 - want as f64).abs() <= want as f64 * tolerance
}

/// About 20 events and 10 KB per answered call, 12 events and 5 KB per busy one, as
/// recorded; the stats count exactly what a session received.
#[tokio::test]
async fn events_and_bytes_per_call_as_recorded() {
    for name in ["answered", "busy", "answered_no_channelvars"] {
        let (_, recorded) = recorded(name);
        let (rec_events, rec_bytes) = call_volume(&recorded);
        let cfg = if name.ends_with("no_channelvars") {
            SimConfig {
                channelvars: Vec::new(),
                ..replay_config()
            }
        } else {
            replay_config()
        };
        let (got, stats) = one_call(name, cfg).await;
        let (events, bytes) = call_volume(&got);
        assert!(
            within(events, rec_events, 0.15) && within(bytes, rec_bytes, 0.15),
            "{name}: simulator {events} events / {bytes} bytes, recording {rec_events} / {rec_bytes}: {:?}",
            labels(&got)
        );
        assert_eq!(stats.events_emitted, events as u64, "{name}");
        assert_eq!(stats.event_bytes_emitted, bytes as u64, "{name}");
        assert_eq!(stats.events_filtered, 0);
        assert_eq!(stats.setup_latency.count, 1, "{name}: one channel made");
        assert!(stats.setup_latency.max_us < 1_000_000, "{name}: {stats:?}");
    }
}

/// The recommended filter (docs/asterisk.md) lets through only what the dispatcher reads.
#[tokio::test]
async fn the_recommended_eventfilter_sends_only_the_dispatchers_events() {
    let filter: Vec<String> = [
        "Event: Newchannel",
        "Event: Newstate",
        "Event: DialEnd",
        "Event: Hangup",
        "Event: OriginateResponse",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (_, recorded_answered) = recorded("answered");
    let (rec_events, rec_bytes) = call_volume(&recorded_answered);
    let (got, stats) = one_call(
        "answered",
        SimConfig {
            eventfilter: filter.clone(),
            ..replay_config()
        },
    )
    .await;
    let events = call_events(&got);
    assert_eq!(
        events,
        [
            "Newchannel",
            "Newstate",
            "Newstate",
            "DialEnd",
            "OriginateResponse",
            "Hangup"
        ],
        "{:?}",
        labels(&got)
    );
    assert!(
        got.iter()
            .any(|m| m.get("Message") == Some("Originate successfully queued")),
        "responses are not filtered"
    );
    let (n, bytes) = call_volume(&got);
    assert_eq!(
        (stats.events_emitted, stats.event_bytes_emitted),
        (n as u64, bytes as u64)
    );
    assert_eq!(stats.events_filtered as usize + n, rec_events);
    assert!(bytes * 3 < rec_bytes, "{bytes} bytes of {rec_bytes}");

    // Not found: no answer, so one Newstate; "Event: Hangup" is a regex, HangupRequest would pass.
    let (got, _) = one_call(
        "not_found",
        SimConfig {
            eventfilter: filter,
            ..replay_config()
        },
    )
    .await;
    let events = call_events(&got);
    assert_eq!(
        events,
        [
            "Newchannel",
            "Newstate",
            "HangupRequest",
            "DialEnd",
            "Hangup",
            "OriginateResponse"
        ]
    );
}

/// `!` lines exclude; combined with include lines an event must match one and no `!` line.
#[tokio::test]
async fn exclude_lines_keep_everything_else() {
    let (got, stats) = one_call(
        "answered",
        SimConfig {
            eventfilter: vec!["!Event: VarSet".into(), "!Event: Newexten".into()],
            ..replay_config()
        },
    )
    .await;
    let events = call_events(&got);
    assert!(
        !events.iter().any(|e| e == "VarSet" || e == "Newexten"),
        "{events:?}"
    );
    assert!(events.len() >= 9, "{events:?}");
    // 2 + 6 VarSets and 4 Newextens of an answered call held back.
    assert_eq!(stats.events_filtered, 12, "{events:?}");
    let (got, _) = one_call(
        "answered",
        SimConfig {
            eventfilter: vec!["Privilege: call".into(), "!Event: Dial".into()],
            ..replay_config()
        },
    )
    .await;
    let events = call_events(&got);
    assert!(events.contains(&"Newchannel".to_string()), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("Dial") || e == "VarSet" || e == "Newexten"),
        "{events:?}"
    );
}

/// `read = call` (docs/asterisk.md): only events of class `call`; no FullyBooted or
/// SuccessfulAuth at login (classes system and security), no VarSet or Newexten (dialplan).
#[tokio::test]
async fn read_call_sends_only_call_class_events() {
    let sim = start(SimConfig {
        read: "call".into(),
        ..replay_config()
    })
    .await;
    let mut c = Conn::connect(sim.addr()).await;
    c.send_pairs(&[
        ("Action", "Login"),
        ("Username", "dialer"),
        ("Secret", SECRET),
    ])
    .await;
    c.read_some(WAIT).await;
    c.read_some(Duration::from_millis(300)).await;
    assert_eq!(labels(&c.got), ["Response:Success"]);
    sim.shutdown().await;

    let (got, _) = one_call(
        "answered",
        SimConfig {
            read: "call".into(),
            ..replay_config()
        },
    )
    .await;
    assert_eq!(
        call_events(&got),
        [
            "Newchannel",
            "NewCallerid",
            "NewConnectedLine",
            "DialBegin",
            "Newstate",
            "DialState",
            "Newstate",
            "DialEnd",
            "OriginateResponse",
            "SoftHangupRequest",
            "Hangup"
        ]
    );
}
