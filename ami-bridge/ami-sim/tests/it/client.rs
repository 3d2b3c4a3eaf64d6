//! Our AMI client (`ami-bridge`) against the simulator: every outcome through the client, many
//! Originates in flight at once, and each fault of the simulator noticed and recovered from.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ami_bridge::{
    AmiClient, ClientConfig, ClientEvent, DisconnectReason, Event, Originate, OriginateReason,
};
use ami_sim::outcome::{OutcomeKind, Rule};
use ami_sim::{SimConfig, Simulator};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

async fn sim(cfg: SimConfig) -> Simulator {
    Simulator::start(SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        restart_downtime_ms: 50,
        shutdown_event_delay_ms: 50,
        ..cfg
    })
    .await
    .expect("simulator starts")
}

/// A simulator answering every call at once.
async fn instant_sim() -> Simulator {
    sim(SimConfig {
        instant_answer: true,
        ..SimConfig::default()
    })
    .await
}

fn config(sim: &Simulator) -> ClientConfig {
    let mut c = ClientConfig::new(sim.addr().to_string(), "dialer", "dialer");
    c.reconnect_min = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(300);
    c.ping_interval = Duration::from_secs(60);
    c
}

/// A fixed-length id, as the dispatcher uses (attempt UUIDs): never a prefix of another.
fn channel_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// An Originate to `PJSIP/{number}@trunk` with the ChannelId `channel_id(n)`.
fn pjsip(number: &str, n: usize) -> Originate {
    Originate::new(format!("PJSIP/{number}@trunk"))
        .extension("dialer-out", "s", 1)
        .channel_id(channel_id(n))
}

type Events = mpsc::UnboundedReceiver<ClientEvent>;

/// The first event `pred` accepts; each event must come within `WAIT`.
async fn wait_for(rx: &mut Events, mut pred: impl FnMut(&ClientEvent) -> bool) -> ClientEvent {
    loop {
        let e = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an event in time")
            .expect("stream open");
        if pred(&e) {
            return e;
        }
    }
}

async fn next(rx: &mut Events) -> ClientEvent {
    wait_for(rx, |_| true).await
}

/// Why the connection was lost, once the stream says so.
async fn disconnected(rx: &mut Events) -> DisconnectReason {
    match wait_for(rx, |e| matches!(e, ClientEvent::Disconnected { .. })).await {
        ClientEvent::Disconnected { reason } => reason,
        _ => unreachable!(),
    }
}

async fn reconnected(rx: &mut Events) {
    wait_for(rx, |e| {
        matches!(e, ClientEvent::Connected { reconnected: true })
    })
    .await;
}

/// A simulator where `hold*` numbers answer at once and talk for a minute, a client logged in,
/// and one such call (`PJSIP/{number}@trunk`, ChannelId `channel_id(n)`) ringing.
async fn call_on_hold(number: &str, n: usize) -> (Simulator, AmiClient, Events) {
    let s = sim(SimConfig {
        rules: vec![Rule::timed("hold*", OutcomeKind::Answered, 0, 60_000)],
        ..SimConfig::default()
    })
    .await;
    let (client, mut rx) = AmiClient::connect(config(&s)).await.expect("login");
    client.originate(pjsip(number, n)).await.expect("queued");
    wait_for(&mut rx, |e| {
        matches!(e, ClientEvent::Event(Event::Newstate(_)))
    })
    .await;
    (s, client, rx)
}

#[tokio::test]
async fn every_default_outcome_through_the_client() {
    let s = sim(SimConfig::default()).await;
    let (client, mut rx) = AmiClient::connect(config(&s)).await.expect("login");
    // Last digit: 0-5 answered, 6 busy, 7 no answer, 8 congestion, 9 not found; Foo/ unknown tech.
    let cases: Vec<(String, Option<OriginateReason>, Option<u16>)> = {
        use OriginateReason::{Answered, Busy, Congestion, Failed, RingTimeout};
        vec![
            ("PJSIP/+15550100@trunk".into(), Some(Answered), Some(16)),
            ("PJSIP/+15550106@trunk".into(), Some(Busy), Some(17)),
            ("PJSIP/+15550107@trunk".into(), Some(RingTimeout), Some(19)),
            ("PJSIP/+15550108@trunk".into(), Some(Congestion), Some(34)),
            ("PJSIP/+15550109@trunk".into(), Some(Failed), Some(1)),
            ("Local/5550106@dialer-sim".into(), Some(Busy), Some(17)),
            ("Foo/1007".into(), Some(Failed), None),
        ]
    };
    let mut want: HashMap<String, (Option<OriginateReason>, Option<u16>)> = HashMap::new();
    for (i, (dial, reason, cause)) in cases.into_iter().enumerate() {
        let id = channel_id(i);
        client
            .originate(
                Originate::new(dial)
                    .extension("dialer-out", "s", 1)
                    .timeout(Duration::from_millis(800))
                    .caller_id("\"Dialer\" <5550100>")
                    .channel_id(id.clone())
                    .other_channel_id(channel_id(100 + i))
                    .variable("DIALER_CALL_ID", format!("call-{i}")),
            )
            .await
            .expect("queued");
        want.insert(id, (reason, cause));
    }
    let mut reasons: HashMap<String, Option<OriginateReason>> = HashMap::new();
    let mut causes: HashMap<String, u16> = HashMap::new();
    let mut started: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while (reasons.len() < want.len() || causes.len() < 6) && Instant::now() < deadline {
        let ClientEvent::Event(e) = next(&mut rx).await else {
            continue;
        };
        // Every channel of an attempt is linked to its ChannelId (Local ;2 via Linkedid).
        let key = e
            .message()
            .get("Linkedid")
            .or(e.uniqueid())
            .map(str::to_string);
        let Some(key) = key.filter(|k| want.contains_key(k)) else {
            continue;
        };
        match &e {
            Event::OriginateResponse(o) => {
                assert!(reasons.insert(key, o.reason).is_none(), "one response each");
            }
            Event::Hangup(h) => {
                if let Some(c) = h.cause.filter(|c| *c != 0) {
                    causes.insert(key, c);
                }
            }
            Event::Newchannel(_) => *started.entry(key).or_default() += 1,
            _ => {}
        }
    }
    for (id, (reason, cause)) in &want {
        assert_eq!(reasons.get(id), Some(reason), "{id}");
        assert_eq!(causes.get(id).copied(), *cause, "{id}");
    }
    // Two channels for the Local call, one for each SIP call, none for the unknown technology.
    assert_eq!(started.get(&channel_id(5)), Some(&2));
    assert_eq!(started.get(&channel_id(0)), Some(&1));
    assert_eq!(started.get(&channel_id(6)), None);
    client.logoff().await.expect("logoff");
}

#[tokio::test]
async fn a_thousand_concurrent_originates_are_each_correlated() {
    let s = instant_sim().await;
    let (client, mut rx) = AmiClient::connect(config(&s)).await.expect("login");
    let n = 1000;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let c = client.clone();
        set.spawn(async move {
            let r = c
                .originate(
                    pjsip(&format!("+1555{i:07}"), i)
                        .variable("DIALER_CALL_ID", format!("call-{i}")),
                )
                .await
                .expect("queued");
            (i, r.action_id().expect("action id").to_string())
        });
    }
    let mut action_ids: HashMap<String, usize> = HashMap::new();
    while let Some(r) = set.join_next().await {
        let (i, id) = r.expect("task");
        assert!(action_ids.insert(id, i).is_none(), "ActionIDs are unique");
    }
    let mut seen: HashMap<usize, usize> = HashMap::new();
    while seen.len() < n {
        if let ClientEvent::Event(Event::OriginateResponse(o)) = next(&mut rx).await {
            let i = action_ids[o.action_id().expect("action id")];
            assert_eq!(o.uniqueid(), Some(channel_id(i).as_str()), "originate {i}");
            assert_eq!(
                o.message().chan_variable("DIALER_CALL_ID"),
                Some(format!("call-{i}").as_str())
            );
            *seen.entry(i).or_default() += 1;
        }
    }
    assert!(seen.values().all(|c| *c == 1));
    assert_eq!(s.stats().originates_total, n as u64);
    client.logoff().await.expect("logoff");
}

#[tokio::test]
async fn dropped_connection_mid_call_is_noticed_reconnected_and_reconcilable() {
    let (s, client, mut rx) = call_on_hold("hold1", 1).await;
    s.drop_connections();
    let reason = disconnected(&mut rx).await;
    assert!(
        matches!(
            reason,
            DisconnectReason::ClosedByPeer | DisconnectReason::Io(_)
        ),
        "{reason:?}"
    );
    reconnected(&mut rx).await;
    // The call outlived the AMI session, as on Asterisk: the dispatcher finds it again.
    let live = client.core_show_channels().await.expect("list");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].get("Uniqueid"), Some(channel_id(1).as_str()));
    client.ping().await.expect("pong after reconnect");
    assert!(s.stats().logins_ok >= 2);
}

#[tokio::test]
async fn stalled_connection_is_detected_within_the_keepalive_window() {
    let s = sim(SimConfig::default()).await;
    let mut c = config(&s);
    c.ping_interval = Duration::from_millis(300);
    c.ping_timeout = Duration::from_millis(300);
    let (client, mut rx) = AmiClient::connect(c).await.expect("login");
    client.ping().await.expect("pong");
    let t = Instant::now();
    s.stall();
    let reason = disconnected(&mut rx).await;
    let took = t.elapsed();
    assert_eq!(reason, DisconnectReason::Stalled);
    // Window 600 ms (ping interval + timeout); the upper bound leaves room for a loaded box.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A stall hits the connections open at the time; the new one works.
    reconnected(&mut rx).await;
    client.ping().await.expect("pong after reconnect");
}

#[tokio::test]
async fn restart_ends_every_call_reports_shutdown_and_reconnects() {
    let (s, client, mut rx) = call_on_hold("hold2", 2).await;
    let restart = {
        let h = s.handle();
        tokio::spawn(async move { h.restart().await })
    };
    wait_for(&mut rx, |e| {
        matches!(e, ClientEvent::Event(Event::Hangup(_)))
    })
    .await;
    wait_for(&mut rx, |e| {
        matches!(e, ClientEvent::Event(Event::Shutdown(_)))
    })
    .await;
    disconnected(&mut rx).await;
    reconnected(&mut rx).await;
    restart.await.expect("restart done");
    assert!(client.core_show_channels().await.expect("list").is_empty());
}

#[tokio::test]
async fn refused_logins_keep_the_client_retrying_until_they_are_accepted() {
    let s = sim(SimConfig::default()).await;
    let (client, mut rx) = AmiClient::connect(config(&s)).await.expect("login");
    s.refuse_logins(true);
    s.drop_connections();
    disconnected(&mut rx).await;
    // While logins are refused, actions fail at once rather than queue for a dead PBX.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(client.ping().await.is_err());
    assert!(s.stats().logins_failed >= 1, "the client kept trying");
    s.refuse_logins(false);
    reconnected(&mut rx).await;
    client.ping().await.expect("pong");
}

#[tokio::test]
async fn garbage_from_the_server_does_not_break_the_client() {
    let s = sim(SimConfig::default()).await;
    let (client, mut rx) = AmiClient::connect(config(&s)).await.expect("login");
    s.send_garbage();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Either the connection survived the junk, or it was re-established: actions work again.
    let deadline = Instant::now() + WAIT;
    loop {
        if client.ping().await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no working connection after garbage"
        );
        while let Ok(e) = rx.try_recv() {
            drop(e);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .originate(pjsip("+15550100", 9))
        .await
        .expect("queued after garbage");
}

#[tokio::test]
async fn a_slow_consumer_is_not_mistaken_for_a_stalled_pbx() {
    let s = instant_sim().await;
    let mut c = config(&s);
    c.ping_interval = Duration::from_millis(200);
    c.ping_timeout = Duration::from_millis(200);
    let (client, mut rx) = AmiClient::connect(c).await.expect("login");
    for i in 0..100 {
        client
            .originate(pjsip(&format!("+1555{i:07}"), i))
            .await
            .expect("queued");
    }
    // Read nothing for two seconds, well past the keepalive window: the client keeps draining
    // the socket (Pongs included) and holds the events for us.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut responses = 0;
    while responses < 100 {
        match next(&mut rx).await {
            ClientEvent::Event(Event::OriginateResponse(_)) => responses += 1,
            ClientEvent::Disconnected { reason } => panic!("disconnected: {reason:?}"),
            _ => {}
        }
    }
    client.ping().await.expect("still connected");
}
