//! The AMI connection: login, actions correlated by `ActionID` (many in flight on one socket),
//! list responses, keepalive, and reconnection with backoff and re-login.
//!
//! One supervisor task owns the socket. It reads frames and routes them: a response to the
//! action waiting for it, a list item to the list being collected, every other event to the
//! caller's event stream. Connection changes go to the same stream (`Connected`,
//! `Disconnected`), so the caller learns exactly when it may have missed events of calls in
//! flight. Actions pending when the connection drops fail with [`AmiError::Disconnected`].
//!
//! Liveness is judged on what has arrived: silence means no byte on the socket, which is read
//! before the verdict. A process that was stopped (`kill -STOP`) and runs again finds every
//! timer run out before it has read what the PBX sent meanwhile; those bytes decide, not the
//! timers. [`AmiClient::catch_up`] gives callers with timers of their own the same footing.
//!
//! What was written and read is stamped at the socket: [`Response::written_at`] when an action's
//! last byte went out, [`Message::read_at`] when a message's last byte came in. Their difference
//! is the PBX's time plus the network's; with [`ClientConfig::io_thread`] the connection runs on
//! a thread of its own, so the caller's busy runtime does not add to it either.
//!
//! Here the handle; `connection` is the task and its reconnect loop, `reader` its read side,
//! `correlation` the matching of answers to actions, `shared` what both sides hold, `io_thread`
//! the connection's own thread when asked for.

mod config;
mod connection;
mod correlation;
mod error;
mod events;
mod io_thread;
mod reader;
mod shared;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use self::config::ClientConfig;
use self::connection::{establish, supervise};
pub use self::correlation::Response;
pub use self::error::AmiError;
pub use self::events::{ClientEvent, ConnectionState, DisconnectReason};
use self::io_thread::IoThread;
use self::shared::Shared;
use crate::action::{Action, Originate};
use crate::message::Message;

/// Closes the connection when the last handle is dropped.
struct DropGuard(Arc<Shared>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.closing.store(true, Ordering::SeqCst);
        self.0.shutdown.send_replace(true);
    }
}

/// A cheap, cloneable handle on one AMI connection.
#[derive(Clone)]
pub struct AmiClient {
    shared: Arc<Shared>,
    _guard: Arc<DropGuard>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl fmt::Debug for AmiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmiClient")
            .field("addr", &self.shared.config.addr)
            .field("state", &*self.shared.state.borrow())
            .finish()
    }
}

impl AmiClient {
    /// Connects and logs in; a wrong secret fails here with [`AmiError::AuthFailed`]. Afterwards
    /// the connection is kept alive and re-established on loss, as `config` says.
    pub async fn connect(
        config: ClientConfig,
    ) -> Result<(AmiClient, mpsc::UnboundedReceiver<ClientEvent>), AmiError> {
        let io = config.io_thread.then(IoThread::start).transpose()?;
        let conn = match &io {
            Some(io) => {
                let config = config.clone();
                io.block(async move { establish(&config).await }).await??
            }
            None => establish(&config).await?,
        };
        // Unbounded on purpose: the reader must always drain the socket. Asterisk drops a manager
        // session whose socket stops draining (its `writetimeout`), and action responses queue
        // behind events, so back-pressure would cost the very connection it protects.
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(config));
        // The writer is in place before `connect` returns, so the first action cannot race it.
        let channels = shared.install_channels();
        let connection = supervise(shared.clone(), conn, channels, event_tx);
        let task = match io {
            Some(io) => io.run(connection),
            None => tokio::spawn(connection),
        };
        Ok((
            AmiClient {
                _guard: Arc::new(DropGuard(shared.clone())),
                shared,
                task: Arc::new(Mutex::new(Some(task))),
            },
            event_rx,
        ))
    }

    pub fn state(&self) -> ConnectionState {
        *self.shared.state.borrow()
    }

    /// Watches connection state changes.
    pub fn state_changes(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    /// Asks the connection to read every byte already waiting in its socket and deliver it: a
    /// [`ClientEvent::CaughtUp`] with the returned number follows those events on the event
    /// stream. A timer that judges a call by the PBX's silence judges after that mark, not
    /// before. [`AmiError::NotConnected`] while there is no connection.
    pub fn catch_up(&self) -> Result<u64, AmiError> {
        self.shared.request_mark().ok_or(AmiError::NotConnected)
    }

    /// Sends an action and waits for its response (and list items) with the default timeout.
    pub async fn send(&self, action: &Action) -> Result<Response, AmiError> {
        self.shared
            .send(action, self.shared.config.action_timeout)
            .await
    }

    pub async fn send_with_timeout(
        &self,
        action: &Action,
        timeout: Duration,
    ) -> Result<Response, AmiError> {
        self.shared.send(action, timeout).await
    }

    /// Like [`AmiClient::send`], but a `Response: Error` is an [`AmiError::ActionFailed`].
    pub async fn send_ok(&self, action: &Action) -> Result<Response, AmiError> {
        let r = self.send(action).await?;
        if r.is_success() {
            Ok(r)
        } else {
            Err(AmiError::ActionFailed {
                action: action.name().to_string(),
                message: r.text().to_string(),
            })
        }
    }

    /// Queues an Originate. With `Async: true` the answer only says it was queued; the outcome
    /// comes as events (`OriginateResponse` carries the returned response's ActionID).
    pub async fn originate(&self, originate: Originate) -> Result<Response, AmiError> {
        self.send_ok(&originate.build()?).await
    }

    /// Round-trip time of a `Ping`.
    pub async fn ping(&self) -> Result<Duration, AmiError> {
        let start = Instant::now();
        self.send_ok(&Action::ping()).await?;
        Ok(start.elapsed())
    }

    /// Hangs up a channel (name or uniqueid) with a Q.850 cause.
    pub async fn hangup(&self, channel: &str, cause: Option<u16>) -> Result<Response, AmiError> {
        self.send_ok(&Action::hangup(channel, cause)).await
    }

    /// Every live channel (`CoreShowChannel` events).
    pub async fn core_show_channels(&self) -> Result<Vec<Message>, AmiError> {
        Ok(self.send_ok(&Action::core_show_channels()).await?.events)
    }

    /// Runs a CLI command and returns its output lines.
    pub async fn command(&self, cli: &str) -> Result<Vec<String>, AmiError> {
        let r = self.send_ok(&Action::command(cli)).await?;
        Ok(r.output().into_iter().map(str::to_string).collect())
    }

    /// Logs off cleanly and stops reconnecting.
    pub async fn logoff(&self) -> Result<(), AmiError> {
        self.shared.closing.store(true, Ordering::SeqCst);
        let result = self
            .shared
            .send(&Action::logoff(), Duration::from_secs(2))
            .await;
        self.shared.shutdown.send_replace(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        match result {
            Ok(_) | Err(AmiError::Disconnected) | Err(AmiError::NotConnected) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
