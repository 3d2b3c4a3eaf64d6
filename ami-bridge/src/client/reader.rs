//! The read side of one connection: frames routed to waiting actions or the event stream,
//! silence judged on the socket itself, and catch-ups on demand.
//!
//! After the process was stopped (`kill -STOP`, a swapped-out host), every timer has run out by
//! the time it runs again, and a timer may be served before the runtime has noticed the bytes
//! the PBX sent meanwhile. So nothing is judged on a timer alone: the socket is read without
//! waiting first, and only a socket that has nothing is silent.
//!
//! Every message is stamped with the moment of the read that completed it, before it is decoded
//! and handed on ([`Message::read_at`]): how late the caller gets to it is not the PBX's doing.
//!
//! [`Message::read_at`]: crate::message::Message::read_at

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant as StdInstant};

use socket2::SockRef;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::events::{ClientEvent, DisconnectReason};
use super::shared::{CatchUp, Shared};
use crate::codec::{Decoder, Frame};
use crate::event::Event;

/// One read of what is waiting; a catch-up reads until the socket is empty, at most this many
/// times (a PBX that never stops sending cannot hold the reader there).
const READ_CHUNK: usize = 64 * 1024;
const MAX_CATCH_UP_READS: usize = 1024;

pub(super) struct Reader<'a> {
    pub(super) shared: &'a Shared,
    pub(super) rd: OwnedReadHalf,
    pub(super) decoder: Decoder,
    pub(super) events: &'a mpsc::UnboundedSender<ClientEvent>,
    /// When the last read returned: the stamp of the messages it completed.
    pub(super) read_at: StdInstant,
}

impl Reader<'_> {
    /// Reads until the connection ends; `silence` is how long the PBX may say nothing at all.
    pub(super) async fn run(
        mut self,
        silence: Duration,
        mut catch_ups: mpsc::UnboundedReceiver<CatchUp>,
    ) -> DisconnectReason {
        let mut heard = Instant::now();
        loop {
            self.deliver();
            tokio::select! {
                biased;
                read = self.rd.read_buf(self.decoder.buffer_mut()) => match read {
                    Ok(0) => return DisconnectReason::ClosedByPeer,
                    Ok(_) => {
                        self.read_at = StdInstant::now();
                        heard = Instant::from_std(self.read_at);
                    }
                    Err(e) => return DisconnectReason::Io(e.to_string()),
                },
                Some(req) = catch_ups.recv() => {
                    match self.read_waiting(MAX_CATCH_UP_READS) {
                        Ok(0) => {}
                        Ok(_) => heard = Instant::now(),
                        Err(reason) => return reason,
                    }
                    let _ = self.events.send(ClientEvent::CaughtUp(req.mark));
                }
                _ = tokio::time::sleep_until(heard + silence) => {
                    // The verdict is the socket's, not the timer's.
                    match self.read_waiting(1) {
                        Ok(0) => return DisconnectReason::Stalled,
                        Ok(_) => heard = Instant::now(),
                        Err(reason) => return reason,
                    }
                }
            }
        }
    }

    fn deliver(&mut self) {
        deliver(self.shared, &mut self.decoder, self.events, self.read_at);
    }

    /// Reads what the socket holds right now, without waiting and whether or not the runtime
    /// has seen it arrive, up to `reads` reads, delivering as it goes. Returns the bytes read;
    /// the end of the connection comes after everything before it was delivered.
    fn read_waiting(&mut self, reads: usize) -> Result<usize, DisconnectReason> {
        let socket = SockRef::from(self.rd.as_ref());
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut total = 0;
        let mut done = 0;
        while done < reads {
            match (&*socket).read(&mut chunk) {
                Ok(0) => return Err(DisconnectReason::ClosedByPeer),
                Ok(n) => {
                    self.read_at = StdInstant::now();
                    self.decoder.extend(&chunk[..n]);
                    deliver(self.shared, &mut self.decoder, self.events, self.read_at);
                    total += n;
                    done += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(DisconnectReason::Io(e.to_string())),
            }
        }
        Ok(total)
    }
}

/// Routes every complete frame held, stamped `read_at`: responses to their actions, events to
/// the stream.
fn deliver(
    shared: &Shared,
    decoder: &mut Decoder,
    events: &mpsc::UnboundedSender<ClientEvent>,
    read_at: StdInstant,
) {
    while let Some(frame) = decoder.next_frame() {
        match frame {
            Ok(Frame::Message(mut m)) => {
                m.set_read_at(read_at);
                if let Some(m) = shared.waiters.route(m)
                    && let Some(e) = Event::from_message(m)
                {
                    let _ = events.send(ClientEvent::Event(e));
                }
            }
            Ok(Frame::Banner(_)) => {}
            Err(e) => warn!(error = %e, "AMI decode error; message skipped"),
        }
    }
}
