//! The AMI connection: login, actions correlated by `ActionID` (many in flight on one socket),
//! list responses, keepalive, and reconnection with backoff and re-login.
//!
//! One supervisor task owns the socket. It reads frames and routes them: a response to the
//! action waiting for it, a list item to the list being collected, every other event to the
//! caller's event stream. Connection changes go to the same stream (`Connected`,
//! `Disconnected`), so the caller learns exactly when it may have missed events of calls in
//! flight. Actions pending when the connection drops fail with [`AmiError::Disconnected`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::action::{Action, ActionError, Originate};
use crate::backoff::Backoff;
use crate::codec::{DEFAULT_MAX_MESSAGE_BYTES, Decoder, Frame};
use crate::event::Event;
use crate::message::{Message, MessageKind};

/// Banner prefix every Asterisk sends first.
const BANNER_PREFIX: &str = "Asterisk Call Manager/";
/// Distinguishes the ActionIDs of clients in one process (easier to follow in a PBX's logs).
static CLIENT_SEQ: AtomicU64 = AtomicU64::new(1);
/// Bytes gathered into one socket write when actions queue up.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct ClientConfig {
    /// `host:port` of the AMI listener.
    pub addr: String,
    pub username: String,
    pub secret: String,
    pub connect_timeout: Duration,
    /// Banner plus Login; Asterisk answers a wrong secret after about one second.
    pub login_timeout: Duration,
    /// Default time an action may wait for its response.
    pub action_timeout: Duration,
    /// A `Ping` is sent this often; silence longer than `ping_interval + ping_timeout` means the
    /// connection is dead or stalled.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub reconnect: bool,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub max_message_bytes: usize,
}

impl ClientConfig {
    pub fn new(
        addr: impl Into<String>,
        username: impl Into<String>,
        secret: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            addr: addr.into(),
            username: username.into(),
            secret: secret.into(),
            connect_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(5),
            action_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(3),
            reconnect: true,
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("action_timeout", &self.action_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("reconnect", &self.reconnect)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum AmiError {
    #[error("cannot connect to AMI at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out connecting to AMI at {addr}")]
    ConnectTimeout { addr: String },
    #[error("not an Asterisk manager: banner {0:?}")]
    BadBanner(String),
    #[error("AMI login refused: {0}")]
    AuthFailed(String),
    #[error("AMI login got no answer in time")]
    LoginTimeout,
    #[error("AMI action {action} got no response within {timeout:?}")]
    Timeout { action: String, timeout: Duration },
    #[error("AMI connection lost before the response")]
    Disconnected,
    #[error("AMI not connected")]
    NotConnected,
    #[error("AMI client closed")]
    Closed,
    #[error("AMI {action} failed: {message}")]
    ActionFailed { action: String, message: String },
    #[error(transparent)]
    InvalidAction(#[from] ActionError),
    #[error("AMI I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The answer to one action: its response, plus the items of a list response
/// (`EventList: start` ... `EventList: Complete`).
#[derive(Debug, Clone)]
pub struct Response {
    pub message: Message,
    pub events: Vec<Message>,
    /// The event that closed the list (`CoreShowChannelsComplete`), when there was a list.
    pub list_end: Option<Message>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        matches!(self.message.first_value(), Some(v) if v.eq_ignore_ascii_case("Success")
            || v.eq_ignore_ascii_case("Goodbye") || v.eq_ignore_ascii_case("Follows"))
    }

    pub fn text(&self) -> &str {
        self.message.get("Message").unwrap_or("")
    }

    pub fn action_id(&self) -> Option<&str> {
        self.message.action_id()
    }

    /// Lines of `Command` output: `Output:` headers (Asterisk 14+) or an old `Follows` body.
    pub fn output(&self) -> Vec<&str> {
        let headers: Vec<&str> = self.message.get_all("Output").collect();
        if !headers.is_empty() {
            return headers;
        }
        self.message
            .body_lines()
            .filter(|l| *l != "--END COMMAND--")
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Asterisk closed the socket (after `Shutdown`, a restart, or a network cut).
    ClosedByPeer,
    /// No bytes and no Pong within the keepalive window.
    Stalled,
    Io(String),
    /// We logged off or the client was dropped.
    Closed,
}

/// What the event stream carries.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// Logged in; `reconnected` is true after a loss. Events between the loss and now are gone:
    /// reconcile calls in flight (`CoreShowChannels`).
    Connected {
        reconnected: bool,
    },
    Disconnected {
        reason: DisconnectReason,
    },
    Event(Event),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connected,
    Reconnecting,
    Closed,
}

struct Pending {
    tx: oneshot::Sender<Result<Response, AmiError>>,
    /// Set once a list's `EventList: start` response has arrived; items follow.
    list: Option<(Message, Vec<Message>)>,
}

struct Shared {
    config: ClientConfig,
    pending: Mutex<HashMap<String, Pending>>,
    writer: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    seq: AtomicU64,
    id_prefix: String,
    closing: AtomicBool,
    shutdown: watch::Sender<bool>,
    state: watch::Sender<ConnectionState>,
}

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
        let conn = establish(&config).await?;
        // Unbounded on purpose: the reader must always drain the socket. Asterisk drops a manager
        // session whose socket stops draining (its `writetimeout`), and action responses queue
        // behind events, so back-pressure would cost the very connection it protects.
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let (state, _) = watch::channel(ConnectionState::Connected);
        let shared = Arc::new(Shared {
            id_prefix: format!("c{}", CLIENT_SEQ.fetch_add(1, Ordering::Relaxed)),
            config,
            pending: Mutex::new(HashMap::new()),
            writer: Mutex::new(None),
            seq: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            shutdown,
            state,
        });
        // The writer is in place before `connect` returns, so the first action cannot race it.
        let wrx = shared.install_writer();
        let task = tokio::spawn(supervise(shared.clone(), conn, wrx, event_tx));
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

impl Shared {
    fn next_action_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.id_prefix)
    }

    async fn send(&self, action: &Action, timeout: Duration) -> Result<Response, AmiError> {
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
        let (tx, rx) = oneshot::channel();
        // Registered before the bytes leave, so a fast response always finds its waiter.
        self.pending
            .lock()
            .map_err(|_| AmiError::Closed)?
            .insert(id.clone(), Pending { tx, list: None });
        if writer.send(bytes).await.is_err() {
            self.forget(&id);
            return Err(AmiError::Disconnected);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AmiError::Disconnected),
            Err(_) => {
                self.forget(&id);
                Err(AmiError::Timeout {
                    action: action.name().to_string(),
                    timeout,
                })
            }
        }
    }

    fn install_writer(&self) -> mpsc::Receiver<Vec<u8>> {
        let (wtx, wrx) = mpsc::channel::<Vec<u8>>(4096);
        if let Ok(mut w) = self.writer.lock() {
            *w = Some(wtx);
        }
        wrx
    }

    fn forget(&self, id: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(id);
        }
    }

    fn fail_pending(&self) {
        let drained: Vec<Pending> = match self.pending.lock() {
            Ok(mut p) => p.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        for p in drained {
            let _ = p.tx.send(Err(AmiError::Disconnected));
        }
    }

    /// Routes a response or list item to its waiter. Returns the message back when it is an
    /// event for the stream.
    fn route(&self, msg: Message) -> Option<Message> {
        let kind = msg.kind();
        let Some(id) = msg.action_id() else {
            return (kind == MessageKind::Event).then_some(msg);
        };
        let Ok(mut pending) = self.pending.lock() else {
            return None;
        };
        match kind {
            MessageKind::Response => {
                let Some(entry) = pending.get_mut(id) else {
                    debug!(
                        action_id = id,
                        "response for an action no longer waited for"
                    );
                    return None;
                };
                if msg
                    .get("EventList")
                    .is_some_and(|v| v.eq_ignore_ascii_case("start"))
                {
                    entry.list = Some((msg, Vec::new()));
                    return None;
                }
                let id = id.to_string();
                if let Some(entry) = pending.remove(&id) {
                    let _ = entry.tx.send(Ok(Response {
                        message: msg,
                        events: Vec::new(),
                        list_end: None,
                    }));
                }
                None
            }
            MessageKind::Event => {
                // Only list items belong to an action; an OriginateResponse carries the
                // Originate's ActionID long after its response and goes to the stream.
                let collecting = pending.get(id).is_some_and(|e| e.list.is_some());
                if !collecting {
                    return Some(msg);
                }
                let complete = msg
                    .get("EventList")
                    .is_some_and(|v| v.eq_ignore_ascii_case("Complete"));
                let id = id.to_string();
                if complete {
                    if let Some(Pending {
                        tx,
                        list: Some((response, events)),
                    }) = pending.remove(&id)
                    {
                        let _ = tx.send(Ok(Response {
                            message: response,
                            events,
                            list_end: Some(msg),
                        }));
                    }
                } else if let Some(Pending {
                    list: Some((_, events)),
                    ..
                }) = pending.get_mut(&id)
                {
                    events.push(msg);
                }
                None
            }
            MessageKind::Action | MessageKind::Unknown => {
                warn!("AMI message of unknown kind ignored");
                None
            }
        }
    }
}

/// A logged-in socket with whatever bytes arrived after the login response.
struct Conn {
    stream: TcpStream,
    decoder: Decoder,
}

async fn establish(config: &ClientConfig) -> Result<Conn, AmiError> {
    let stream = match tokio::time::timeout(
        config.connect_timeout,
        TcpStream::connect(&config.addr),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => {
            return Err(AmiError::Connect {
                addr: config.addr.clone(),
                source,
            });
        }
        Err(_) => {
            return Err(AmiError::ConnectTimeout {
                addr: config.addr.clone(),
            });
        }
    };
    stream.set_nodelay(true)?;
    match tokio::time::timeout(config.login_timeout, login(stream, config)).await {
        Ok(result) => result,
        Err(_) => Err(AmiError::LoginTimeout),
    }
}

async fn login(mut stream: TcpStream, config: &ClientConfig) -> Result<Conn, AmiError> {
    let mut decoder = Decoder::new(true, config.max_message_bytes);
    let mut sent = false;
    loop {
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Ok(Frame::Banner(banner)) => {
                    if !banner.starts_with(BANNER_PREFIX) {
                        return Err(AmiError::BadBanner(banner));
                    }
                    let mut bytes = Vec::new();
                    Action::login(&config.username, &config.secret).encode("login", &mut bytes)?;
                    stream.write_all(&bytes).await?;
                    sent = true;
                }
                Ok(Frame::Message(m))
                    if sent
                        && m.kind() == MessageKind::Response
                        && m.action_id() == Some("login") =>
                {
                    if m.first_value()
                        .is_some_and(|v| v.eq_ignore_ascii_case("Success"))
                    {
                        return Ok(Conn { stream, decoder });
                    }
                    return Err(AmiError::AuthFailed(
                        m.get("Message").unwrap_or("no reason given").to_string(),
                    ));
                }
                Ok(Frame::Message(_)) => {}
                Err(e) => warn!(error = %e, "AMI decode error during login"),
            }
        }
        if stream.read_buf(decoder.buffer_mut()).await? == 0 {
            return Err(if sent {
                AmiError::AuthFailed("connection closed during login".into())
            } else {
                AmiError::BadBanner(String::new())
            });
        }
    }
}

async fn supervise(
    shared: Arc<Shared>,
    first: Conn,
    first_writer: mpsc::Receiver<Vec<u8>>,
    events: mpsc::UnboundedSender<ClientEvent>,
) {
    let mut conn = Some((first, first_writer));
    let mut reconnected = false;
    let mut backoff = Backoff::new(shared.config.reconnect_min, shared.config.reconnect_max);
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if let Some((c, wrx)) = conn.take() {
            backoff.reset();
            shared.state.send_replace(ConnectionState::Connected);
            let _ = events.send(ClientEvent::Connected { reconnected });
            let reason = serve(&shared, c, wrx, &events).await;
            if let Ok(mut w) = shared.writer.lock() {
                w.take();
            }
            shared.fail_pending();
            info!(addr = %shared.config.addr, ?reason, "AMI connection lost");
            let _ = events.send(ClientEvent::Disconnected { reason });
        }
        if shared.closing.load(Ordering::SeqCst) || !shared.config.reconnect {
            break;
        }
        shared.state.send_replace(ConnectionState::Reconnecting);
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        match establish(&shared.config).await {
            Ok(c) => {
                reconnected = true;
                conn = Some((c, shared.install_writer()));
            }
            Err(e) => warn!(addr = %shared.config.addr, error = %e, "AMI reconnect failed"),
        }
    }
    shared.state.send_replace(ConnectionState::Closed);
}

/// Runs one logged-in connection until it ends; returns why.
async fn serve(
    shared: &Arc<Shared>,
    conn: Conn,
    wrx: mpsc::Receiver<Vec<u8>>,
    events: &mpsc::UnboundedSender<ClientEvent>,
) -> DisconnectReason {
    let Conn { stream, decoder } = conn;
    let (rd, wr) = stream.into_split();
    let mut shutdown = shared.shutdown.subscribe();
    let idle = shared.config.ping_interval + shared.config.ping_timeout;
    tokio::select! {
        r = read_loop(shared, rd, decoder, events, idle) => r,
        r = write_loop(wr, wrx) => r,
        r = keepalive(shared) => r,
        _ = shutdown.wait_for(|s| *s) => DisconnectReason::Closed,
    }
}

async fn read_loop(
    shared: &Shared,
    mut rd: OwnedReadHalf,
    mut decoder: Decoder,
    events: &mpsc::UnboundedSender<ClientEvent>,
    idle: Duration,
) -> DisconnectReason {
    loop {
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Ok(Frame::Message(m)) => {
                    if let Some(m) = shared.route(m)
                        && let Some(e) = Event::from_message(m)
                    {
                        let _ = events.send(ClientEvent::Event(e));
                    }
                }
                Ok(Frame::Banner(_)) => {}
                Err(e) => warn!(error = %e, "AMI decode error; message skipped"),
            }
        }
        match tokio::time::timeout(idle, rd.read_buf(decoder.buffer_mut())).await {
            Ok(Ok(0)) => return DisconnectReason::ClosedByPeer,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return DisconnectReason::Io(e.to_string()),
            Err(_) => return DisconnectReason::Stalled,
        }
    }
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) -> DisconnectReason {
    while let Some(mut buf) = rx.recv().await {
        // Gather what else is queued into one write: thousands of Originates per second.
        while buf.len() < WRITE_BATCH_BYTES {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if let Err(e) = wr.write_all(&buf).await {
            return DisconnectReason::Io(e.to_string());
        }
    }
    // Every sender is gone: the client is shutting down.
    DisconnectReason::Closed
}

async fn keepalive(shared: &Shared) -> DisconnectReason {
    loop {
        tokio::time::sleep(shared.config.ping_interval).await;
        match shared
            .send(&Action::ping(), shared.config.ping_timeout)
            .await
        {
            Ok(_) => {}
            Err(AmiError::Timeout { .. }) => return DisconnectReason::Stalled,
            Err(e) => return DisconnectReason::Io(e.to_string()),
        }
    }
}
