//! One AMI connection: banner, actions in, responses and events out, as Asterisk 20's manager
//! does it (including sleeping a second before a failed Login, and holding everything while a
//! synchronous Originate runs). Output goes into one buffer, written as the socket takes it.
//!
//! This file is the connection (reading, writing, faults, waits); `actions` answers each action,
//! `security_events` writes the security events a session causes.

mod actions;
mod security_events;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ami_bridge::{Decoder, Frame, Message};
use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Sleep;

use crate::pbx::{Fault, Outbound, Pbx};

pub const BANNER: &[u8] = b"Asterisk Call Manager/9.0.0\r\n";

/// Bytes the `send_garbage` fault writes: NULs, invalid UTF-8, a line without a colon, a key
/// with a NUL; it ends with a blank line so a tolerant reader can resynchronise.
pub const GARBAGE: &[u8] =
    b"\x00\x01\xfe\xffgarbage without a colon\r\n\xc3\x28Key\x00: \xa0\xa1value\r\n\r\n";

/// A client this far behind is dropped, as Asterisk drops one whose writes time out.
const MAX_PENDING_OUTPUT: usize = 64 * 1024 * 1024;

static SESSION_IDS: AtomicU64 = AtomicU64::new(0x7f5b_5400_0ee0);

/// Something the session waits for before it reads or sends anything else.
enum Pending {
    LoginFailed {
        action_id: Option<String>,
        sleep: Pin<Box<Sleep>>,
    },
    SyncOriginate {
        action_id: Option<String>,
        rx: oneshot::Receiver<bool>,
    },
}

enum PendingDone {
    LoginFailed(Option<String>),
    SyncOriginate(Option<String>, bool),
}

impl Pending {
    async fn wait(&mut self) -> PendingDone {
        match self {
            Pending::LoginFailed { action_id, sleep } => {
                sleep.as_mut().await;
                PendingDone::LoginFailed(action_id.take())
            }
            Pending::SyncOriginate { action_id, rx } => {
                let ok = rx.await.unwrap_or(false);
                PendingDone::SyncOriginate(action_id.take(), ok)
            }
        }
    }
}

struct SessionGuard(Arc<Pbx>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) struct Session {
    pbx: Arc<Pbx>,
    peer: SocketAddr,
    local: SocketAddr,
    session_id: String,
    out: BytesMut,
    dec: Decoder,
    events: broadcast::Receiver<Outbound>,
    authed: bool,
    send_events: bool,
    stalled: bool,
    /// Missed events while stalled are expected; otherwise falling behind closes the session.
    was_stalled: bool,
    /// Write what is buffered, then close.
    closing: bool,
    pending: Option<Pending>,
}

pub(crate) async fn serve(pbx: Arc<Pbx>, stream: TcpStream, peer: SocketAddr, local: SocketAddr) {
    pbx.sessions.fetch_add(1, Ordering::SeqCst);
    let _guard = SessionGuard(pbx.clone());
    pbx.stats.connection();
    let faults = pbx.faults.subscribe();
    let mut s = Session {
        events: pbx.subscribe(),
        pbx,
        peer,
        local,
        session_id: format!("0x{:x}", SESSION_IDS.fetch_add(0x40, Ordering::Relaxed)),
        out: BytesMut::with_capacity(16 * 1024),
        dec: Decoder::server(),
        authed: false,
        send_events: true,
        stalled: false,
        was_stalled: false,
        closing: false,
        pending: None,
    };
    s.out.put_slice(BANNER);
    if let Err(e) = s.run(stream, faults).await {
        tracing::debug!(peer = %s.peer, error = %e, "AMI session ended");
    }
}

impl Session {
    async fn run(
        &mut self,
        mut stream: TcpStream,
        mut faults: broadcast::Receiver<Fault>,
    ) -> std::io::Result<()> {
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.split();
        loop {
            if self.closing && self.out.is_empty() {
                let _ = wr.shutdown().await;
                return Ok(());
            }
            if self.out.len() > MAX_PENDING_OUTPUT {
                return Ok(());
            }
            let idle = !self.stalled && self.pending.is_none() && !self.closing;
            let waiting = !self.stalled && self.pending.is_some();
            let pending = &mut self.pending;
            tokio::select! {
                biased;
                fault = faults.recv() => match fault {
                    Ok(Fault::Drop) | Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    Ok(Fault::Stall) => {
                        self.stalled = true;
                        self.was_stalled = true;
                    }
                    Ok(Fault::Resume) => self.stalled = false,
                    Ok(Fault::Garbage) => self.out.put_slice(GARBAGE),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                },
                done = async {
                    match pending.as_mut() {
                        Some(p) => p.wait().await,
                        None => std::future::pending().await,
                    }
                }, if waiting => {
                    self.pending = None;
                    self.finish_pending(done);
                    self.process_input();
                }
                read = rd.read_buf(self.dec.buffer_mut()), if idle => {
                    match read {
                        Ok(0) | Err(_) => return Ok(()),
                        Ok(_) => self.process_input(),
                    }
                }
                ev = self.events.recv(), if idle => {
                    if !self.on_outbound(ev) {
                        return Ok(());
                    }
                    // Take whatever else is queued so it goes out in one write.
                    for _ in 0..256 {
                        match self.events.try_recv() {
                            Ok(item) => {
                                if !self.on_outbound(Ok(item)) {
                                    return Ok(());
                                }
                            }
                            Err(_) => break,
                        }
                        if self.closing {
                            break;
                        }
                    }
                }
                written = wr.write(&self.out), if !self.out.is_empty() && !self.stalled => {
                    match written {
                        Ok(0) | Err(_) => return Ok(()),
                        Ok(n) => self.out.advance(n),
                    }
                }
            }
        }
    }

    /// `false`: close the session now.
    fn on_outbound(&mut self, item: Result<Outbound, broadcast::error::RecvError>) -> bool {
        match item {
            Ok(Outbound::Events(bytes)) => {
                if self.authed && self.send_events {
                    self.out.put_slice(&bytes);
                }
                true
            }
            Ok(Outbound::Shutdown(bytes)) => {
                if self.authed && self.send_events {
                    self.out.put_slice(&bytes);
                }
                self.closing = true;
                true
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                if self.authed && !self.was_stalled {
                    tracing::warn!(peer = %self.peer, missed = n, "AMI client too slow, dropping it");
                    return false;
                }
                true
            }
            Err(broadcast::error::RecvError::Closed) => false,
        }
    }

    fn process_input(&mut self) {
        while self.pending.is_none() && !self.closing {
            match self.dec.next_frame() {
                None => return,
                Some(Ok(Frame::Message(m))) => self.handle(&m),
                // Oversized input and stray banners are ignored, as Asterisk ignores junk.
                Some(Ok(Frame::Banner(_))) | Some(Err(_)) => {}
            }
        }
    }

    fn finish_pending(&mut self, done: PendingDone) {
        match done {
            PendingDone::LoginFailed(id) => {
                self.response("Error", id.as_deref(), "Authentication failed");
                self.closing = true;
            }
            PendingDone::SyncOriginate(id, true) => {
                self.response("Success", id.as_deref(), "Originate successfully queued")
            }
            PendingDone::SyncOriginate(id, false) => {
                self.response("Error", id.as_deref(), "Originate failed")
            }
        }
    }

    fn response(&mut self, status: &str, action_id: Option<&str>, message: &str) {
        self.reply(status, action_id, &[("Message", message)]);
    }

    /// `Response`, the `ActionID` when the action had one, then `rest`.
    fn reply(&mut self, status: &str, action_id: Option<&str>, rest: &[(&str, &str)]) {
        let mut pairs: Vec<(&str, &str)> = vec![("Response", status)];
        if let Some(id) = action_id {
            pairs.push(("ActionID", id));
        }
        pairs.extend_from_slice(rest);
        self.write_pairs(&pairs);
    }

    fn write_pairs(&mut self, pairs: &[(&str, &str)]) {
        let mut v = Vec::with_capacity(128);
        Message::from_pairs(pairs).write_to(&mut v);
        self.out.put_slice(&v);
    }
}
