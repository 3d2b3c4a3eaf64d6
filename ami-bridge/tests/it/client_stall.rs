//! The client's own process stops (`kill -STOP`, a swapped-out host) while the PBX goes on
//! talking: when it runs again, the bytes already waiting in its socket are read and delivered
//! before anything is judged. The stopped "process" is this test's current-thread runtime,
//! blocked with `std::thread::sleep`; the PBX is a server on its own thread and runtime that
//! sends recorded events and answers each Ping a little late, so a Ping is always in flight
//! when the process stops.

use std::time::Duration;

use ami_bridge::{AmiClient, ClientConfig, ClientEvent, Decoder, Frame, Message, MessageKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helpers;

const PING_EVERY: Duration = Duration::from_millis(100);
const PING_TIMEOUT: Duration = Duration::from_millis(300);
/// Later than a Ping's sending, earlier than the stop's end: the Pong arrives during the stop.
const PONG_DELAY: Duration = Duration::from_millis(150);
/// Longer than ping interval + ping timeout: every keepalive timer has run out at resume.
const STOP: Duration = Duration::from_millis(1000);

/// A PBX on its own thread: answers the Login, answers every Ping after [`PONG_DELAY`] (and
/// reports it got one), and writes whatever bytes the test hands it.
struct Pbx {
    addr: String,
    pings: mpsc::UnboundedReceiver<()>,
    send: mpsc::UnboundedSender<Vec<u8>>,
}

impl Pbx {
    fn start() -> Pbx {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (ping_tx, pings) = mpsc::unbounded_channel();
        let (send, mut to_send) = mpsc::unbounded_channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = listener.local_addr().expect("addr").to_string();
                addr_tx.send(addr).expect("addr to the test");
                let (sock, _) = listener.accept().await.expect("accept");
                let (mut rd, mut wr) = sock.into_split();
                let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
                tokio::spawn(async move {
                    while let Some(bytes) = out_rx.recv().await {
                        if wr.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
                let _ = out_tx.send(b"Asterisk Call Manager/9.0.0\r\n".to_vec());
                let forward = out_tx.clone();
                tokio::spawn(async move {
                    while let Some(bytes) = to_send.recv().await {
                        let _ = forward.send(bytes);
                    }
                });
                let mut dec = Decoder::server();
                loop {
                    while let Some(Ok(Frame::Message(action))) = dec.next_frame() {
                        let id = action.action_id().unwrap_or("").to_string();
                        let action_name = action.get("Action").unwrap_or("").to_ascii_lowercase();
                        let reply = match action_name.as_str() {
                            "login" => response(&id, &[("Message", "Authentication accepted")]),
                            "ping" => {
                                let _ = ping_tx.send(());
                                let pong = response(&id, &[("Ping", "Pong")]);
                                let out = out_tx.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(PONG_DELAY).await;
                                    let _ = out.send(pong);
                                });
                                continue;
                            }
                            _ => response(&id, &[]),
                        };
                        let _ = out_tx.send(reply);
                    }
                    match rd.read_buf(dec.buffer_mut()).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("server address");
        Pbx { addr, pings, send }
    }

    /// Waits for a Ping sent from now on (its Pong comes [`PONG_DELAY`] later).
    async fn fresh_ping(&mut self) {
        while self.pings.try_recv().is_ok() {}
        tokio::time::timeout(Duration::from_secs(5), self.pings.recv())
            .await
            .expect("a Ping in time")
            .expect("server running");
    }
}

fn response(id: &str, rest: &[(&str, &str)]) -> Vec<u8> {
    let mut pairs = vec![("Response", "Success"), ("ActionID", id)];
    pairs.extend_from_slice(rest);
    let mut out = Vec::new();
    Message::from_pairs(&pairs).write_to(&mut out);
    out
}

/// The events of a recorded call, as Asterisk sent them.
fn recorded_events(name: &str) -> Vec<Message> {
    let mut d = Decoder::client();
    d.extend(&helpers::load(name).received);
    let mut out = Vec::new();
    while let Some(frame) = d.next_frame() {
        if let Frame::Message(m) = frame.expect("recorded bytes decode")
            && m.kind() == MessageKind::Event
        {
            out.push(m);
        }
    }
    out
}

/// A client of `pbx` with short keepalive timers and no reconnection.
async fn connect(pbx: &Pbx) -> (AmiClient, mpsc::UnboundedReceiver<ClientEvent>) {
    let mut c = ClientConfig::new(pbx.addr.clone(), "dialer", "dialer");
    c.ping_interval = PING_EVERY;
    c.ping_timeout = PING_TIMEOUT;
    c.reconnect = false;
    AmiClient::connect(c).await.expect("login")
}

#[tokio::test]
async fn after_a_process_stop_the_waiting_bytes_are_read_before_the_connection_is_judged() {
    let mut pbx = Pbx::start();
    let (_client, mut rx) = connect(&pbx).await;
    // Each stop is a coin toss for a reader that is not asked first; a few of them make a
    // wrong verdict all but certain to show.
    for (round, name) in [
        "busy",
        "answered",
        "no_answer",
        "congestion",
        "decline",
        "busy",
    ]
    .into_iter()
    .enumerate()
    {
        let sent = recorded_events(name);
        let mut bytes = Vec::new();
        for m in &sent {
            m.write_to(&mut bytes);
        }
        pbx.fresh_ping().await;
        pbx.send.send(bytes).expect("server running");
        // The process stops: nothing of the client runs until this returns.
        std::thread::sleep(STOP);
        let mut got = Vec::new();
        while got.len() < sent.len() {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(ClientEvent::Event(e))) => got.push(e.message().clone()),
                Ok(Some(ClientEvent::Disconnected { reason })) => {
                    panic!("round {round} ({name}): judged {reason:?} with the PBX's bytes unread")
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!(
                    "round {round} ({name}): {} of {} events delivered",
                    got.len(),
                    sent.len()
                ),
            }
        }
        assert_eq!(got, sent, "round {round} ({name}): the events, in order");
    }
    // And the connection is still alive a keepalive window later.
    let later = tokio::time::timeout(PING_EVERY * 8, async {
        loop {
            match rx.recv().await {
                Some(ClientEvent::Disconnected { reason }) => return Some(reason),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await;
    assert!(later.is_err(), "disconnected after the stops: {later:?}");
}

#[tokio::test]
async fn a_catch_up_mark_follows_every_event_that_had_arrived() {
    let mut pbx = Pbx::start();
    let (client, mut rx) = connect(&pbx).await;
    let sent: Vec<Message> = ["answered", "busy", "answered_remote_bye"]
        .into_iter()
        .flat_map(recorded_events)
        .collect();
    let mut bytes = Vec::new();
    for m in &sent {
        m.write_to(&mut bytes);
    }
    pbx.fresh_ping().await;
    pbx.send.send(bytes).expect("server running");
    std::thread::sleep(STOP);
    // Asked before the reader has run at all: the mark still comes after all of it.
    let mark = client.catch_up().expect("connected");
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(ClientEvent::Event(e))) => got.push(e.message().clone()),
            Ok(Some(ClientEvent::CaughtUp(n))) if n == mark => break,
            Ok(Some(ClientEvent::Disconnected { reason })) => panic!("disconnected: {reason:?}"),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("no mark {mark}: {} events", got.len()),
        }
    }
    assert_eq!(got, sent, "every event before the mark, in order");
    // A later mark has a later number.
    assert!(client.catch_up().expect("connected") > mark);
}
