//! The AMI-to-contract table against every recording of a real Asterisk 20: each call's events,
//! fed in their recorded order, give the contract's events and disposition.

use std::path::PathBuf;

use ami_bridge::{Decoder, Event, Frame};
use dialer_core::domain::{Disposition, EventType};
use dispatcher::outcome::{AttemptTracker, Signal};

fn events_of(name: &str) -> Vec<Event> {
    let dir = std::env::var_os("AMI_TRANSCRIPTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ami-transcripts")
        });
    let bytes = std::fs::read(dir.join(format!("{name}.ami")))
        .unwrap_or_else(|e| panic!("{name}.ami: {e}"));
    let mut d = Decoder::client();
    d.extend(&bytes);
    std::iter::from_fn(|| d.next_frame())
        .filter_map(|f| match f.expect("decodes") {
            Frame::Message(m) => Event::from_message(m),
            Frame::Banner(_) => None,
        })
        .collect()
}

/// Signals of the single call in a recording.
fn signals(name: &str) -> Vec<Signal> {
    let mut t = AttemptTracker::new();
    let mut out: Vec<Signal> = events_of(name)
        .iter()
        .filter_map(|e| t.on_event(e))
        .collect();
    if !t.is_ended() {
        // A synchronous Originate never sends an OriginateResponse: the guard ends it.
        out.extend(t.finish_without_response());
    }
    out
}

fn ended(d: Disposition) -> impl Fn(&Signal) -> bool {
    move |s| matches!(s, Signal::Ended(o) if o.disposition == d)
}

#[test]
fn every_recorded_outcome_maps_to_the_contract() {
    use Disposition::*;
    use EventType::{CallBusy, CallCompleted, CallFailed, CallNoAnswer};
    // One row per recording: a table reads best unwrapped.
    #[rustfmt::skip]
    let table: &[(&str, bool, bool, Disposition, EventType)] = &[
        // recording, started, answered, disposition, terminal event
        ("answered", true, true, Answered, CallCompleted),
        ("answered_channelid", true, true, Answered, CallCompleted),
        ("answered_no_channelvars", true, true, Answered, CallCompleted),
        ("answered_remote_bye", true, true, Answered, CallCompleted),
        ("dtmf", true, true, Answered, CallCompleted),
        ("core_stop_midcall", true, true, Answered, CallCompleted),
        ("hangup_action", true, true, Answered, CallCompleted),
        ("coreshowchannels", true, true, Answered, CallCompleted),
        ("local_answered", true, true, Answered, CallCompleted),
        ("busy", true, false, Busy, CallBusy),
        ("busy_channelid", true, false, Busy, CallBusy),
        ("busy_no_channelvars", true, false, Busy, CallBusy),
        ("busy_sync", true, false, Busy, CallBusy),
        ("local_busy", true, false, Busy, CallBusy),
        ("decline", true, false, Rejected, CallFailed),
        ("no_answer", true, false, NoAnswer, CallNoAnswer),
        ("local_no_answer", true, false, NoAnswer, CallNoAnswer),
        ("congestion", true, false, Congestion, CallFailed),
        ("local_congestion", true, false, Congestion, CallFailed),
        ("not_found", true, false, InvalidNumber, CallFailed),
        ("originate_unreachable", false, false, Unreachable, CallFailed),
        ("originate_unknown_tech", false, false, Unreachable, CallFailed),
        ("amd_human", true, true, Answered, CallCompleted),
        ("amd_machine", true, true, Answered, CallCompleted),
        ("amd_silence", true, true, Answered, CallCompleted),
    ];
    for &(name, started, answered, disposition, terminal) in table {
        let s = signals(name);
        let mut want = Vec::new();
        if started {
            want.push("started");
        }
        if answered {
            want.push("answered");
        }
        // The flow's reports (after the answer; see `after_the_answer_is_reported`).
        if name.starts_with("amd_") {
            want.push("amd");
        }
        if name == "amd_human" || name == "dtmf" {
            want.push("input");
        }
        want.push("ended");
        let got: Vec<&str> = s
            .iter()
            .map(|x| match x {
                Signal::Started => "started",
                Signal::Answered => "answered",
                Signal::Amd { .. } => "amd",
                Signal::Input { .. } => "input",
                Signal::Ended(_) => "ended",
            })
            .collect();
        assert_eq!(got, want, "{name}");
        let Some(Signal::Ended(o)) = s.last() else {
            panic!("{name}: no end")
        };
        assert_eq!(o.disposition, disposition, "{name}");
        assert_eq!(o.event_type(), terminal, "{name}");
        if disposition == Unreachable {
            assert!(o.error_message.is_some(), "{name}: unreachable says why");
        }
    }
}

#[test]
fn order_of_originate_response_does_not_matter() {
    // Move the OriginateResponse to every position after the call's channels exist (where real
    // Asterisk was seen to put it, from run to run): same result.
    for name in [
        "answered",
        "busy",
        "congestion",
        "not_found",
        "local_busy",
        "no_answer",
        "amd_human",
        "amd_machine",
        "amd_silence",
    ] {
        let events = events_of(name);
        let pos = events
            .iter()
            .position(|e| matches!(e, Event::OriginateResponse(_)))
            .expect("has OriginateResponse");
        let want = signals(name);
        let mut rest = events.clone();
        let resp = rest.remove(pos);
        let after_channels = rest
            .iter()
            .rposition(|e| matches!(e, Event::Newchannel(_)))
            .expect("channel")
            + 1;
        for at in after_channels..=rest.len() {
            let mut reordered = rest.clone();
            reordered.insert(at, resp.clone());
            let mut t = AttemptTracker::new();
            let got: Vec<Signal> = reordered.iter().filter_map(|e| t.on_event(e)).collect();
            let end = |v: &[Signal]| v.iter().find(|s| matches!(s, Signal::Ended(_))).cloned();
            assert_eq!(
                end(&got),
                end(&want),
                "{name} with OriginateResponse at {at}"
            );
            assert_eq!(
                got.iter().filter(|s| **s == Signal::Answered).count(),
                want.iter().filter(|s| **s == Signal::Answered).count(),
                "{name} at {at}"
            );
        }
    }
}

#[test]
fn concurrent_calls_each_get_their_own_outcome() {
    // Group by Linkedid (what the dispatcher does with ChannelId = attempt id); the failed
    // OriginateResponse has no Uniqueid, so it joins the call whose channel is on its peer.
    let events = events_of("concurrent");
    let mut calls: Vec<(String, String, AttemptTracker, Vec<Signal>)> = Vec::new();
    for e in &events {
        let key = match e {
            Event::OriginateResponse(o) => match o.uniqueid() {
                Some(u) => u.to_string(),
                None => {
                    let peer = o.channel().and_then(|c| c.split('@').nth(1)).expect("peer");
                    calls
                        .iter()
                        .find(|c| {
                            c.1.rsplit_once('-').map(|(p, _)| p.ends_with(peer)) == Some(true)
                        })
                        .map(|c| c.0.clone())
                        .expect("call on that peer")
                }
            },
            other => match other
                .message()
                .get("Linkedid")
                .or(other.message().get("DestLinkedid"))
            {
                Some(l) => l.to_string(),
                None => continue,
            },
        };
        if !calls.iter().any(|c| c.0 == key) {
            let chan = e.message().get("Channel").unwrap_or("").to_string();
            calls.push((key.clone(), chan, AttemptTracker::new(), Vec::new()));
        }
        let call = calls.iter_mut().find(|c| c.0 == key).expect("call");
        if let Some(s) = call.2.on_event(e) {
            call.3.push(s);
        }
    }
    assert_eq!(calls.len(), 2);
    assert!(
        calls[0].3.iter().any(ended(Disposition::Answered))
            ^ calls[1].3.iter().any(ended(Disposition::Answered))
    );
    assert!(
        calls
            .iter()
            .any(|c| c.3.iter().any(ended(Disposition::Busy)))
    );
}

#[test]
fn after_the_answer_is_reported() {
    use dialer_core::domain::AnsweredBy::{Human, Machine};
    let reports = |name: &str| -> Vec<Signal> {
        signals(name)
            .into_iter()
            .filter(|s| matches!(s, Signal::Amd { .. } | Signal::Input { .. }))
            .collect()
    };
    let amd = |by, cause: &str| Signal::Amd {
        answered_by: by,
        cause: Some(cause.to_owned()),
    };
    assert_eq!(
        reports("amd_human"),
        [
            amd(Human, "HUMAN-800-800"),
            Signal::Input {
                digits: "1".to_owned()
            }
        ]
    );
    assert_eq!(
        reports("amd_machine"),
        [amd(Machine, "LONGGREETING-1500-1500")]
    );
    assert_eq!(
        reports("amd_silence"),
        [amd(Machine, "INITIALSILENCE-2500-2500")]
    );
    // SIP INFO keys, read by an older flow: the same report.
    assert_eq!(
        reports("dtmf"),
        [Signal::Input {
            digits: "42".to_owned()
        }]
    );
}

#[test]
fn the_flow_s_reports_count_only_once_and_only_after_the_answer() {
    let events = events_of("amd_human");
    let user_events: Vec<Event> = events
        .iter()
        .filter(|e| matches!(e, Event::UserEvent(_)))
        .cloned()
        .collect();
    assert_eq!(user_events.len(), 2, "DialerAMD and DialerDTMF");
    // Before the answer, a UserEvent is not believed.
    let mut t = AttemptTracker::new();
    for e in &user_events {
        assert_eq!(t.on_event(e), None);
    }
    // Replayed (a reconnect's duplicates): reported once.
    let mut t = AttemptTracker::new();
    let mut doubled = Vec::new();
    for e in &events {
        doubled.push(e.clone());
        if matches!(e, Event::UserEvent(_)) {
            doubled.push(e.clone());
        }
    }
    let got: Vec<Signal> = doubled.iter().filter_map(|e| t.on_event(e)).collect();
    let reports = got
        .iter()
        .filter(|s| matches!(s, Signal::Amd { .. } | Signal::Input { .. }))
        .count();
    assert_eq!(reports, 2);
}
