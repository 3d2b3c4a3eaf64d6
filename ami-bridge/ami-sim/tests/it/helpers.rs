//! A raw AMI client on the codec, transcript loading, and the comparison of two message
//! streams by event names, header names and id relations.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ami_bridge::{Decoder, Frame, Message, MessageKind};
use ami_sim::{OutcomeKind, Rule, SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

pub const SECRET: &str = "sim-secret";

pub fn transcripts_dir() -> PathBuf {
    match std::env::var_os("AMI_TRANSCRIPTS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ami-transcripts"),
    }
}

pub fn read_transcript(name: &str) -> Vec<u8> {
    let p = transcripts_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Banner and messages of a recorded `.ami` file.
pub fn recorded(name: &str) -> (String, Vec<Message>) {
    let mut d = Decoder::client();
    d.extend(&read_transcript(&format!("{name}.ami")));
    let mut banner = String::new();
    let mut out = Vec::new();
    while let Some(f) = d.next_frame() {
        match f.expect("recording decodes") {
            Frame::Banner(b) => banner = b,
            Frame::Message(m) => out.push(m),
        }
    }
    (banner, out)
}

/// Actions of a recorded `.sent` file.
pub fn sent_actions(name: &str) -> Vec<Message> {
    let mut d = Decoder::server();
    d.extend(&read_transcript(&format!("{name}.sent")));
    std::iter::from_fn(|| d.next_frame())
        .map(|f| match f.expect("sent decodes") {
            Frame::Message(m) => m,
            Frame::Banner(b) => panic!("banner in .sent: {b}"),
        })
        .collect()
}

/// For each action of the `.txt` timeline, how many messages had arrived before it was sent.
pub fn messages_before_actions(name: &str) -> Vec<usize> {
    let txt = String::from_utf8(read_transcript(&format!("{name}.txt"))).expect("utf8");
    let mut action_times = Vec::new();
    let mut message_times = Vec::new();
    let mut in_received = false;
    for line in txt.lines() {
        if let Some(t) = line.strip_prefix("--- t=") {
            action_times.push(t.trim().parse::<u64>().expect("action time"));
        } else if line.starts_with("Received messages") {
            in_received = true;
        } else if line.starts_with("Received message sequence") {
            in_received = false;
        } else if in_received {
            let mut parts = line.split_whitespace();
            if let (Some(t), Some(what)) = (parts.next(), parts.next()) {
                // The banner is not a message; unrelated PeerStatus events are dropped.
                if what != "banner:" && what != "PeerStatus" {
                    message_times.push(t.parse::<u64>().expect("message time"));
                }
            }
        }
    }
    action_times
        .iter()
        .map(|ta| message_times.iter().filter(|tm| **tm < *ta).count())
        .collect()
}

/// Rules giving each recorded number its recorded outcome, with short times.
pub fn replay_config() -> SimConfig {
    use OutcomeKind::*;
    SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        secret: SECRET.into(),
        login_failure_delay_ms: 300,
        shutdown_event_delay_ms: 100,
        restart_downtime_ms: 50,
        rules: vec![
            Rule::timed("1001", Answered, 100, 300),
            Rule::timed("1011", Answered, 100, 300),
            Rule::timed("1015", Answered, 100, 300),
            Rule::timed("1012", RemoteHangup, 100, 300),
            Rule::timed("1002", Busy, 100, 0),
            Rule::timed("1013", Busy, 100, 0),
            Rule::timed("1014", Busy, 100, 0),
            Rule::timed("1016", Busy, 100, 0),
            Rule::timed("1003", NoAnswer, 0, 0),
            Rule::timed("1004", Congestion, 100, 0),
            Rule::timed("1005", NotFound, 100, 0),
            Rule::timed("1006", Decline, 100, 0),
            Rule::timed("1008", Unreachable, 0, 0),
            Rule::timed("300?", Answered, 100, 60_000),
            Rule::timed("2001", Answered, 400, 300),
            Rule::timed("2002", Busy, 150, 0),
            Rule::timed("answer", Answered, 0, 300),
            Rule::timed("busy", Busy, 100, 0),
            Rule::timed("congestion", Congestion, 0, 0),
            Rule::timed("noanswer", NoAnswer, 0, 0),
        ],
        ..Default::default()
    }
}

pub async fn start(cfg: SimConfig) -> Simulator {
    Simulator::start(cfg).await.expect("simulator starts")
}

/// A simulator and one raw connection logged in to it.
pub async fn start_logged_in(cfg: SimConfig) -> (Simulator, Conn) {
    let sim = start(cfg).await;
    let c = Conn::login(sim.addr()).await;
    (sim, c)
}

/// A raw AMI connection.
pub struct Conn {
    pub stream: TcpStream,
    pub dec: Decoder,
    pub banner: Option<String>,
    pub got: Vec<Message>,
    pub closed: bool,
}

impl Conn {
    pub async fn connect(addr: std::net::SocketAddr) -> Conn {
        let stream = timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Conn {
            stream,
            dec: Decoder::client(),
            banner: None,
            got: Vec::new(),
            closed: false,
        }
    }

    pub async fn send(&mut self, m: &Message) {
        let mut v = Vec::new();
        m.write_to(&mut v);
        self.stream.write_all(&v).await.expect("send");
    }

    pub async fn send_pairs(&mut self, pairs: &[(&str, &str)]) {
        self.send(&Message::from_pairs(pairs)).await;
    }

    /// Reads once (up to `wait`), decoding what came. `false` if nothing came.
    pub async fn read_some(&mut self, wait: Duration) -> bool {
        if self.closed {
            return false;
        }
        match timeout(wait, self.stream.read_buf(self.dec.buffer_mut())).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                false
            }
            Ok(Ok(_)) => {
                while let Some(f) = self.dec.next_frame() {
                    match f {
                        Ok(Frame::Banner(b)) => self.banner = Some(b),
                        Ok(Frame::Message(m)) => self.got.push(m),
                        Err(e) => panic!("decode error {e}"),
                    }
                }
                true
            }
        }
    }

    /// Reads until `n` messages in total arrived (or the time is up, or the peer closed).
    pub async fn wait_count(&mut self, n: usize, within: Duration) {
        let end = Instant::now() + within;
        while self.got.len() < n && !self.closed {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.read_some(left).await;
        }
    }

    /// Reads until a message satisfies `f`; returns its index.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        f: impl Fn(&Message) -> bool,
    ) -> Option<usize> {
        let end = Instant::now() + within;
        let mut seen = 0;
        loop {
            if let Some(i) = self.got[seen..].iter().position(&f) {
                return Some(seen + i);
            }
            seen = self.got.len();
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || self.closed {
                return None;
            }
            self.read_some(left).await;
        }
    }

    pub async fn wait_closed(&mut self, within: Duration) -> bool {
        let end = Instant::now() + within;
        while !self.closed {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.read_some(left).await;
        }
        true
    }

    /// Sends `CoreShowChannels` and reads until the list ends; the index of its last event.
    pub async fn list_channels(&mut self, action_id: &str, within: Duration) -> Option<usize> {
        self.send_pairs(&[("Action", "CoreShowChannels"), ("ActionID", action_id)])
            .await;
        self.wait_for(within, |m| {
            m.event_name() == Some("CoreShowChannelsComplete")
        })
        .await
    }

    pub async fn login(addr: std::net::SocketAddr) -> Conn {
        let mut c = Conn::connect(addr).await;
        c.send_pairs(&[
            ("Action", "Login"),
            ("ActionID", "login-1"),
            ("Username", "dialer"),
            ("Secret", SECRET),
        ])
        .await;
        let ok = c
            .wait_for(Duration::from_secs(5), |m| {
                m.event_name() == Some("SuccessfulAuth")
            })
            .await;
        assert!(ok.is_some(), "login: {:?}", c.got);
        c.got.clear();
        c
    }
}

/// `Response:Success` or the event name.
pub fn label(m: &Message) -> String {
    match m.kind() {
        MessageKind::Response => format!("Response:{}", m.first_value().unwrap_or("")),
        _ => m.first_value().unwrap_or("").to_string(),
    }
}

pub fn labels(ms: &[Message]) -> Vec<String> {
    ms.iter().map(label).collect()
}

/// Values that vary by time or run and are compared through their relations instead.
const VOLATILE: &[&str] = &[
    "EventTV",
    "SessionTV",
    "SessionID",
    "Uptime",
    "LastReload",
    "LocalAddress",
    "RemoteAddress",
    "Timestamp",
    "Value",
    "AppData",
    "ApplicationData",
    "Duration",
    "Output",
];

/// Gives generated ids and channel names tokens in order of first appearance, so two runs
/// compare by the relations between ids, not the ids.
#[derive(Default)]
pub struct Canon {
    ids: HashMap<String, String>,
    chans: HashMap<String, String>,
}

fn is_uniqueid(v: &str) -> bool {
    match v.split_once('.') {
        Some((a, b)) => {
            a.len() >= 6
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// `SIP/trunk-0000000b` or `Local/x@ctx-00000000;1`: (base with the sequence removed, suffix).
fn channel_parts(v: &str) -> Option<(String, String)> {
    let (main, suffix) = match v.rsplit_once(';') {
        Some((m, s)) if s == "1" || s == "2" => (m, format!(";{s}")),
        _ => (v, String::new()),
    };
    let (base, seq) = main.rsplit_once('-')?;
    if seq.len() == 8 && seq.bytes().all(|c| c.is_ascii_hexdigit()) && base.contains('/') {
        Some((base.to_string(), suffix))
    } else {
        None
    }
}

impl Canon {
    pub fn value(&mut self, v: &str) -> String {
        if is_uniqueid(v) {
            let n = self.ids.len();
            return self
                .ids
                .entry(v.to_string())
                .or_insert(format!("U{n}"))
                .clone();
        }
        if let Some((base, suffix)) = channel_parts(v) {
            let key = v.trim_end_matches(&suffix).to_string();
            let n = self.chans.len();
            let tok = self.chans.entry(key).or_insert(format!("CHAN{n}")).clone();
            return format!("{base}-{tok}{suffix}");
        }
        // ChanVariable values hold `NAME=value`: the value is the Originate's, kept as is.
        v.to_string()
    }

    pub fn key(&mut self, k: &str) -> String {
        match k
            .strip_prefix("ChanVariable(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(chan) => format!("ChanVariable({})", self.value(chan)),
            None => k.to_string(),
        }
    }

    /// Header names in order, and the comparable `(name, value)` pairs.
    pub fn message(&mut self, m: &Message) -> (Vec<String>, Vec<(String, String)>) {
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (k, v) in m.iter() {
            let k = self.key(k);
            names.push(k.clone());
            if !VOLATILE.contains(&k.as_str()) {
                let v = self.value(v);
                values.push((k, v));
            }
        }
        (names, values)
    }
}

/// Compares two streams message by message: names, header names in order, and values after
/// canonicalisation. Panics with a readable difference.
pub fn assert_same_stream(what: &str, expected: &[Message], got: &[Message]) {
    assert_eq!(
        labels(expected),
        labels(got),
        "{what}: message sequence differs"
    );
    let (mut ce, mut cg) = (Canon::default(), Canon::default());
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        let (en, ev) = ce.message(e);
        let (gn, gv) = cg.message(g);
        assert_eq!(en, gn, "{what}: header names of message {i} ({})", label(e));
        assert_eq!(
            ev,
            gv,
            "{what}: values/relations of message {i} ({})",
            label(e)
        );
    }
}

/// Without OriginateResponse, plus the OriginateResponses on their own.
pub fn split_orr(ms: &[Message]) -> (Vec<Message>, Vec<Message>) {
    ms.iter()
        .cloned()
        .partition(|m| m.event_name() != Some("OriginateResponse"))
}

/// Drops events the simulator never sends (PeerStatus from unrelated SIP peers).
pub fn without_unrelated(ms: Vec<Message>) -> Vec<Message> {
    ms.into_iter()
        .filter(|m| m.event_name() != Some("PeerStatus"))
        .collect()
}

/// Rewrites recorded actions for the simulator: its secret, shorter ring timeouts, and the
/// simulator's own channel names where the recording named its channels.
pub fn rewrite_action(
    m: &Message,
    chan_map: &HashMap<String, String>,
    timeout_ms: Option<u64>,
) -> Message {
    let pairs: Vec<(String, String)> = m
        .iter()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("Secret") {
                SECRET.to_string()
            } else if k.eq_ignore_ascii_case("Timeout") && timeout_ms.is_some() {
                timeout_ms.map(|t| t.to_string()).unwrap_or_default()
            } else if k.eq_ignore_ascii_case("Channel") {
                chan_map.get(v).cloned().unwrap_or_else(|| v.to_string())
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect();
    Message::from_pairs(&pairs)
}

/// Recorded channel names -> simulator channel names, by order of their Newchannel.
pub fn channel_map(recorded: &[Message], got: &[Message]) -> HashMap<String, String> {
    let names = |ms: &[Message]| -> Vec<String> {
        ms.iter()
            .filter(|m| m.event_name() == Some("Newchannel"))
            .filter_map(|m| m.get("Channel").map(str::to_string))
            .collect()
    };
    names(recorded).into_iter().zip(names(got)).collect()
}
