//! What the client stamps on the way through the socket: when an action's bytes were written
//! (`Response::written_at`) and when a message's bytes were read (`Message::read_at`). With
//! `io_thread` the stamps are the socket's even while the caller's runtime cannot run (this
//! test's current-thread runtime, blocked with `std::thread::sleep`); without it, the read waits
//! for the runtime. The PBX is a plain socket on its own thread that notes when it read the
//! action and when it wrote its answer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ami_bridge::{Action, AmiClient, ClientConfig, ClientEvent, Decoder, Frame};

/// How long the PBX takes to answer, and how long the caller's runtime is blocked meanwhile.
const PBX_TIME: Duration = Duration::from_millis(50);
const BLOCKED: Duration = Duration::from_millis(600);

/// When the PBX read the action and when it wrote its response and an event.
struct PbxTimes {
    action_read: Instant,
    answered: Instant,
}

/// A PBX that logs the client in, reads one action, answers it and sends a `Newchannel`
/// [`PBX_TIME`] later, then holds the socket until the client closes it.
fn pbx() -> (String, std::sync::mpsc::Receiver<PbxTimes>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        sock.set_nodelay(true).expect("nodelay");
        sock.write_all(b"Asterisk Call Manager/9.0.0\r\n")
            .expect("banner");
        let mut dec = Decoder::server();
        let mut next_action = |sock: &mut std::net::TcpStream| loop {
            if let Some(Ok(Frame::Message(m))) = dec.next_frame() {
                return (Instant::now(), m.action_id().unwrap_or("").to_string());
            }
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).expect("read");
            assert!(n > 0, "client closed early");
            dec.extend(&chunk[..n]);
        };
        let (_, login) = next_action(&mut sock);
        sock.write_all(format!("Response: Success\r\nActionID: {login}\r\n\r\n").as_bytes())
            .expect("login response");
        let (action_read, id) = next_action(&mut sock);
        std::thread::sleep(PBX_TIME);
        let answer = format!(
            "Response: Success\r\nActionID: {id}\r\nPing: Pong\r\n\r\n\
             Event: Newchannel\r\nChannel: PJSIP/trunk-00000001\r\nUniqueid: u-1\r\n\r\n"
        );
        let answered = Instant::now();
        sock.write_all(answer.as_bytes()).expect("answer");
        let _ = tx.send(PbxTimes {
            action_read,
            answered,
        });
        let mut rest = [0u8; 4096];
        while sock.read(&mut rest).is_ok_and(|n| n > 0) {}
    });
    (addr, rx)
}

/// Sends a Ping, blocks this runtime for [`BLOCKED`] right after, then returns the Ping's
/// response write stamp, the Newchannel's read stamp and the PBX's own times.
async fn ping_while_blocked(io_thread: bool) -> (Option<Instant>, Option<Instant>, PbxTimes) {
    let (addr, times) = pbx();
    let mut config = ClientConfig::new(addr, "dialer", "dialer");
    config.reconnect = false;
    config.io_thread = io_thread;
    let (client, mut events) = AmiClient::connect(config).await.expect("connect");
    let sender = client.clone();
    let ping = tokio::spawn(async move { sender.send(&Action::ping()).await });
    // The Ping is handed to the connection, then this runtime stops running anything.
    tokio::task::yield_now().await;
    std::thread::sleep(BLOCKED);
    let response = ping.await.expect("ping task").expect("pong");
    let read_at = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(ClientEvent::Event(e))) => break e.read_at(),
            Ok(Some(_)) => {}
            other => panic!("no Newchannel: {other:?}"),
        }
    };
    let times = times.recv().expect("pbx times");
    (response.written_at, read_at, times)
}

#[tokio::test(flavor = "current_thread")]
async fn the_stamps_are_the_sockets_while_the_callers_runtime_is_blocked() {
    let (written, read, pbx) = ping_while_blocked(true).await;
    let written = written.expect("written stamp");
    let read = read.expect("read stamp");
    // The PBX's thread may wake on the bytes before the writer has taken its stamp.
    let slack = Duration::from_millis(5);
    assert!(
        written <= pbx.action_read + slack,
        "written after the PBX read it"
    );
    // Wide margins (a loaded machine schedules threads late), well short of the block.
    let margin = BLOCKED / 3;
    assert!(
        pbx.action_read.saturating_duration_since(written) < margin,
        "written {:?} before the PBX read it",
        pbx.action_read.saturating_duration_since(written)
    );
    assert!(read >= pbx.answered);
    assert!(
        read - pbx.answered < margin,
        "read {:?} after the PBX wrote it, though the caller was blocked for {BLOCKED:?}",
        read - pbx.answered
    );
    let pbx_time = read - written;
    assert!(
        pbx_time + slack >= PBX_TIME && pbx_time < PBX_TIME + margin,
        "{pbx_time:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn on_the_callers_runtime_the_read_waits_for_it() {
    // The same without a thread of its own: the bytes wait in the socket until the runtime
    // runs again, and the stamp says so (the dispatcher asks for `io_thread`).
    let (_, read, pbx) = ping_while_blocked(false).await;
    let read = read.expect("read stamp");
    assert!(
        read - pbx.answered > BLOCKED / 2,
        "{:?}",
        read - pbx.answered
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_on_its_own_thread_ends_when_dropped() {
    // Dropping every handle ends the connection and its thread.
    let (addr, _times) = pbx();
    let mut config = ClientConfig::new(addr, "dialer", "dialer");
    config.io_thread = true;
    let (client, mut events) = AmiClient::connect(config).await.expect("connect");
    assert!(matches!(
        events.recv().await,
        Some(ClientEvent::Connected { reconnected: false })
    ));
    drop(client);
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while events.recv().await.is_some() {}
    })
    .await;
    assert!(
        end.is_ok(),
        "the event stream ends once the client is dropped"
    );
}
