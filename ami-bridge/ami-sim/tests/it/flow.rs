//! The flow after the answer (docs/call-flow.md) over real TCP: the AMD result, the voicemail
//! prompt after a machine's greeting, the keys a person presses and what Read makes of them,
//! prompts that cannot be played, the recording PUT to a real HTTP server, the callee hanging
//! up first, and which events a `read = call` user is sent. Times are short (AMD after
//! 150-250 ms) so the calls take a second or two; times are measured where the client reads
//! the events, so bounds allow some tens of milliseconds of a busy machine. The recorded order
//! of events is checked against the recordings themselves in `transcripts` (amd_human,
//! amd_machine, amd_silence).

use std::time::Duration;

use ami_bridge::Message;
use ami_sim::{AnsweredBy, OutcomeKind, Rule, SimConfig, Simulator};
use tokio::time::Instant;

use crate::helpers::*;
use crate::http_server::{HttpServer, Reply, prompt_wav, unreachable_url, wav_header};

const WAIT: Duration = Duration::from_secs(15);

/// Short flow times: AMD after 150 (person), 200 (machine), 250 ms (dead air), a machine's
/// greeting over 400 ms after the answer, keys held 20 ms.
fn flow_config(rules: Vec<Rule>) -> SimConfig {
    SimConfig {
        amd_human_ms: 150,
        amd_machine_ms: 200,
        amd_silence_ms: 250,
        greeting_ms: 400,
        dtmf_ms: 20,
        rules,
        ..replay_config()
    }
}

/// A callee answering after 50 ms who stays on the line until the flow hangs up.
fn callee(pattern: &str, by: AnsweredBy) -> Rule {
    Rule {
        talk_ms: None,
        ..Rule::timed(pattern, OutcomeKind::Answered, 50, 0)
    }
    .with_answered_by(by)
}

/// A person pressing `keys`, each 50 ms after the last.
fn person(pattern: &str, keys: &str) -> Rule {
    callee(pattern, AnsweredBy::Human).with_keys(keys, 50)
}

fn uid(n: usize) -> String {
    format!("flow-uid-{n:04}")
}

fn call_id(n: usize) -> String {
    format!("call-{n:04}")
}

/// Call `n`: an Originate of `number` into `context` with `DIALER_CALL_ID` and `vars`.
fn originate_into(context: &str, n: usize, number: &str, vars: &[(&str, &str)]) -> Message {
    let id = format!("orig-{n}");
    let channel = format!("SIP/{number}@trunk");
    let uid = uid(n);
    let mut variables = vec![format!("DIALER_CALL_ID={}", call_id(n))];
    variables.extend(vars.iter().map(|(k, v)| format!("{k}={v}")));
    let mut pairs = vec![
        ("Action", "Originate"),
        ("ActionID", id.as_str()),
        ("Channel", channel.as_str()),
        ("Context", context),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", "30000"),
        ("CallerID", "\"Dialer\" <5550100>"),
        ("ChannelId", uid.as_str()),
    ];
    pairs.extend(variables.iter().map(|v| ("Variable", v.as_str())));
    pairs.push(("Async", "true"));
    Message::from_pairs(&pairs)
}

fn originate(n: usize, number: &str, vars: &[(&str, &str)]) -> Message {
    originate_into("dialer-flow", n, number, vars)
}

/// A logged-in connection that notes when each message arrived.
struct Timed {
    c: Conn,
    at: Vec<Instant>,
}

/// One message of a call and when it arrived.
type Seen = (Message, Instant);

impl Timed {
    async fn login(sim: &Simulator) -> Timed {
        Timed {
            c: Conn::login(sim.addr()).await,
            at: Vec::new(),
        }
    }

    /// Reads until `n` Hangup events came (or `WAIT` is up), then a little more: nothing
    /// comes after a call's Hangup.
    async fn until_hangups(&mut self, n: usize) {
        let end = Instant::now() + WAIT;
        let hangups = |c: &Conn| {
            c.got
                .iter()
                .filter(|m| m.event_name() == Some("Hangup"))
                .count()
        };
        while hangups(&self.c) < n && Instant::now() < end && !self.c.closed {
            self.c.read_some(end - Instant::now()).await;
            self.at.resize(self.c.got.len(), Instant::now());
        }
        self.c.read_some(Duration::from_millis(150)).await;
        self.at.resize(self.c.got.len(), Instant::now());
        assert!(hangups(&self.c) >= n, "{:?}", labels(&self.c.got));
    }

    /// Call `n`'s messages: its channel's events (`ChannelId` is its Uniqueid) and its
    /// OriginateResponse.
    fn call(&self, n: usize) -> Vec<Seen> {
        let (u, id) = (uid(n), format!("orig-{n}"));
        self.c
            .got
            .iter()
            .zip(&self.at)
            .filter(|(m, _)| {
                m.get("Uniqueid") == Some(u.as_str())
                    || m.get("DestUniqueid") == Some(u.as_str())
                    || m.action_id() == Some(id.as_str())
            })
            .map(|(m, t)| (m.clone(), *t))
            .collect()
    }
}

fn names(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|(m, _)| label(m)).collect()
}

/// Index of the first message satisfying `f`.
fn find(seen: &[Seen], f: impl Fn(&Message) -> bool) -> Option<usize> {
    seen.iter().position(|(m, _)| f(m))
}

fn user_events<'a>(seen: &'a [Seen], name: &str) -> Vec<&'a Message> {
    seen.iter()
        .map(|(m, _)| m)
        .filter(|m| m.event_name() == Some("UserEvent") && m.get("UserEvent") == Some(name))
        .collect()
}

/// The one `UserEvent: <name>` of a call.
fn user_event<'a>(seen: &'a [Seen], name: &str) -> &'a Message {
    let found = user_events(seen, name);
    assert_eq!(found.len(), 1, "one {name}: {:?}", names(seen));
    found[0]
}

/// The headers after the channel's own (`UserEvent`, then the dialplan's).
fn custom_headers(m: &Message) -> Vec<(String, String)> {
    let all: Vec<(String, String)> = m
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let from = all
        .iter()
        .position(|(k, _)| k == "UserEvent")
        .expect("UserEvent header");
    all[from..].to_vec()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// When the call was answered (`Newstate` Up), as the client saw it.
fn answered_at(seen: &[Seen]) -> Instant {
    let i = find(seen, |m| {
        m.event_name() == Some("Newstate") && m.get("ChannelStateDesc") == Some("Up")
    })
    .unwrap_or_else(|| panic!("answered: {:?}", names(seen)));
    seen[i].1
}

fn at_of(seen: &[Seen], f: impl Fn(&Message) -> bool) -> Instant {
    let i = find(seen, f).unwrap_or_else(|| panic!("{:?}", names(seen)));
    seen[i].1
}

fn is_app(app: &'static str) -> impl Fn(&Message) -> bool {
    move |m| m.event_name() == Some("Newexten") && m.get("Application") == Some(app)
}

/// The applications the call's dialplan ran, in order.
fn apps(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|(m, _)| m.event_name() == Some("Newexten"))
        .filter_map(|(m, _)| m.get("Application").map(str::to_string))
        .collect()
}

/// The dialplan's hang-up: what the flow's end looks like (Cause 16).
const DIALPLAN_HANGUP: [&str; 9] = [
    "Newexten",
    "SoftHangupRequest",
    "VarSet",
    "VarSet",
    "VarSet",
    "VarSet",
    "VarSet",
    "VarSet",
    "Hangup",
];

fn assert_ends_with_dialplan_hangup(seen: &[Seen]) {
    let n = names(seen);
    assert!(n.ends_with(&DIALPLAN_HANGUP.map(String::from)), "{n:?}");
    let (last, _) = &seen[seen.len() - 1];
    assert_eq!(last.get("Cause"), Some("16"));
    assert_eq!(apps(seen).last().map(String::as_str), Some("Hangup"));
}

/// Person, machine and dead air: `DialerAMD` with the recorded status and cause, after the
/// configured analysis time, the channel's headers first; `detect` goes on for a machine.
#[tokio::test]
async fn each_amd_result_is_a_user_event_after_its_analysis_time() {
    let sim = start(flow_config(vec![
        person("4101", "1"),
        callee("4102", AnsweredBy::Machine),
        callee("4103", AnsweredBy::Silence),
    ]))
    .await;
    let mut t = Timed::login(&sim).await;
    let vars = [
        ("DIALER_AMD", "detect"),
        ("DIALER_GATHER_MAX", "1"),
        ("DIALER_GATHER_TIMEOUT", "1"),
    ];
    for (n, number) in [(1, "4101"), (2, "4102"), (3, "4103")] {
        t.c.send(&originate(n, number, &vars)).await;
    }
    t.until_hangups(3).await;
    let expected = [
        (1, "HUMAN", "HUMAN-800-800", 150),
        (2, "MACHINE", "LONGGREETING-1500-1500", 200),
        (3, "MACHINE", "INITIALSILENCE-2500-2500", 250),
    ];
    for (n, status, cause, after_ms) in expected {
        let seen = t.call(n);
        let amd = user_event(&seen, "DialerAMD");
        assert_eq!(amd.get("Privilege"), Some("user,all"));
        assert_eq!(amd.get("Uniqueid"), Some(uid(n).as_str()));
        assert_eq!(
            custom_headers(amd),
            pairs(&[
                ("UserEvent", "DialerAMD"),
                ("CallID", &call_id(n)),
                ("Status", status),
                ("Cause", cause),
            ])
        );
        let took = at_of(&seen, |m| m.get("UserEvent") == Some("DialerAMD")) - answered_at(&seen);
        assert!(
            took >= Duration::from_millis(after_ms - 50)
                && took < Duration::from_millis(after_ms + 500),
            "call {n}: AMD after {took:?}"
        );
        // AMD sets its variables first; `detect` goes on to the Read even for a machine.
        let i = find(&seen, |m| m.get("UserEvent") == Some("DialerAMD")).expect("amd");
        let before: Vec<_> = seen[i - 3..i]
            .iter()
            .map(|(m, _)| m.get("Variable").or(m.get("Application")).unwrap_or(""))
            .collect();
        assert_eq!(before, ["AMDSTATUS", "AMDCAUSE", "UserEvent"]);
        assert_eq!(
            apps(&seen),
            [
                "AppDial2",
                "NoOp",
                "AMD",
                "UserEvent",
                "GotoIf",
                "Read",
                "UserEvent",
                "Hangup"
            ]
        );
        let dtmf = user_event(&seen, "DialerDTMF");
        let digits = if n == 1 { "1" } else { "" };
        let status = if n == 1 { "OK" } else { "TIMEOUT" };
        assert_eq!(dtmf.get("Digits"), Some(digits), "call {n}");
        assert_eq!(dtmf.get("ReadStatus"), Some(status), "call {n}");
        assert_ends_with_dialplan_hangup(&seen);
    }
    sim.shutdown().await;
}

/// A Local channel runs the flow on its `;1` half, the one the Originate's target runs on.
#[tokio::test]
async fn a_local_channel_runs_the_flow_on_its_first_half() {
    let sim = start(flow_config(vec![person("4151", "1")])).await;
    let mut t = Timed::login(&sim).await;
    let mut o = originate(
        1,
        "4151",
        &[("DIALER_AMD", "detect"), ("DIALER_GATHER_MAX", "1")],
    );
    o = Message::from_pairs(
        &o.iter()
            .map(|(k, v)| match k {
                "Channel" => (k, "Local/4151@dialer-sim"),
                _ => (k, v),
            })
            .collect::<Vec<_>>(),
    );
    t.c.send(&o).await;
    t.until_hangups(2).await;
    let seen = t.call(1);
    assert!(
        seen.iter()
            .all(|(m, _)| m.get("Channel").is_none_or(|c| c.ends_with(";1")))
    );
    assert_eq!(user_event(&seen, "DialerAMD").get("Status"), Some("HUMAN"));
    assert_eq!(user_event(&seen, "DialerDTMF").get("Digits"), Some("1"));
    assert_eq!(
        apps(&seen),
        [
            "AppDial2",
            "NoOp",
            "AMD",
            "UserEvent",
            "GotoIf",
            "Read",
            "UserEvent",
            "Hangup"
        ]
    );
    sim.shutdown().await;
}

/// `hangup_machine`: the machine is hung up on right after `DialerAMD`; no prompt is fetched
/// and nothing is read. A person goes on.
#[tokio::test]
async fn hangup_machine_hangs_up_after_dialer_amd() {
    let http = HttpServer::start(vec![(
        "/message.wav",
        Reply {
            status: 200,
            body: prompt_wav(100),
        },
    )])
    .await;
    let sim = start(flow_config(vec![
        callee("4202", AnsweredBy::Machine),
        callee("4203", AnsweredBy::Silence),
    ]))
    .await;
    let mut t = Timed::login(&sim).await;
    let message = http.url("/message.wav");
    let vars = [
        ("DIALER_AMD", "hangup_machine"),
        ("DIALER_MESSAGE", message.as_str()),
        ("DIALER_GATHER_MAX", "1"),
        ("DIALER_GATHER_TIMEOUT", "1"),
    ];
    t.c.send(&originate(1, "4202", &vars)).await;
    t.c.send(&originate(2, "4203", &vars)).await;
    t.until_hangups(2).await;
    for n in [1, 2] {
        let seen = t.call(n);
        let i = find(&seen, |m| m.get("UserEvent") == Some("DialerAMD")).expect("DialerAMD");
        let mut after = vec!["Newexten".to_string()];
        after.extend(DIALPLAN_HANGUP.map(String::from));
        assert_eq!(names(&seen[i + 1..]), after, "GotoIf, then Hangup");
        assert_eq!(seen[i + 1].0.get("Application"), Some("GotoIf"));
        assert_eq!(seen[i + 1].0.get("AppData"), Some("1?machine"));
        assert_eq!(user_events(&seen, "DialerDTMF").len(), 0);
        assert_ends_with_dialplan_hangup(&seen);
    }
    assert!(http.requests().is_empty(), "{:?}", http.requests());
    sim.shutdown().await;
}

/// `voicemail`: after the machine's greeting (`greeting_ms` after the answer) the voicemail
/// prompt is fetched, played for its length, then the call is hung up; dead air gets it right
/// after AMD. The message prompt is not played to a machine.
#[tokio::test]
async fn voicemail_is_fetched_after_the_greeting_and_played() {
    let http = HttpServer::start(vec![(
        "/vm.wav",
        Reply {
            status: 200,
            body: prompt_wav(300),
        },
    )])
    .await;
    let sim = start(flow_config(vec![
        callee("4302", AnsweredBy::Machine),
        callee("4303", AnsweredBy::Silence),
    ]))
    .await;
    let mut t = Timed::login(&sim).await;
    let (vm, message) = (http.url("/vm.wav"), http.url("/message.wav"));
    let vars = [
        ("DIALER_AMD", "voicemail"),
        ("DIALER_VOICEMAIL", vm.as_str()),
        ("DIALER_MESSAGE", message.as_str()),
        ("DIALER_GATHER_MAX", "1"),
        ("DIALER_GATHER_TIMEOUT", "1"),
    ];
    t.c.send(&originate(1, "4302", &vars)).await;
    t.c.send(&originate(2, "4303", &vars)).await;
    t.until_hangups(2).await;
    let requests = http.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.path == "/vm.wav")
    );
    for (n, fetch_after_ms) in [(1, 400), (2, 250)] {
        let seen = t.call(n);
        assert_eq!(
            apps(&seen),
            [
                "AppDial2",
                "NoOp",
                "AMD",
                "UserEvent",
                "GotoIf",
                "WaitForSilence",
                "Playback",
                "Hangup"
            ]
        );
        let answered = answered_at(&seen);
        let playback = at_of(&seen, is_app("Playback"));
        let fetched = requests
            .iter()
            .map(|r| r.at)
            .find(|at| *at + Duration::from_millis(50) >= playback)
            .expect("the fetch of this call");
        let waited = playback - answered;
        assert!(
            waited >= Duration::from_millis(fetch_after_ms - 50)
                && waited < Duration::from_millis(fetch_after_ms + 500),
            "call {n}: voicemail {waited:?} after the answer"
        );
        let played = at_of(&seen, |m| m.event_name() == Some("Hangup")) - fetched;
        assert!(
            played >= Duration::from_millis(280),
            "call {n}: played {played:?}"
        );
        let status = find(&seen, |m| m.get("Variable") == Some("PLAYBACKSTATUS")).expect("status");
        assert_eq!(seen[status].0.get("Value"), Some("SUCCESS"));
        assert_eq!(user_events(&seen, "DialerPlayback").len(), 0);
        assert_ends_with_dialplan_hangup(&seen);
    }
    assert_eq!(sim.stats().prompts_played, 2);
    sim.shutdown().await;
}

/// What Read makes of the keys: the finish key ends it (not in Digits), the most digits end
/// it, a timeout with nothing pressed, the opt-out digit as the first key. Each key is a
/// `DTMFBegin` and a `DTMFEnd` (class dtmf, `Direction: Received`, `DurationMs`).
#[tokio::test]
async fn gather_finish_key_max_digits_timeout_and_opt_out() {
    let sim = start(flow_config(vec![
        person("4401", "12#3"),
        person("4402", "1234"),
        person("4403", ""),
        person("4404", "91"),
    ]))
    .await;
    let mut t = Timed::login(&sim).await;
    let gather = |max, timeout| {
        vec![
            ("DIALER_GATHER_MAX", max),
            ("DIALER_GATHER_TIMEOUT", timeout),
            ("DIALER_GATHER_FINISH", "#"),
            ("DIALER_OPT_OUT", "9"),
        ]
    };
    t.c.send(&originate(1, "4401", &gather("4", "2"))).await;
    t.c.send(&originate(2, "4402", &gather("2", "2"))).await;
    t.c.send(&originate(3, "4403", &gather("4", "1"))).await;
    t.c.send(&originate(4, "4404", &gather("4", "2"))).await;
    t.until_hangups(4).await;
    let cases = [
        (1, "12", "OK", "12#"),
        (2, "12", "OK", "12"),
        (3, "", "TIMEOUT", ""),
        (4, "9", "OK", "9"),
    ];
    for (n, digits, status, keys) in cases {
        let seen = t.call(n);
        let dtmf = user_event(&seen, "DialerDTMF");
        assert_eq!(
            custom_headers(dtmf),
            pairs(&[
                ("UserEvent", "DialerDTMF"),
                ("CallID", &call_id(n)),
                ("Digits", digits),
                ("ReadStatus", status),
            ]),
            "call {n}"
        );
        // Each key: DTMFBegin, DTMFEnd, between the Read and the UserEvent.
        let read = find(&seen, is_app("Read")).expect("Read");
        let end = find(&seen, |m| m.get("UserEvent") == Some("DialerDTMF")).expect("DTMF");
        let between: Vec<&Message> = seen[read..end]
            .iter()
            .map(|(m, _)| m)
            .filter(|m| m.event_name().is_some_and(|e| e.starts_with("DTMF")))
            .collect();
        assert_eq!(
            between.len(),
            keys.len() * 2,
            "call {n}: {:?}",
            names(&seen)
        );
        for (pair, key) in between.chunks(2).zip(keys.chars()) {
            let key = key.to_string();
            assert_eq!(pair[0].event_name(), Some("DTMFBegin"));
            assert_eq!(pair[1].event_name(), Some("DTMFEnd"));
            for m in pair {
                assert_eq!(m.get("Privilege"), Some("dtmf,all"));
                assert_eq!(m.get("Digit"), Some(key.as_str()));
                assert_eq!(m.get("Direction"), Some("Received"));
            }
            assert_eq!(pair[1].get("DurationMs"), Some("20"));
        }
        // Read's own variables, then the UserEvent and the hang-up.
        let vars: Vec<(&str, &str)> = seen[read..end]
            .iter()
            .filter(|(m, _)| m.event_name() == Some("VarSet"))
            .map(|(m, _)| {
                (
                    m.get("Variable").unwrap_or(""),
                    m.get("Value").unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            vars,
            [
                ("READSTATUS", "ERROR"),
                ("DIGITS", digits),
                ("READSTATUS", status)
            ],
            "call {n}"
        );
        assert_ends_with_dialplan_hangup(&seen);
    }
    // The timeout: a second after the Read began, nothing pressed.
    let seen = t.call(3);
    let waited =
        at_of(&seen, |m| m.get("UserEvent") == Some("DialerDTMF")) - at_of(&seen, is_app("Read"));
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_millis(1600),
        "timed out after {waited:?}"
    );
    sim.shutdown().await;
}

/// A prompt that cannot be played (no server, 404, not a WAV Asterisk reads) is reported by
/// `DialerPlayback` `FAILED` and the flow goes on; a good one plays for its length.
#[tokio::test]
async fn a_prompt_that_cannot_be_played_is_reported_and_the_flow_goes_on() {
    let http = HttpServer::start(vec![
        (
            "/html.wav",
            Reply {
                status: 200,
                body: b"<html>moved</html>".to_vec(),
            },
        ),
        (
            "/good.wav",
            Reply {
                status: 200,
                body: prompt_wav(500),
            },
        ),
    ])
    .await;
    let sim = start(flow_config(vec![person("45*", "1")])).await;
    let mut t = Timed::login(&sim).await;
    let urls = [
        unreachable_url("/m.wav").await,
        http.url("/missing.wav"),
        http.url("/html.wav"),
        http.url("/good.wav"),
    ];
    for (n, url) in urls.iter().enumerate() {
        let vars = [
            ("DIALER_MESSAGE", url.as_str()),
            ("DIALER_GATHER_MAX", "1"),
            ("DIALER_GATHER_TIMEOUT", "2"),
        ];
        t.c.send(&originate(n, &format!("45{n:02}"), &vars)).await;
    }
    t.until_hangups(4).await;
    for n in 0..3 {
        let seen = t.call(n);
        let failed = user_event(&seen, "DialerPlayback");
        assert_eq!(
            custom_headers(failed),
            pairs(&[
                ("UserEvent", "DialerPlayback"),
                ("CallID", &call_id(n)),
                ("Prompt", "message"),
                ("Status", "FAILED"),
            ]),
            "call {n}"
        );
        assert_eq!(
            apps(&seen),
            [
                "AppDial2",
                "NoOp",
                "Playback",
                "UserEvent",
                "Read",
                "UserEvent",
                "Hangup"
            ],
            "call {n}: the flow goes on"
        );
        assert_eq!(user_event(&seen, "DialerDTMF").get("Digits"), Some("1"));
    }
    let seen = t.call(3);
    assert!(user_events(&seen, "DialerPlayback").is_empty());
    let played = at_of(&seen, is_app("Read")) - at_of(&seen, is_app("Playback"));
    assert!(
        played >= Duration::from_millis(470) && played < Duration::from_millis(1200),
        "the 500 ms prompt played {played:?}"
    );
    let stats = sim.stats();
    assert_eq!((stats.prompts_played, stats.prompts_failed), (1, 3));
    sim.shutdown().await;
}

/// `DIALER_RECORD_URL`: `MixMonitorStart` right after the answer; once the channel is gone
/// the recording is PUT once, a WAV (PCM 16-bit, 8 kHz, mono) as long as the call was up. A
/// failed upload is counted and not retried.
#[tokio::test]
async fn the_recording_is_put_once_as_a_wav_as_long_as_the_call() {
    let http = HttpServer::start(vec![
        (
            "/message.wav",
            Reply {
                status: 200,
                body: prompt_wav(300),
            },
        ),
        (
            "/broken",
            Reply {
                status: 500,
                body: Vec::new(),
            },
        ),
    ])
    .await;
    let sim = start(flow_config(vec![person("46*", "1")])).await;
    let mut t = Timed::login(&sim).await;
    let (message, upload, broken) = (
        http.url("/message.wav"),
        http.url("/recordings/call-0001.wav"),
        http.url("/broken"),
    );
    let unreachable = unreachable_url("/r.wav").await;
    let flow = |record: &str| {
        vec![
            ("DIALER_AMD", "detect".to_string()),
            ("DIALER_MESSAGE", message.clone()),
            ("DIALER_GATHER_MAX", "1".into()),
            ("DIALER_GATHER_TIMEOUT", "2".into()),
            ("DIALER_RECORD_URL", record.to_string()),
        ]
    };
    for (n, record) in [(1, &upload), (2, &broken), (3, &unreachable)] {
        let vars = flow(record);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        t.c.send(&originate(n, &format!("460{n}"), &vars)).await;
    }
    t.until_hangups(3).await;
    let seen = t.call(1);
    let n = names(&seen);
    let up = find(&seen, |m| m.get("ChannelStateDesc") == Some("Up")).expect("answered");
    assert_eq!(
        n[up..up + 7],
        [
            "Newstate",
            "DialEnd",
            "Newexten",
            "Newexten",
            "VarSet",
            "MixMonitorStart",
            "OriginateResponse"
        ],
        "{n:?}"
    );
    let start = &seen[up + 5].0;
    assert_eq!(start.get("Privilege"), Some("call,all"));
    assert_eq!(start.get("Uniqueid"), Some(uid(1).as_str()));
    assert_eq!(seen[up + 4].0.get("Variable"), Some("MIXMONITOR_FILENAME"));

    // Three message fetches, two PUTs that reached the server; nothing more comes later.
    let requests = http.wait_requests(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let requests_later = http.requests();
    assert_eq!(requests_later.len(), requests.len(), "no retries");
    let puts: Vec<_> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 2, "{requests:?}");
    let put = puts
        .iter()
        .find(|r| r.path == "/recordings/call-0001.wav")
        .expect("the recording");
    assert_eq!(put.header("Content-Type"), Some("audio/wav"));
    let (format, channels, rate, bits, data) = wav_header(&put.body).expect("a WAV");
    assert_eq!((format, channels, rate, bits), (1, 1, 8000, 16));
    let length = Duration::from_micros(data as u64 * 1_000_000 / 16_000);
    let up_for = at_of(&seen, |m| m.event_name() == Some("Hangup")) - answered_at(&seen);
    let diff = length.abs_diff(up_for);
    assert!(
        diff < Duration::from_millis(120),
        "recording {length:?}, call up {up_for:?}"
    );
    assert_eq!(puts.iter().filter(|r| r.path == "/broken").count(), 1);
    let stats = sim.stats();
    assert_eq!(stats.recordings_uploaded, 1);
    assert_eq!(stats.recording_upload_failures, 2, "500 and no server");
    sim.shutdown().await;
}

/// The callee's talk time ends before the flow: its hang-up (as for `remote_hangup`) ends the
/// call, nothing more of the flow happens; the recording holds what was up. The dialplan's
/// hangup handler reports what was cut short: an AMD still deciding (`Status: HANGUP`, empty
/// `Cause`), a gather with the keys read so far (`ReadStatus: HANGUP`), between
/// `SoftHangupRequest` and `Hangup`.
#[tokio::test]
async fn the_callee_hanging_up_first_stops_the_flow() {
    let http = HttpServer::start(vec![(
        "/long.wav",
        Reply {
            status: 200,
            body: prompt_wav(3000),
        },
    )])
    .await;
    let sim = start(flow_config(vec![
        // Hangs up during the message; one that hangs up before AMD has a result; one that
        // hangs up after two keys of "12#" (key ends at 220, 440 and 660 ms of the Read).
        Rule::timed("4701", OutcomeKind::Answered, 50, 400).with_answered_by(AnsweredBy::Human),
        Rule::timed("4702", OutcomeKind::RemoteHangup, 50, 80),
        Rule::timed("4703", OutcomeKind::Answered, 50, 550)
            .with_answered_by(AnsweredBy::Human)
            .with_keys("12#", 200),
    ]))
    .await;
    let mut t = Timed::login(&sim).await;
    let (long, record) = (http.url("/long.wav"), http.url("/rec"));
    let vars = [
        ("DIALER_AMD", "detect"),
        ("DIALER_MESSAGE", long.as_str()),
        ("DIALER_GATHER_MAX", "1"),
        ("DIALER_GATHER_TIMEOUT", "2"),
        ("DIALER_RECORD_URL", record.as_str()),
    ];
    t.c.send(&originate(1, "4701", &vars)).await;
    t.c.send(&originate(2, "4702", &vars)).await;
    let gather_only = [
        ("DIALER_GATHER_MAX", "4"),
        ("DIALER_GATHER_TIMEOUT", "2"),
        ("DIALER_GATHER_FINISH", "#"),
    ];
    t.c.send(&originate(3, "4703", &gather_only)).await;
    t.until_hangups(3).await;
    let remote = [
        "VarSet",
        "VarSet",
        "VarSet",
        "VarSet",
        "VarSet",
        "HangupRequest",
        "SoftHangupRequest",
    ];
    let amd_cut = [
        "VarSet",
        "VarSet",
        "Newexten",
        "Newexten",
        "UserEvent",
        "Newexten",
        "Newexten",
        "Hangup",
    ];
    let gather_cut = [
        "VarSet",
        "VarSet",
        "Newexten",
        "Newexten",
        "Newexten",
        "UserEvent",
        "Newexten",
        "Hangup",
    ];
    let cases: [(usize, &[&str], Vec<&str>); 3] = [
        (1, &["Hangup"], vec!["DialerAMD"]),
        (2, &amd_cut, vec!["DialerAMD"]),
        (3, &gather_cut, vec!["DialerDTMF"]),
    ];
    for (n, after, user) in cases {
        let seen = t.call(n);
        let n_names = names(&seen);
        let ending: Vec<String> = remote.iter().chain(after).map(|s| s.to_string()).collect();
        assert!(n_names.ends_with(&ending), "call {n}: {n_names:?}");
        let got: Vec<&str> = seen
            .iter()
            .filter_map(|(m, _)| m.get("UserEvent"))
            .collect();
        assert_eq!(got, user, "call {n}");
        assert!(!apps(&seen).contains(&"Hangup".to_string()), "call {n}");
        let (last, _) = &seen[seen.len() - 1];
        assert_eq!(last.get("Cause"), Some("16"));
    }
    let seen = t.call(1);
    let up_for = at_of(&seen, |m| m.event_name() == Some("Hangup")) - answered_at(&seen);
    assert!(
        up_for >= Duration::from_millis(350) && up_for < Duration::from_millis(1000),
        "up {up_for:?}"
    );
    assert_eq!(apps(&seen).last().map(String::as_str), Some("Playback"));
    assert_eq!(user_event(&seen, "DialerAMD").get("Status"), Some("HUMAN"));

    // AMD cut short: what AMD() sets as the channel goes, then the handler's report.
    let seen = t.call(2);
    let amd = user_event(&seen, "DialerAMD");
    assert_eq!(
        custom_headers(amd),
        pairs(&[
            ("UserEvent", "DialerAMD"),
            ("CallID", &call_id(2)),
            ("Status", "HANGUP"),
            ("Cause", ""),
        ])
    );
    let handler: Vec<(String, String)> = seen
        .iter()
        .filter(|(m, _)| m.event_name() == Some("Newexten"))
        .filter(|(m, _)| m.get("Context") == Some("dialer-flow-hangup"))
        .map(|(m, _)| {
            let at = m.get("Priority").unwrap_or("").to_string();
            (at, m.get("Application").unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(
        handler,
        pairs(&[
            ("1", "GotoIf"),
            ("2", "UserEvent"),
            ("3", "GotoIf"),
            ("5", "Return")
        ])
    );
    let i = find(&seen, |m| m.get("Variable") == Some("AMDSTATUS")).expect("AMDSTATUS");
    assert_eq!(seen[i].0.get("Value"), Some("HANGUP"));

    // A gather cut short: the two keys that had ended, the finish key never came.
    let seen = t.call(3);
    let dtmf = user_event(&seen, "DialerDTMF");
    assert_eq!(
        custom_headers(dtmf),
        pairs(&[
            ("UserEvent", "DialerDTMF"),
            ("CallID", &call_id(3)),
            ("Digits", "12"),
            ("ReadStatus", "HANGUP"),
        ])
    );
    let ends = seen
        .iter()
        .filter(|(m, _)| m.event_name() == Some("DTMFEnd"))
        .count();
    assert_eq!(ends, 2);
    let puts = http.wait_requests(3, WAIT).await;
    assert_eq!(puts.iter().filter(|r| r.method == "PUT").count(), 2);
    sim.shutdown().await;
}

/// `read = call` (the dispatcher's minimum without `user`) gets no UserEvent, as Asterisk
/// sends none to it, nor the DTMF events (class dtmf); `MixMonitorStart` is of class call.
/// `read = call,user` gets the UserEvents.
#[tokio::test]
async fn a_read_call_user_gets_no_user_events() {
    for (read, user_events_seen) in [("call", false), ("call,user", true)] {
        let sim = start(SimConfig {
            read: read.into(),
            ..flow_config(vec![person("48*", "1")])
        })
        .await;
        // Not `Conn::login`: SuccessfulAuth (security) is not sent to these users.
        let mut c = Conn::connect(sim.addr()).await;
        c.send_pairs(&[
            ("Action", "Login"),
            ("Username", "dialer"),
            ("Secret", SECRET),
        ])
        .await;
        assert!(
            c.wait_for(WAIT, |m| m.get("Message")
                == Some("Authentication accepted"))
                .await
                .is_some()
        );
        let record = unreachable_url("/r.wav").await;
        let vars = [
            ("DIALER_AMD", "detect"),
            ("DIALER_GATHER_MAX", "1"),
            ("DIALER_GATHER_TIMEOUT", "2"),
            ("DIALER_RECORD_URL", record.as_str()),
        ];
        c.send(&originate(1, "4801", &vars)).await;
        assert!(
            c.wait_for(WAIT, |m| m.event_name() == Some("Hangup"))
                .await
                .is_some()
        );
        c.read_some(Duration::from_millis(200)).await;
        let events = labels(&c.got);
        assert!(
            events.contains(&"MixMonitorStart".to_string()),
            "{read}: {events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| e.starts_with("DTMF") || e == "VarSet" || e == "Newexten"),
            "{read}: {events:?}"
        );
        let users: Vec<&str> = c.got.iter().filter_map(|m| m.get("UserEvent")).collect();
        let expected: &[&str] = if user_events_seen {
            &["DialerAMD", "DialerDTMF"]
        } else {
            &[]
        };
        assert_eq!(users, expected, "{read}");
        sim.shutdown().await;
    }
}

/// Without any flow variable, a call into the flow context is answered and hung up as any
/// other; the variables do nothing in another context.
#[tokio::test]
async fn without_its_variables_the_flow_context_answers_as_before() {
    let sim = start(flow_config(vec![Rule::timed(
        "49*",
        OutcomeKind::Answered,
        50,
        200,
    )]))
    .await;
    let mut t = Timed::login(&sim).await;
    // As many variables each, so as many VarSets.
    let plain = [("DIALER_ATTEMPT", "1"), ("X_NOTE", "x")];
    let flow = [("DIALER_AMD", "detect"), ("DIALER_GATHER_MAX", "1")];
    t.c.send(&originate_into("dialer-out", 1, "4901", &plain))
        .await;
    t.c.send(&originate_into("dialer-flow", 2, "4902", &plain))
        .await;
    t.c.send(&originate_into("dialer-out", 3, "4903", &flow))
        .await;
    t.until_hangups(3).await;
    let plain = names(&t.call(1));
    for n in [2, 3] {
        let seen = t.call(n);
        assert_eq!(names(&seen), plain, "call {n}");
        assert_eq!(apps(&seen), ["AppDial2", "NoOp", "Wait", "Hangup"]);
    }
    sim.shutdown().await;
}

/// No rule: the callee comes from the number's second-to-last digit (0-5 a person pressing
/// 1, 6 a machine, 7 dead air, 8 a person pressing nothing, 9 a person pressing 9); the last
/// digit still decides the outcome (0: answered).
#[tokio::test]
async fn the_built_in_callee_follows_the_second_to_last_digit() {
    let sim = start(SimConfig {
        key_delay_ms: Some(100),
        ..flow_config(Vec::new())
    })
    .await;
    let mut t = Timed::login(&sim).await;
    let vars = [
        ("DIALER_AMD", "detect"),
        ("DIALER_GATHER_MAX", "1"),
        ("DIALER_GATHER_TIMEOUT", "1"),
    ];
    let numbers = ["5550100", "5550160", "5550170", "5550180", "5550190"];
    for (n, number) in numbers.iter().enumerate() {
        t.c.send(&originate(n, number, &vars)).await;
    }
    t.until_hangups(numbers.len()).await;
    let expected = [
        ("HUMAN", "HUMAN-800-800", "1", "OK"),
        ("MACHINE", "LONGGREETING-1500-1500", "", "TIMEOUT"),
        ("MACHINE", "INITIALSILENCE-2500-2500", "", "TIMEOUT"),
        ("HUMAN", "HUMAN-800-800", "", "TIMEOUT"),
        ("HUMAN", "HUMAN-800-800", "9", "OK"),
    ];
    for (n, (status, cause, digits, read)) in expected.into_iter().enumerate() {
        let seen = t.call(n);
        let amd = user_event(&seen, "DialerAMD");
        assert_eq!(
            (amd.get("Status"), amd.get("Cause")),
            (Some(status), Some(cause))
        );
        let dtmf = user_event(&seen, "DialerDTMF");
        assert_eq!(
            (dtmf.get("Digits"), dtmf.get("ReadStatus")),
            (Some(digits), Some(read)),
            "{}",
            numbers[n]
        );
    }
    assert_eq!(sim.stats().outcomes.get("answered"), Some(&5));
    sim.shutdown().await;
}
