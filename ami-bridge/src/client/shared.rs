//! What the handles and the connection task share: the configuration, the waiting actions, the
//! writer and catch-up requests of the socket of the moment, and the closing flag, shutdown and
//! state watches; and sending one action through them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::config::ClientConfig;
use super::correlation::{Response, Waiters};
use super::error::AmiError;
use super::events::ConnectionState;
use crate::action::Action;

/// A request to read what is waiting in the socket now and deliver it, then put
/// [`ClientEvent::CaughtUp`] with `mark` on the event stream.
///
/// [`ClientEvent::CaughtUp`]: super::events::ClientEvent::CaughtUp
#[derive(Debug)]
pub(super) struct CatchUp {
    pub(super) mark: u64,
}

/// One action's bytes, to be written.
pub(super) struct Outgoing {
    pub(super) action_id: String,
    pub(super) bytes: Vec<u8>,
}

/// What the connection task of one socket receives: actions to write, catch-up requests.
pub(super) struct ConnChannels {
    pub(super) writes: mpsc::Receiver<Outgoing>,
    pub(super) catch_ups: mpsc::UnboundedReceiver<CatchUp>,
}

/// Distinguishes the ActionIDs of clients in one process (easier to follow in a PBX's logs).
static CLIENT_SEQ: AtomicU64 = AtomicU64::new(1);

pub(super) struct Shared {
    pub(super) config: ClientConfig,
    pub(super) waiters: Waiters,
    writer: Mutex<Option<mpsc::Sender<Outgoing>>>,
    catch_up: Mutex<Option<mpsc::UnboundedSender<CatchUp>>>,
    /// The number of the last catch-up mark asked for.
    marks: AtomicU64,
    seq: AtomicU64,
    id_prefix: String,
    pub(super) closing: AtomicBool,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) state: watch::Sender<ConnectionState>,
}

impl Shared {
    pub(super) fn new(config: ClientConfig) -> Shared {
        let (shutdown, _) = watch::channel(false);
        let (state, _) = watch::channel(ConnectionState::Connected);
        Shared {
            id_prefix: format!("c{}", CLIENT_SEQ.fetch_add(1, Ordering::Relaxed)),
            config,
            waiters: Waiters::default(),
            writer: Mutex::new(None),
            catch_up: Mutex::new(None),
            marks: AtomicU64::new(0),
            seq: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            shutdown,
            state,
        }
    }

    fn next_action_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.id_prefix)
    }

    pub(super) async fn send(
        &self,
        action: &Action,
        timeout: Duration,
    ) -> Result<Response, AmiError> {
        let id = self.next_action_id();
        let mut bytes = Vec::with_capacity(256);
        action.encode(&id, &mut bytes)?;
        let writer = self
            .writer
            .lock()
            .map_err(|_| AmiError::Closed)?
            .clone()
            .ok_or(if self.closing.load(Ordering::SeqCst) {
                AmiError::Closed
            } else {
                AmiError::NotConnected
            })?;
        let rx = self.waiters.register(&id)?;
        let out = Outgoing {
            action_id: id.clone(),
            bytes,
        };
        if writer.send(out).await.is_err() {
            self.waiters.forget(&id);
            return Err(AmiError::Disconnected);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AmiError::Disconnected),
            Err(_) => {
                self.waiters.forget(&id);
                Err(AmiError::Timeout {
                    action: action.name().to_string(),
                    timeout,
                })
            }
        }
    }

    /// Asks for a catch-up mark without waiting for it: its number, or `None` when there is no
    /// connection.
    pub(super) fn request_mark(&self) -> Option<u64> {
        let tx = self.catch_up.lock().ok().and_then(|c| c.clone())?;
        let n = self.marks.fetch_add(1, Ordering::Relaxed) + 1;
        tx.send(CatchUp { mark: n }).ok().map(|()| n)
    }

    /// The channels of a new socket; its connection task drains what they receive.
    pub(super) fn install_channels(&self) -> ConnChannels {
        let (wtx, writes) = mpsc::channel::<Outgoing>(4096);
        let (ctx, catch_ups) = mpsc::unbounded_channel();
        if let Ok(mut w) = self.writer.lock() {
            *w = Some(wtx);
        }
        if let Ok(mut c) = self.catch_up.lock() {
            *c = Some(ctx);
        }
        ConnChannels { writes, catch_ups }
    }

    /// The connection is gone: actions fail at once until the next one is up.
    pub(super) fn drop_channels(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Ok(mut c) = self.catch_up.lock() {
            c.take();
        }
    }
}
