//! The client against the recorded bytes of a real Asterisk 20: a server on 127.0.0.1 plays
//! each recording back, answering the client's actions in order. The only change made to the
//! recorded messages is the ActionID, mapped to the one the client chose.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_bridge::{
    Action, AmiClient, AmiError, ClientConfig, ClientEvent, Decoder, DisconnectReason, Event,
    Frame, Message, MessageKind, Originate, OriginateReason,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helpers;

const WAIT: Duration = Duration::from_secs(10);

struct Replay {
    addr: String,
    /// Every byte the client sent.
    client_sent: Arc<Mutex<Vec<u8>>>,
    done: tokio::task::JoinHandle<()>,
}

fn messages_of(bytes: &[u8], banner: bool) -> (Option<String>, Vec<Message>) {
    let mut d = Decoder::new(banner, 1 << 20);
    d.extend(bytes);
    let mut first = None;
    let mut out = Vec::new();
    while let Some(f) = d.next_frame() {
        match f.expect("recorded bytes decode") {
            Frame::Banner(b) => first = Some(b),
            Frame::Message(m) => out.push(m),
        }
    }
    (first, out)
}

fn with_action_id(m: &Message, id: Option<&str>) -> Vec<u8> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut placed = false;
    for (k, v) in m.iter() {
        if k.eq_ignore_ascii_case("ActionID") {
            if let Some(id) = id {
                pairs.push((k.to_string(), id.to_string()));
            }
            placed = true;
        } else {
            pairs.push((k.to_string(), v.to_string()));
        }
    }
    if !placed && let Some(id) = id {
        // A recorded action sent without ActionID (the second Ping) got none back.
        pairs.insert(1, ("ActionID".into(), id.to_string()));
    }
    let mut out = Vec::new();
    Message::from_pairs(&pairs).write_to(&mut out);
    out
}

async fn replay(name: &str) -> Replay {
    let t = helpers::load(name);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let client_sent = Arc::new(Mutex::new(Vec::new()));
    let sent_log = client_sent.clone();
    let done = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let (banner, received) = messages_of(&t.received, true);
        let (_, recorded_actions) = messages_of(&t.sent, false);
        let recorded_ids: Vec<Option<String>> = recorded_actions
            .iter()
            .map(|a| a.action_id().map(str::to_string))
            .collect();
        sock.write_all(format!("{}\r\n", banner.expect("banner")).as_bytes())
            .await
            .expect("write");
        let mut dec = Decoder::server();
        let mut client_actions: Vec<Message> = Vec::new();
        let mut responses = 0usize;
        for m in received {
            let answers: Option<usize> = if m.kind() == MessageKind::Response {
                responses += 1;
                Some(responses - 1)
            } else {
                m.action_id()
                    .and_then(|id| recorded_ids.iter().position(|r| r.as_deref() == Some(id)))
            };
            if let Some(k) = answers {
                while client_actions.len() <= k {
                    let n = sock.read_buf(dec.buffer_mut()).await.expect("read");
                    if n == 0 {
                        return;
                    }
                    sent_log
                        .lock()
                        .expect("lock")
                        .extend_from_slice(&dec.buffer_mut()[..]);
                    while let Some(Ok(Frame::Message(a))) = dec.next_frame() {
                        client_actions.push(a);
                    }
                }
            }
            let id = answers.and_then(|k| client_actions[k].action_id());
            let bytes = match answers {
                Some(_) => with_action_id(&m, id),
                None => {
                    let mut b = Vec::new();
                    m.write_to(&mut b);
                    b
                }
            };
            sock.write_all(&bytes).await.expect("write");
        }
        // Every recording ends with Asterisk closing the socket.
        let _ = sock.shutdown().await;
    });
    Replay {
        addr,
        client_sent,
        done,
    }
}

fn config(addr: &str) -> ClientConfig {
    let mut c = ClientConfig::new(addr, "dialer", "dialer-secret");
    c.reconnect = false;
    c.ping_interval = Duration::from_secs(600);
    c.action_timeout = WAIT;
    c
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("event in time")
        .expect("stream open")
}

/// Events until the stream reports the connection gone.
async fn events_until_disconnect(
    rx: &mut mpsc::UnboundedReceiver<ClientEvent>,
) -> (Vec<Event>, DisconnectReason) {
    let mut out = Vec::new();
    loop {
        match next_event(rx).await {
            ClientEvent::Event(e) => out.push(e),
            ClientEvent::Disconnected { reason } => return (out, reason),
            ClientEvent::Connected { .. } | ClientEvent::CaughtUp(_) => {}
        }
    }
}

/// What the client sent, with ActionID lines taken out (the recorder chose other ids).
fn without_action_ids(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .filter(|l| !l.starts_with("ActionID: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn wrong_secret_is_a_typed_error_not_a_hang() {
    let r = replay("login_failed").await;
    let mut c = config(&r.addr);
    c.secret = "wrong".into();
    let result = tokio::time::timeout(WAIT, AmiClient::connect(c))
        .await
        .expect("answers in time");
    match result {
        Err(AmiError::AuthFailed(msg)) => assert_eq!(msg, "Authentication failed"),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn answered_call_sends_the_recorded_bytes_and_gets_every_event() {
    let r = replay("answered").await;
    let (client, mut rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    assert!(matches!(
        next_event(&mut rx).await,
        ClientEvent::Connected { reconnected: false }
    ));
    let resp = client
        .originate(
            Originate::new("SIP/1001@trunk")
                .extension("dialer-out", "s", 1)
                .timeout(Duration::from_millis(8000))
                .caller_id("\"Dialer\" <5550100>")
                .variable("DIALER_CALL_ID", "call-0001"),
        )
        .await
        .expect("queued");
    assert_eq!(resp.text(), "Originate successfully queued");
    let orig_id = resp.action_id().expect("id").to_string();

    let mut names = Vec::new();
    let mut reason = None;
    while reason.is_none() || names.last().map(String::as_str) != Some("Hangup") {
        if let ClientEvent::Event(e) = next_event(&mut rx).await {
            if let Event::OriginateResponse(o) = &e {
                assert_eq!(o.action_id(), Some(orig_id.as_str()));
                reason = o.reason;
            }
            names.push(e.name().to_string());
        }
    }
    assert_eq!(reason, Some(OriginateReason::Answered));
    assert_eq!(names.first().map(String::as_str), Some("FullyBooted"));
    assert!(
        names.contains(&"PeerStatus".to_string()),
        "unrelated events pass through"
    );
    client.logoff().await.expect("logoff");
    r.done.await.expect("replay ends");
    let sent = r.client_sent.lock().expect("lock").clone();
    let recorded = helpers::load("answered").sent;
    assert_eq!(without_action_ids(&sent), without_action_ids(&recorded));
}

#[tokio::test]
async fn every_originate_outcome_reaches_the_caller() {
    let cases = [
        ("busy", OriginateReason::Busy, Some(17)),
        ("decline", OriginateReason::Busy, Some(21)),
        ("no_answer", OriginateReason::RingTimeout, Some(19)),
        ("congestion", OriginateReason::Congestion, Some(34)),
        ("not_found", OriginateReason::Failed, Some(1)),
        ("originate_unreachable", OriginateReason::Failed, None),
        ("originate_unknown_tech", OriginateReason::Failed, None),
        ("local_congestion", OriginateReason::Congestion, Some(34)),
        ("local_no_answer", OriginateReason::RingTimeout, Some(19)),
        ("answered_remote_bye", OriginateReason::Answered, Some(16)),
        ("dtmf", OriginateReason::Answered, Some(16)),
    ];
    for (name, want_reason, want_cause) in cases {
        let t = helpers::load(name);
        let (_, actions) = messages_of(&t.sent, false);
        let recorded = &actions[1];
        assert_eq!(recorded.first_value(), Some("Originate"));
        // The recorded Originate, header for header, through the generic action.
        let mut action = Action::new("Originate");
        for (k, v) in recorded.iter().skip(1) {
            if !k.eq_ignore_ascii_case("ActionID") {
                action = action.header(k.to_string(), v.to_string());
            }
        }
        let r = replay(name).await;
        let (client, mut rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
        let resp = client.send_ok(&action).await.expect("queued");
        let id = resp.action_id().expect("id").to_string();
        let mut reason = None;
        let mut causes = Vec::new();
        let mut dtmf = String::new();
        // The recordings end with Logoff; stop reading once both outcome signals are in.
        while reason.is_none()
            || (want_cause.is_some()
                && causes.len() < if name.starts_with("local") { 2 } else { 1 })
        {
            match next_event(&mut rx).await {
                ClientEvent::Event(Event::OriginateResponse(o)) => {
                    assert_eq!(o.action_id(), Some(id.as_str()), "{name}");
                    reason = o.reason;
                }
                ClientEvent::Event(Event::Hangup(h)) => causes.push(h.cause.expect("cause")),
                ClientEvent::Event(Event::DtmfEnd(d)) => dtmf.push_str(d.digit().unwrap_or("")),
                ClientEvent::Event(_)
                | ClientEvent::Connected { .. }
                | ClientEvent::CaughtUp(_) => {}
                ClientEvent::Disconnected { reason } => panic!("{name}: disconnected {reason:?}"),
            }
        }
        assert_eq!(reason, Some(want_reason), "{name}");
        assert_eq!(
            causes.iter().copied().find(|c| *c != 0),
            want_cause,
            "{name}"
        );
        if name == "dtmf" {
            assert_eq!(dtmf, "42");
        }
        client.logoff().await.expect("logoff");
        r.done.await.expect("replay ends");
    }
}

#[tokio::test]
async fn list_response_hangup_and_errors() {
    let r = replay("coreshowchannels").await;
    let (client, _rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    client
        .originate(
            Originate::new("SIP/3001@trunk-hold")
                .extension("dialer-out", "s", 1)
                .variable("DIALER_CALL_ID", "x"),
        )
        .await
        .expect("queued");
    let channels = client.core_show_channels().await.expect("list");
    assert_eq!(channels.len(), 1);
    let chan = channels[0].get("Channel").expect("channel").to_string();
    assert_eq!(chan, "SIP/trunk-hold-0000000d");
    assert_eq!(channels[0].get("Application"), Some("Wait"));
    client.hangup(&chan, Some(16)).await.expect("hung up");
    client.logoff().await.expect("logoff");

    let r = replay("hangup_action").await;
    let (client, _rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    client
        .originate(Originate::new("SIP/3002@trunk-hold").extension("dialer-out", "s", 1))
        .await
        .expect("queued");
    client
        .hangup("SIP/trunk-hold-0000000e", Some(16))
        .await
        .expect("first hangup");
    match client.hangup("SIP/trunk-hold-0000000e", Some(16)).await {
        Err(AmiError::ActionFailed { message, .. }) => assert_eq!(message, "No such channel"),
        other => panic!("expected No such channel, got {other:?}"),
    }
    client.logoff().await.expect("logoff");
}

#[tokio::test]
async fn command_output_and_unknown_action() {
    let r = replay("command").await;
    let (client, mut rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    let version = client.command("core show version").await.expect("output");
    assert_eq!(version.len(), 1);
    assert!(version[0].starts_with("Asterisk 20.20.1"));
    let peers = client.command("sip show peers").await.expect("output");
    assert_eq!(peers.len(), 11);
    assert!(peers[10].starts_with("9 sip peers"));
    let bad = client
        .send(&Action::new("NoSuchAction"))
        .await
        .expect("answer");
    assert!(!bad.is_success());
    assert!(
        bad.text()
            .starts_with("Invalid/unknown command: NoSuchAction")
    );
    let mut saw = false;
    while !saw {
        if let ClientEvent::Event(Event::Other(m)) = next_event(&mut rx).await {
            saw = m.event_name() == Some("RequestBadFormat");
            if saw {
                assert_eq!(m.get("RequestType"), Some("Action: NoSuchAction"));
            }
        }
    }
    client.logoff().await.expect("logoff");
}

#[tokio::test]
async fn concurrent_originates_are_correlated() {
    let r = replay("concurrent").await;
    let (client, mut rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    let a = Originate::new("SIP/2001@trunk").extension("dialer-out", "s", 1);
    let b = Originate::new("SIP/2002@trunk-busy").extension("dialer-out", "s", 1);
    let (ra, rb) = tokio::join!(client.originate(a), client.originate(b));
    let (ida, idb) = (
        ra.expect("A queued").action_id().expect("id").to_string(),
        rb.expect("B queued").action_id().expect("id").to_string(),
    );
    assert_ne!(ida, idb);
    let mut outcomes = std::collections::HashMap::new();
    while outcomes.len() < 2 {
        if let ClientEvent::Event(Event::OriginateResponse(o)) = next_event(&mut rx).await {
            outcomes.insert(o.action_id().expect("id").to_string(), o.reason);
        }
    }
    // Which of the two Originates reached the replayer first decides which recorded answer it
    // got; either way each response carries one of our ids and the two outcomes differ.
    let mut reasons: Vec<_> = outcomes.values().copied().collect();
    reasons.sort_by_key(|r| r.map(|r| r.code()));
    assert_eq!(
        reasons,
        [Some(OriginateReason::Answered), Some(OriginateReason::Busy)]
    );
    assert!(outcomes.contains_key(&ida) && outcomes.contains_key(&idb));
    client.logoff().await.expect("logoff");
}

#[tokio::test]
async fn shutdown_mid_call_is_reported_and_the_loss_noticed() {
    let r = replay("core_stop_midcall").await;
    let (client, mut rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    client
        .originate(Originate::new("SIP/3003@trunk-hold").extension("dialer-out", "s", 1))
        .await
        .expect("queued");
    let (events, reason) = events_until_disconnect(&mut rx).await;
    assert_eq!(reason, DisconnectReason::ClosedByPeer);
    let last = events.last().expect("events");
    let Event::Shutdown(s) = last else {
        panic!("last event {}", last.name())
    };
    assert!(!s.restart());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Hangup(h) if h.cause == Some(16)))
    );
    // Nothing left to talk to: actions fail at once instead of hanging.
    assert!(client.ping().await.is_err());
}

#[tokio::test]
async fn synchronous_originate_error_then_events() {
    let r = replay("busy_sync").await;
    let (client, mut rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    let action = Originate::new("SIP/1013@trunk-busy")
        .extension("dialer-out", "s", 1)
        .asynchronous(false)
        .build()
        .expect("valid");
    let resp = client.send(&action).await.expect("answer");
    assert!(!resp.is_success());
    assert_eq!(resp.text(), "Originate failed");
    loop {
        if let ClientEvent::Event(Event::Hangup(h)) = next_event(&mut rx).await {
            assert_eq!(h.cause, Some(17));
            break;
        }
    }
    client.logoff().await.expect("logoff");
}

#[tokio::test]
async fn ping_pong() {
    let r = replay("ping").await;
    let (client, _rx) = AmiClient::connect(config(&r.addr)).await.expect("login");
    client.ping().await.expect("pong");
    client.ping().await.expect("pong");
    client.logoff().await.expect("logoff");
}
