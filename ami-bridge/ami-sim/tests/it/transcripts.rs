//! Each recording's own actions, replayed against the simulator, give the recorded stream:
//! the same messages in the same order, the same header names in the same order, and the same
//! relations between ids (times and generated ids aside).

use std::time::Duration;

use ami_bridge::Message;
use ami_sim::{AnsweredBy, OutcomeKind, Rule, SimConfig, Simulator};

use crate::helpers::{self, *};

/// How a recording's OriginateResponse position is judged.
#[derive(Clone, Copy, PartialEq)]
enum OrrPlace {
    /// Where the recording has it (the run the simulator's order was taken from).
    Exact,
    /// Real Asterisk placed it differently in this run; compare the rest and the ORR alone.
    Anywhere,
}

struct Replay {
    name: &'static str,
    orr: OrrPlace,
    channelvars: bool,
    /// Shorter Originate `Timeout` for no-answer scenarios (the recordings wait 8 s).
    timeout_ms: Option<u64>,
    /// `Variable:` headers added to the Originate: the flow variables that make the shipped
    /// flow do what the recording's own dialplan did (the "after the answer" recordings).
    flow_vars: &'static [&'static str],
    /// Headers whose values are not compared (the modelled dialplan numbers its lines
    /// differently from the recording's).
    scrub: &'static [&'static str],
}

/// The recording's own dialplan (transcripts README, "After the answer"): MixMonitor, AMD,
/// UserEvent; on MACHINE hang up, else Read(DIGITS,,1,,,4) and UserEvent.
const RECORDED_FLOW: &[&str] = &[
    "DIALER_RECORD_URL=http://127.0.0.1:9/recording.wav",
    "DIALER_AMD=hangup_machine",
    "DIALER_GATHER_MAX=1",
    "DIALER_GATHER_TIMEOUT=4",
];

/// The replay configuration with the callees of the "after the answer" recordings: 1011 a
/// person who presses 1, 1012 an answering machine, 1013 dead air; nobody hangs up on the flow
/// (no talk time), and AMD takes the recorded times (the defaults). The recorded DTMFEnd says
/// `DurationMs: 0`.
fn flow_replay_config() -> SimConfig {
    use AnsweredBy::*;
    let callee = |n: &str, by| {
        Rule {
            talk_ms: None,
            ..Rule::timed(n, OutcomeKind::Answered, 100, 0)
        }
        .with_answered_by(by)
    };
    let mut cfg = replay_config();
    cfg.rules.splice(
        0..0,
        [
            callee("1011", Human).with_keys("1", 300),
            callee("1012", Machine),
            callee("1013", Silence),
        ],
    );
    cfg.dtmf_ms = 0;
    cfg
}

/// An Originate with the flow's variables added; other actions as they are.
fn with_flow_vars(m: &Message, vars: &[&str]) -> Message {
    if m.get("Action") != Some("Originate") || vars.is_empty() {
        return m.clone();
    }
    let mut pairs: Vec<(String, String)> = m
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let at = pairs
        .iter()
        .rposition(|(k, _)| k == "Variable")
        .map_or(pairs.len(), |i| i + 1);
    for (i, v) in vars.iter().enumerate() {
        pairs.insert(at + i, ("Variable".into(), v.to_string()));
    }
    Message::from_pairs(&pairs)
}

/// The messages with the values of `keys` blanked.
fn scrubbed(ms: &[Message], keys: &[&str]) -> Vec<Message> {
    ms.iter()
        .map(|m| {
            let pairs: Vec<(String, String)> = m
                .iter()
                .map(|(k, v)| {
                    let v = if keys.contains(&k) { "" } else { v };
                    (k.to_string(), v.to_string())
                })
                .collect();
            Message::from_pairs(&pairs)
        })
        .collect()
}

async fn replay(r: Replay) {
    let (banner, recorded) = recorded(r.name);
    let recorded = without_unrelated(recorded);
    let actions = sent_actions(r.name);
    let before = messages_before_actions(r.name);
    assert_eq!(
        actions.len(),
        before.len(),
        "{}: timeline has every action",
        r.name
    );

    let mut cfg = if r.flow_vars.is_empty() {
        replay_config()
    } else {
        flow_replay_config()
    };
    if !r.channelvars {
        cfg.channelvars.clear();
    }
    let sim = start(cfg).await;
    let mut c = Conn::connect(sim.addr()).await;
    // Messages the recording did not have: a VarSet per added variable, once originated.
    let mut extra = 0;
    for (action, need) in actions.iter().zip(&before) {
        // Send each action when as many messages have come as had in the recording.
        c.wait_count(*need + extra, Duration::from_secs(15)).await;
        let map = channel_map(&recorded, &c.got);
        let action = rewrite_action(action, &map, r.timeout_ms);
        if action.get("Action") == Some("Originate") {
            extra += r.flow_vars.len();
        }
        c.send(&with_flow_vars(&action, r.flow_vars)).await;
    }
    assert!(
        c.wait_closed(Duration::from_secs(15)).await,
        "{}: the simulator closes after Logoff; got {:?}",
        r.name,
        labels(&c.got)
    );
    assert_eq!(c.banner.as_deref(), Some(banner.as_str()));

    let recorded = scrubbed(&recorded, r.scrub);
    // The added variables each have their VarSet at the start, as every Originate variable
    // does; the recording's Originate did not carry them.
    let added: Vec<&str> = r
        .flow_vars
        .iter()
        .filter_map(|v| v.split_once('=').map(|(k, _)| k))
        .collect();
    let got: Vec<Message> = c
        .got
        .iter()
        .filter(|m| {
            !(m.event_name() == Some("VarSet")
                && m.get("Variable").is_some_and(|v| added.contains(&v)))
        })
        .cloned()
        .collect();
    let got = scrubbed(&got, r.scrub);
    let (exp_rest, exp_orr) = split_orr(&recorded);
    let (got_rest, got_orr) = split_orr(&got);
    assert_same_stream(r.name, &exp_rest, &got_rest);
    // OriginateResponses by themselves: same headers, values and relations to the channel
    // ids seen before them (so canonicalise them in stream order).
    assert_eq!(
        exp_orr.len(),
        got_orr.len(),
        "{}: OriginateResponse count",
        r.name
    );
    match r.orr {
        OrrPlace::Exact => assert_same_stream(r.name, &recorded, &got),
        OrrPlace::Anywhere => {
            let mut ce = Canon::default();
            let mut cg = Canon::default();
            for m in &recorded {
                ce.message(m);
            }
            for m in &got {
                cg.message(m);
            }
            for (e, g) in exp_orr.iter().zip(&got_orr) {
                assert_eq!(
                    ce.message(e),
                    cg.message(g),
                    "{}: OriginateResponse",
                    r.name
                );
            }
        }
    }
    sim.shutdown().await;
}

/// One test per recording, named as the recording, grouped by how they are run:
/// `OriginateResponse place, channelvars, shorter ring timeout => recordings`.
macro_rules! replay_tests {
    ($($orr:expr, $vars:expr, $timeout:expr => $($name:ident),+;)*) => {$($(
        #[tokio::test]
        async fn $name() {
            replay(Replay {
                name: stringify!($name),
                orr: $orr,
                channelvars: $vars,
                timeout_ms: $timeout,
                flow_vars: &[],
                scrub: &[],
            })
            .await;
        }
    )+)*};
}

use OrrPlace::{Anywhere, Exact};

replay_tests! {
    Exact, true, None =>
        answered, answered_channelid, answered_remote_bye, busy, busy_sync, congestion, decline,
        not_found, originate_unknown_tech, originate_unreachable, coreshowchannels, command, ping,
        local_answered, local_busy, local_congestion;
    Exact, true, Some(1000) => no_answer, local_no_answer;
    Anywhere, true, None => busy_channelid, hangup_action;
    Anywhere, false, None => answered_no_channelvars, busy_no_channelvars;
}

/// amd_human: the flow with a person who presses 1, in the recorded order throughout.
#[tokio::test]
async fn amd_human() {
    replay(Replay {
        name: "amd_human",
        orr: Exact,
        channelvars: true,
        timeout_ms: None,
        flow_vars: RECORDED_FLOW,
        scrub: &[],
    })
    .await;
}

/// amd_machine and amd_silence: MACHINE, hung up on. Real Asterisk put OriginateResponse
/// before MixMonitor's events in these runs; the recorded dialplan's `Hangup` of the machine
/// is a later line (priority 9) than the modelled one.
#[tokio::test]
async fn amd_machine() {
    replay(Replay {
        name: "amd_machine",
        orr: Anywhere,
        channelvars: true,
        timeout_ms: None,
        flow_vars: RECORDED_FLOW,
        scrub: &["Priority"],
    })
    .await;
}

#[tokio::test]
async fn amd_silence() {
    replay(Replay {
        name: "amd_silence",
        orr: Anywhere,
        channelvars: true,
        timeout_ms: None,
        flow_vars: RECORDED_FLOW,
        scrub: &["Priority"],
    })
    .await;
}

/// The recording `name` and a simulator of the replay configuration with a connection to it
/// (not logged in): a scenario the test replays by hand.
async fn by_hand(name: &str) -> (Vec<ami_bridge::Message>, Simulator, Conn) {
    let (_, recorded) = recorded(name);
    let sim = start(replay_config()).await;
    let c = Conn::connect(sim.addr()).await;
    (recorded, sim, c)
}

/// Two calls on one connection: each call's own messages match the recording's, in order.
#[tokio::test]
async fn concurrent() {
    let (recorded, sim, mut c) = by_hand("concurrent").await;
    for a in sent_actions("concurrent") {
        let is_logoff = a.get("Action") == Some("Logoff");
        if is_logoff {
            c.wait_count(recorded.len() - 1, Duration::from_secs(15))
                .await;
        }
        c.send(&rewrite_action(&a, &Default::default(), None)).await;
    }
    assert!(c.wait_closed(Duration::from_secs(15)).await);
    let of_call = |ms: &[ami_bridge::Message], call: &str| -> Vec<ami_bridge::Message> {
        ms.iter()
            .filter(|m| {
                m.chan_variable("DIALER_CALL_ID") == Some(call)
                    || m.chan_variable_with_prefix("Dest", "DIALER_CALL_ID") == Some(call)
                    || m.action_id() == Some(&format!("concurrent-orig-{}", &call[5..]))
            })
            .cloned()
            .collect()
    };
    for call in ["call-A", "call-B"] {
        let (e, _) = split_orr(&of_call(&recorded, call));
        let (g, _) = split_orr(&of_call(&c.got, call));
        assert!(e.len() > 5, "recording has events of {call}");
        assert_same_stream(call, &e, &g);
    }
    assert_eq!(
        labels(&c.got[..5]),
        labels(&recorded[..5]),
        "responses come first"
    );
    sim.shutdown().await;
}

/// `core stop now` with a call up: the restart fault gives core_stop_midcall's stream.
#[tokio::test]
async fn core_stop_midcall() {
    let (recorded, sim, mut c) = by_hand("core_stop_midcall").await;
    for a in sent_actions("core_stop_midcall") {
        c.send(&rewrite_action(&a, &Default::default(), None)).await;
    }
    let orr = c
        .wait_for(Duration::from_secs(10), |m| {
            m.event_name() == Some("OriginateResponse")
        })
        .await;
    assert!(orr.is_some(), "call answered: {:?}", labels(&c.got));
    let handle = sim.handle();
    let restart = tokio::spawn(async move { handle.restart().await });
    assert!(
        c.wait_closed(Duration::from_secs(15)).await,
        "closed by the shutdown"
    );
    assert_same_stream("core_stop_midcall", &recorded, &c.got);
    restart.await.expect("restart completes");
    // Up again: a new connection logs in and sees no channel.
    let mut c2 = Conn::login(sim.addr()).await;
    let done = c2
        .list_channels("c", Duration::from_secs(5))
        .await
        .expect("list completes");
    assert_eq!(c2.got[done].get("ListItems"), Some("0"));
    sim.shutdown().await;
}

/// Wrong secret: banner, ~delay, `Authentication failed`, close; nothing else.
#[tokio::test]
async fn login_failed() {
    let (banner, recorded) = recorded("login_failed");
    let sim = start(SimConfig {
        login_failure_delay_ms: 300,
        ..replay_config()
    })
    .await;
    let mut observer = Conn::login(sim.addr()).await;
    let mut c = Conn::connect(sim.addr()).await;
    let started = tokio::time::Instant::now();
    for a in sent_actions("login_failed") {
        // The recording's own wrong secret, not replaced.
        c.send(&a).await;
    }
    assert!(c.wait_closed(Duration::from_secs(10)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "failure came after {took:?}"
    );
    assert_eq!(c.banner.as_deref(), Some(banner.as_str()));
    assert_same_stream("login_failed", &recorded, &c.got);
    // login_failed_observer: the other session hears of it.
    let (_, observed) = helpers::recorded("login_failed_observer");
    let inv = observer
        .wait_for(Duration::from_secs(5), |m| {
            m.event_name() == Some("InvalidPassword")
        })
        .await
        .expect("InvalidPassword to the observer");
    let exp = observed
        .iter()
        .find(|m| m.event_name() == Some("InvalidPassword"))
        .expect("recorded InvalidPassword");
    assert_same_stream(
        "InvalidPassword",
        std::slice::from_ref(exp),
        &observer.got[inv..=inv],
    );
    assert_eq!(sim.stats().logins_failed, 1);
    sim.shutdown().await;
}
