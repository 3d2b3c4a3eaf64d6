//! The connection task: connect and log in, run the read, write and keepalive loops over one
//! socket until it ends, then reconnect with backoff and log in again, reporting each loss and
//! return on the event stream.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::config::ClientConfig;
use super::error::AmiError;
use super::events::{ClientEvent, ConnectionState, DisconnectReason};
use super::reader::Reader;
use super::shared::{ConnChannels, Outgoing, Shared};
use crate::action::Action;
use crate::backoff::Backoff;
use crate::codec::{Decoder, Frame};
use crate::message::MessageKind;

/// Banner prefix every Asterisk sends first.
const BANNER_PREFIX: &str = "Asterisk Call Manager/";
/// Bytes gathered into one socket write when actions queue up.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// A logged-in socket with whatever bytes arrived after the login response.
pub(super) struct Conn {
    stream: TcpStream,
    decoder: Decoder,
}

pub(super) async fn establish(config: &ClientConfig) -> Result<Conn, AmiError> {
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

pub(super) async fn supervise(
    shared: Arc<Shared>,
    first: Conn,
    first_channels: ConnChannels,
    events: mpsc::UnboundedSender<ClientEvent>,
) {
    let mut conn = Some((first, first_channels));
    let mut reconnected = false;
    let mut backoff = Backoff::new(shared.config.reconnect_min, shared.config.reconnect_max);
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if let Some((c, channels)) = conn.take() {
            backoff.reset();
            shared.state.send_replace(ConnectionState::Connected);
            let _ = events.send(ClientEvent::Connected { reconnected });
            let reason = serve(&shared, c, channels, &events).await;
            shared.drop_channels();
            shared.waiters.fail_all();
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
                conn = Some((c, shared.install_channels()));
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
    channels: ConnChannels,
    events: &mpsc::UnboundedSender<ClientEvent>,
) -> DisconnectReason {
    let Conn { stream, decoder } = conn;
    let (rd, wr) = stream.into_split();
    let mut shutdown = shared.shutdown.subscribe();
    let silence = shared.config.ping_interval + shared.config.ping_timeout;
    let reader = Reader {
        shared,
        rd,
        decoder,
        events,
        read_at: Instant::now(),
    };
    tokio::select! {
        r = reader.run(silence, channels.catch_ups) => r,
        r = write_loop(shared, wr, channels.writes) => r,
        r = keepalive(shared) => r,
        _ = shutdown.wait_for(|s| *s) => DisconnectReason::Closed,
    }
}

/// Writes queued actions, gathered into one write when they queue up (thousands of Originates
/// per second), and stamps each action once its last byte is in the socket: the time it waited
/// in the queue is ours, not the PBX's.
async fn write_loop(
    shared: &Shared,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
) -> DisconnectReason {
    let mut buf = Vec::with_capacity(WRITE_BATCH_BYTES);
    // Each action's ActionID and where its bytes end in `buf`.
    let mut ends: Vec<(usize, String)> = Vec::new();
    while let Some(first) = rx.recv().await {
        buf.clear();
        ends.clear();
        let mut next = Some(first);
        while let Some(out) = next.take() {
            buf.extend_from_slice(&out.bytes);
            ends.push((buf.len(), out.action_id));
            if buf.len() < WRITE_BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        let (mut done, mut stamped) = (0, 0);
        while done < buf.len() {
            match wr.write(&buf[done..]).await {
                Ok(0) => return DisconnectReason::Io("the socket accepts no more bytes".into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return DisconnectReason::Io(e.to_string()),
            }
            // Stamped in the same poll as the write that finished them, so before the reader
            // (same task) can route their responses.
            let complete = ends[stamped..].partition_point(|(end, _)| *end <= done);
            if complete > 0 {
                let ids = ends[stamped..stamped + complete].iter();
                shared
                    .waiters
                    .written(ids.map(|(_, id)| id.as_str()), Instant::now());
                stamped += complete;
            }
        }
    }
    // Every sender is gone: the client is shutting down.
    DisconnectReason::Closed
}

/// Keeps bytes coming: a live PBX answers a Ping within the silence the reader allows. An
/// unanswered Ping is no verdict by itself (the reader judges silence on the socket, where the
/// Pong may be waiting after this process was stopped).
async fn keepalive(shared: &Shared) -> DisconnectReason {
    loop {
        tokio::time::sleep(shared.config.ping_interval).await;
        match shared
            .send(&Action::ping(), shared.config.ping_timeout)
            .await
        {
            Ok(_) => {}
            Err(AmiError::Timeout { .. }) => {
                debug!(addr = %shared.config.addr, "Ping unanswered in time")
            }
            Err(e) => return DisconnectReason::Io(e.to_string()),
        }
    }
}
