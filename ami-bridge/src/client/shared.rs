//! What the handles and the connection task share: the configuration, the waiting actions, the
//! writer of the socket of the moment, and the closing flag, shutdown and state watches; and
//! sending one action through them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::config::ClientConfig;
use super::correlation::{Response, Waiters};
use super::error::AmiError;
use super::events::ConnectionState;
use crate::action::Action;

/// Distinguishes the ActionIDs of clients in one process (easier to follow in a PBX's logs).
static CLIENT_SEQ: AtomicU64 = AtomicU64::new(1);

pub(super) struct Shared {
    pub(super) config: ClientConfig,
    pub(super) waiters: Waiters,
    writer: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
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
        if writer.send(bytes).await.is_err() {
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

    /// A writer for a new socket; the connection task drains what it receives.
    pub(super) fn install_writer(&self) -> mpsc::Receiver<Vec<u8>> {
        let (wtx, wrx) = mpsc::channel::<Vec<u8>>(4096);
        if let Ok(mut w) = self.writer.lock() {
            *w = Some(wtx);
        }
        wrx
    }

    /// The connection is gone: actions fail at once until the next one is up.
    pub(super) fn drop_writer(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
    }
}
