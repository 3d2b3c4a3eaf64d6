//! Actions, the default plan, capacity, faults, counting and the control port.

use std::time::Duration;

use ami_bridge::{Message, MessageKind};
use ami_sim::{OutcomeKind, Rule, SimConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(10);

/// A new connection that has sent the test's Login (no `ActionID`), its answer not awaited.
async fn send_login(addr: std::net::SocketAddr) -> Conn {
    let mut c = Conn::connect(addr).await;
    c.send_pairs(&[
        ("Action", "Login"),
        ("Username", "dialer"),
        ("Secret", SECRET),
    ])
    .await;
    c
}

/// A message satisfying `f` comes within [`WAIT`].
async fn sees(c: &mut Conn, f: impl Fn(&ami_bridge::Message) -> bool) -> bool {
    c.wait_for(WAIT, f).await.is_some()
}

fn originate<'a>(
    id: &'a str,
    channel: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("Action", "Originate"),
        ("ActionID", id),
        ("Channel", channel),
        ("Context", "dialer-out"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("CallerID", "\"Dialer\" <5550100>"),
        ("Async", "true"),
    ];
    v.extend_from_slice(extra);
    v
}

async fn orr(c: &mut Conn, id: &str) -> Message {
    let i = c
        .wait_for(WAIT, |m| {
            m.event_name() == Some("OriginateResponse") && m.action_id() == Some(id)
        })
        .await
        .unwrap_or_else(|| panic!("OriginateResponse {id}: {:?}", labels(&c.got)));
    c.got[i].clone()
}

fn hold_config() -> SimConfig {
    SimConfig {
        rules: vec![Rule::timed("hold*", OutcomeKind::Answered, 0, 60_000)],
        ..replay_config()
    }
}

#[tokio::test]
async fn actions_before_login_are_refused_and_a_missing_action_is_reported() {
    let sim = start(replay_config()).await;
    let mut c = Conn::connect(sim.addr()).await;
    c.send_pairs(&[("Action", "Ping"), ("ActionID", "p1")])
        .await;
    c.send_pairs(&[("ActionID", "x1"), ("Foo", "bar")]).await;
    c.wait_count(2, WAIT).await;
    assert_eq!(c.got[0].get("Response"), Some("Error"));
    assert_eq!(c.got[0].get("Message"), Some("Permission denied"));
    assert_eq!(c.got[0].action_id(), Some("p1"));
    assert_eq!(c.got[1].get("Message"), Some("Missing action in request"));
    // Logoff works without login.
    c.send_pairs(&[("Action", "Logoff"), ("ActionID", "l")])
        .await;
    assert!(c.wait_closed(WAIT).await);
    assert_eq!(c.got[2].get("Response"), Some("Goodbye"));
    sim.shutdown().await;
}

#[tokio::test]
async fn default_plan_by_last_digit_with_dialer_dialer_login() {
    let sim = start(SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    })
    .await;
    let mut c = Conn::connect(sim.addr()).await;
    c.send_pairs(&[
        ("Action", "Login"),
        ("Username", "dialer"),
        ("Secret", "dialer"),
    ])
    .await;
    assert!(
        sees(&mut c, |m| m.get("Message")
            == Some("Authentication accepted"))
        .await
    );
    let cases = [
        ("5550100", "Success", "4"),
        ("5550105", "Success", "4"),
        ("5550106", "Failure", "5"),
        ("5550107", "Failure", "3"),
        ("5550108", "Failure", "8"),
        ("5550109", "Failure", "0"),
    ];
    for (n, _, _) in cases {
        let ch = format!("PJSIP/{n}@trunk");
        c.send_pairs(&originate(n, &ch, &[("Timeout", "600")]))
            .await;
    }
    for (n, resp, reason) in cases {
        let m = orr(&mut c, n).await;
        assert_eq!(
            (m.get("Response"), m.get("Reason")),
            (Some(resp), Some(reason)),
            "{n}"
        );
        if resp == "Success" {
            assert!(
                m.get("Channel")
                    .is_some_and(|ch| ch.starts_with("PJSIP/trunk-0000000")),
                "{m:?}"
            );
        } else {
            assert_eq!(m.get("Channel"), Some(format!("PJSIP/{n}@trunk").as_str()));
            assert_eq!(m.get("Uniqueid"), Some("<unknown>"));
        }
    }
    // Answered: ring 200 ms then talk 1 s, hung up by the dialplan with cause 16.
    let hangup = c
        .wait_for(WAIT, |m| {
            m.event_name() == Some("Hangup") && m.get("Cause") == Some("16")
        })
        .await;
    assert!(hangup.is_some());
    let stats = sim.stats();
    assert_eq!(stats.originates_total, 6);
    assert_eq!(stats.originates_by_number.get("5550107"), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn capacity_full_fails_like_a_full_trunk_and_frees_up() {
    let (sim, mut c) = start_logged_in(SimConfig {
        max_channels: 2,
        ..hold_config()
    })
    .await;
    c.send_pairs(&originate("a", "SIP/hold1@trunk", &[])).await;
    c.send_pairs(&originate("b", "SIP/hold2@trunk", &[])).await;
    c.send_pairs(&originate(
        "c",
        "SIP/hold3@trunk",
        &[("ChannelId", "cap-c")],
    ))
    .await;
    let m = orr(&mut c, "c").await;
    assert_eq!(m.get("Response"), Some("Failure"));
    assert_eq!(m.get("Reason"), Some("0"));
    assert_eq!(
        m.get("Uniqueid"),
        Some("cap-c"),
        "ChannelId even on failure"
    );
    assert!(
        !c.got
            .iter()
            .any(|m| m.get("Uniqueid") == Some("cap-c") && m.event_name() == Some("Newchannel"))
    );
    let a = orr(&mut c, "a").await;
    orr(&mut c, "b").await;
    assert_eq!(sim.current_channels(), 2);
    let stats = sim.stats();
    assert_eq!(stats.outcomes.get("capacity"), Some(&1));
    assert_eq!(stats.max_concurrent_channels, 2);
    // A Local call needs two channels: refused while one is free.
    c.send_pairs(&[
        ("Action", "Hangup"),
        ("ActionID", "h"),
        ("Channel", a.get("Channel").expect("channel")),
    ])
    .await;
    assert!(sees(&mut c, |m| m.event_name() == Some("Hangup")).await);
    c.send_pairs(&originate("d", "Local/hold4@ctx", &[])).await;
    assert_eq!(orr(&mut c, "d").await.get("Reason"), Some("0"));
    c.send_pairs(&originate("e", "SIP/hold5@trunk", &[])).await;
    assert_eq!(orr(&mut c, "e").await.get("Reason"), Some("4"));
    sim.shutdown().await;
}

#[tokio::test]
async fn channel_id_prefix_of_a_live_uniqueid_is_in_use() {
    let (sim, mut c) = start_logged_in(hold_config()).await;
    c.send_pairs(&originate("a", "SIP/hold1@trunk", &[("ChannelId", "X-90")]))
        .await;
    assert_eq!(orr(&mut c, "a").await.get("Uniqueid"), Some("X-90"));
    c.send_pairs(&originate("b", "SIP/hold2@trunk", &[("ChannelId", "X-9")]))
        .await;
    let m = orr(&mut c, "b").await;
    assert_eq!(
        (m.get("Response"), m.get("Reason"), m.get("Uniqueid")),
        (Some("Failure"), Some("0"), Some("X-9"))
    );
    c.send_pairs(&originate("c", "SIP/hold3@trunk", &[("ChannelId", "X-91")]))
        .await;
    assert_eq!(orr(&mut c, "c").await.get("Reason"), Some("4"));
    // Hangup by Uniqueid works too.
    c.send_pairs(&[
        ("Action", "Hangup"),
        ("ActionID", "h"),
        ("Channel", "X-90"),
        ("Cause", "17"),
    ])
    .await;
    let i = c
        .wait_for(WAIT, |m| {
            m.event_name() == Some("Hangup") && m.get("Uniqueid") == Some("X-90")
        })
        .await
        .expect("hung up");
    assert_eq!(c.got[i].get("Cause-txt"), Some("User busy"));
    let stats = sim.stats();
    assert_eq!(stats.originates_by_channel_id.len(), 3);
    assert_eq!(stats.outcomes.get("channel_id_in_use"), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_connections_closes_sessions_but_calls_go_on() {
    let (sim, mut c) = start_logged_in(hold_config()).await;
    c.send_pairs(&originate("a", "SIP/hold1@trunk", &[])).await;
    orr(&mut c, "a").await;
    sim.drop_connections();
    assert!(c.wait_closed(WAIT).await, "connection dropped");
    assert_eq!(sim.current_channels(), 1);
    let mut c2 = Conn::login(sim.addr()).await;
    let i = c2.list_channels("l", WAIT).await.expect("list");
    assert_eq!(c2.got[i].get("ListItems"), Some("1"));
    sim.shutdown().await;
}

#[tokio::test]
async fn stall_keeps_the_socket_open_but_silent_until_resume() {
    let (sim, mut c) = start_logged_in(replay_config()).await;
    sim.stall();
    // Let the fault reach the session before the ping.
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send_pairs(&[("Action", "Ping"), ("ActionID", "p")]).await;
    assert!(
        !c.read_some(Duration::from_millis(700)).await,
        "nothing while stalled"
    );
    assert!(!c.closed, "not closed while stalled");
    assert_eq!(sim.sessions(), 1);
    sim.resume();
    let pong = c.wait_for(WAIT, |m| m.get("Ping") == Some("Pong")).await;
    assert!(pong.is_some(), "the ping is answered after resume");
    // A new connection is not stalled.
    Conn::login(sim.addr()).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn garbage_fault_sends_raw_garbage_and_the_session_goes_on() {
    let (sim, mut c) = start_logged_in(replay_config()).await;
    sim.send_garbage();
    let mut raw = Vec::new();
    let end = tokio::time::Instant::now() + WAIT;
    while !raw
        .windows(ami_sim::GARBAGE.len())
        .any(|w| w == ami_sim::GARBAGE)
    {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(end, c.stream.read(&mut buf))
            .await
            .expect("garbage in time")
            .expect("read");
        assert!(n > 0, "not closed");
        raw.extend_from_slice(&buf[..n]);
    }
    c.send_pairs(&[("Action", "Ping"), ("ActionID", "p")]).await;
    assert!(sees(&mut c, |m| m.get("Ping") == Some("Pong")).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn garbage_from_the_client_does_not_hurt_the_simulator() {
    let (sim, mut c) = start_logged_in(replay_config()).await;
    let mut junk: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    junk.extend_from_slice(
        b"\r\n\r\n:::\r\n\xff\xfe: \x00\r\n\r\nAction: Ping\nActionID: after\n\n",
    );
    c.stream.write_all(&junk).await.expect("write junk");
    assert!(sees(&mut c, |m| m.action_id() == Some("after")).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_logins_fail_until_turned_off() {
    let sim = start(replay_config()).await;
    sim.refuse_logins(true);
    let mut c = send_login(sim.addr()).await;
    assert!(c.wait_closed(WAIT).await);
    assert_eq!(c.got[0].get("Message"), Some("Authentication failed"));
    sim.refuse_logins(false);
    Conn::login(sim.addr()).await;
    let s = sim.stats();
    assert_eq!((s.logins_failed, s.logins_ok), (1, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn restart_ends_every_channel_then_accepts_again() {
    let (sim, mut c) = start_logged_in(hold_config()).await;
    c.send_pairs(&originate("a", "SIP/hold1@trunk", &[])).await;
    c.send_pairs(&originate("b", "Local/hold2@ctx", &[])).await;
    c.send_pairs(&originate("r", "SIP/1003@trunk", &[])).await; // still ringing
    orr(&mut c, "a").await;
    orr(&mut c, "b").await;
    assert_eq!(sim.current_channels(), 4);
    sim.restart().await;
    assert!(c.wait_closed(WAIT).await);
    let hangups = c
        .got
        .iter()
        .filter(|m| m.event_name() == Some("Hangup"))
        .count();
    assert_eq!(hangups, 4);
    assert_eq!(c.got.last().and_then(|m| m.event_name()), Some("Shutdown"));
    assert_eq!(sim.current_channels(), 0);
    Conn::login(sim.addr()).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn while_shutting_down_every_action_is_refused_as_asterisk_refuses_it() {
    // Asterisk 20's manager answers every action with this error from `core stop` on, before
    // it looks at the action (main/manager.c, process_message).
    let (sim, mut c) = start_logged_in(SimConfig {
        shutdown_event_delay_ms: 1000,
        ..hold_config()
    })
    .await;
    c.send_pairs(&originate("up", "SIP/hold1@trunk", &[])).await;
    orr(&mut c, "up").await;
    let restart = {
        let h = sim.handle();
        tokio::spawn(async move { h.restart().await })
    };
    c.wait_for(WAIT, |m| m.event_name() == Some("Hangup"))
        .await
        .expect("the shutdown hangs the call up");
    c.send_pairs(&originate("late", "SIP/hold2@trunk", &[]))
        .await;
    c.send_pairs(&[("Action", "Ping"), ("ActionID", "p")]).await;
    for id in ["late", "p"] {
        let i = c
            .wait_for(WAIT, |m| {
                m.kind() == MessageKind::Response && m.action_id() == Some(id)
            })
            .await
            .unwrap_or_else(|| panic!("a response to {id}: {:?}", labels(&c.got)));
        assert_eq!(c.got[i].get("Response"), Some("Error"), "{id}");
        assert_eq!(
            c.got[i].get("Message"),
            Some("Asterisk is shutting down"),
            "{id}"
        );
    }
    assert!(c.wait_closed(WAIT).await);
    restart.await.expect("restart done");
    assert!(
        !c.got
            .iter()
            .any(|m| m.event_name() == Some("OriginateResponse") && m.action_id() == Some("late")),
        "a refused Originate has no outcome"
    );
    let stats = sim.stats();
    // Refused, not dialed: counted apart from the Originates the PBX took.
    assert_eq!(stats.originates_total, 1);
    assert_eq!(stats.outcomes.get("shutting_down"), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_numbers_channel_ids_peaks_and_windows() {
    let (sim, mut c) = start_logged_in(SimConfig {
        rules: vec![Rule::timed("*", OutcomeKind::Answered, 0, 300)],
        ..replay_config()
    })
    .await;
    for i in 0..5 {
        let id = format!("id-{i}");
        let ch = format!("SIP/555010{}@trunk", i % 3);
        c.send_pairs(&originate(&id, &ch, &[("ChannelId", &id)]))
            .await;
    }
    for i in 0..5 {
        orr(&mut c, &format!("id-{i}")).await;
    }
    let s = sim.stats();
    assert_eq!(s.originates_total, 5);
    assert_eq!(s.originates_by_number.get("5550100"), Some(&2));
    assert_eq!(s.originates_by_number.get("5550102"), Some(&1));
    assert!(s.originates_by_channel_id.values().all(|n| *n == 1));
    assert_eq!(s.max_concurrent_channels, 5);
    assert_eq!(s.max_originates_in_1s, 5);
    assert_eq!(s.originates_per_second.iter().sum::<u64>(), 5);
    assert_eq!(sim.max_originates_in_window(Duration::from_secs(1)), 5);
    assert_eq!(sim.originate_times().len(), 5);
    assert!(s.events_emitted > 5 * 10);
    // Calls end after their talk time.
    tokio::time::timeout(WAIT, async {
        while sim.current_channels() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("channels end");
    assert_eq!(sim.stats().current_channels, 0);
    sim.reset_stats();
    assert_eq!(sim.stats().originates_total, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn two_instances_are_two_servers() {
    let a = start(replay_config()).await;
    let b = start(replay_config()).await;
    assert_ne!(a.addr(), b.addr());
    let mut ca = Conn::login(a.addr()).await;
    ca.send_pairs(&originate("x", "SIP/1001@trunk", &[])).await;
    orr(&mut ca, "x").await;
    assert_eq!(a.stats().originates_total, 1);
    assert_eq!(b.stats().originates_total, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn control_port_line_protocol() {
    let sim = start(SimConfig {
        control: Some("127.0.0.1:0".parse().expect("addr")),
        ..replay_config()
    })
    .await;
    let ctl = TcpStream::connect(sim.control_addr().expect("control port"))
        .await
        .expect("connect");
    let (rd, mut wr) = ctl.into_split();
    let mut lines = BufReader::new(rd).lines();
    let mut ask = async |cmd: &str| -> String {
        wr.write_all(format!("{cmd}\n").as_bytes())
            .await
            .expect("write");
        tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("reply in time")
            .expect("read")
            .expect("a line")
    };
    assert_eq!(ask("ping").await, "OK pong");
    let mut c = Conn::login(sim.addr()).await;
    c.send_pairs(&originate("x", "SIP/1002@trunk", &[])).await;
    orr(&mut c, "x").await;
    let stats = ask("stats").await;
    let json: serde_json::Value =
        serde_json::from_str(stats.strip_prefix("OK ").expect("OK")).expect("json");
    assert_eq!(json["originates_total"], 1);
    assert_eq!(json["originates_by_number"]["1002"], 1);
    assert_eq!(ask("max-window 1000").await, "OK 1");
    assert_eq!(ask("sessions").await, "OK 1");
    assert_eq!(
        ask("refuse-logins maybe").await,
        "ERR usage: refuse-logins on|off"
    );
    assert_eq!(ask("drop").await, "OK");
    assert!(c.wait_closed(WAIT).await);
    assert_eq!(ask("refuse-logins on").await, "OK");
    let mut bad = send_login(sim.addr()).await;
    assert!(bad.wait_closed(WAIT).await);
    assert_eq!(ask("refuse-logins off").await, "OK");
    assert_eq!(ask("restart").await, "OK");
    assert_eq!(ask("bogus").await, "ERR unknown command bogus");
    assert!(ask("help").await.starts_with("OK commands:"));
    sim.shutdown().await;
}

#[tokio::test]
async fn instant_answer_answers_and_ends_at_once() {
    let (sim, mut c) = start_logged_in(SimConfig {
        instant_answer: true,
        ..replay_config()
    })
    .await;
    c.send_pairs(&originate("x", "SIP/5550106@trunk", &[]))
        .await;
    assert_eq!(orr(&mut c, "x").await.get("Reason"), Some("4"));
    assert!(sees(&mut c, |m| m.event_name() == Some("Hangup")).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn originate_validation_errors() {
    let (sim, mut c) = start_logged_in(replay_config()).await;
    let invalid: [&[(&str, &str)]; 5] = [
        &[("Action", "Originate"), ("ActionID", "1")],
        &[
            ("Action", "Originate"),
            ("ActionID", "2"),
            ("Channel", "nochannel"),
        ],
        &[
            ("Action", "Originate"),
            ("ActionID", "3"),
            ("Channel", "SIP/1@t"),
            ("Timeout", "soon"),
        ],
        &[("Action", "Hangup"), ("ActionID", "4")],
        &[
            ("Action", "Command"),
            ("ActionID", "5"),
            ("Command", "no such thing"),
        ],
    ];
    for action in invalid {
        c.send_pairs(action).await;
    }
    c.wait_count(5, WAIT).await;
    let msgs: Vec<_> = c
        .got
        .iter()
        .map(|m| m.get("Message").unwrap_or(""))
        .collect();
    assert_eq!(
        msgs,
        [
            "Channel not specified",
            "Invalid channel",
            "Invalid timeout",
            "No channel specified",
            "Command output follows"
        ]
    );
    assert_eq!(c.got[4].get("Response"), Some("Error"));
    assert!(
        c.got[4]
            .get("Output")
            .is_some_and(|o| o.starts_with("No such command"))
    );
    sim.shutdown().await;
}

/// Call timing runs on tokio's clock: with paused time an hour-long call ends at once.
#[tokio::test(start_paused = true)]
async fn call_timing_follows_tokio_paused_time() {
    let sim = start(SimConfig {
        rules: vec![Rule::timed("*", OutcomeKind::Answered, 30_000, 3_600_000)],
        ..replay_config()
    })
    .await;
    let wall = std::time::Instant::now();
    let mut c = Conn::login(sim.addr()).await;
    c.send_pairs(&originate("x", "SIP/1@trunk", &[("Timeout", "60000")]))
        .await;
    let hangup = c
        .wait_for(Duration::from_secs(7200), |m| {
            m.event_name() == Some("Hangup")
        })
        .await;
    assert!(hangup.is_some(), "{:?}", labels(&c.got));
    assert!(
        wall.elapsed() < Duration::from_secs(20),
        "virtual hour took {:?}",
        wall.elapsed()
    );
    sim.shutdown().await;
}
