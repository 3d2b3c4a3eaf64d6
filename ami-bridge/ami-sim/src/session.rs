//! One AMI connection: banner, actions in, responses and events out, as Asterisk 20's manager
//! does it (including sleeping a second before a failed Login, and holding everything while a
//! synchronous Originate runs). Output goes into one buffer, written as the socket takes it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ami_bridge::{Decoder, Frame, Message};
use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Sleep;

use crate::channel_events::{EventBuf, PRIV_SECURITY, PRIV_SYSTEM};
use crate::dial_string::DialString;
use crate::pbx::{Fault, OriginateRequest, Outbound, Pbx, Started};
use crate::{cli_output, wall_clock};

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
        let mut pairs: Vec<(&str, &str)> = vec![("Response", status)];
        if let Some(id) = action_id {
            pairs.push(("ActionID", id));
        }
        pairs.push(("Message", message));
        self.write_pairs(&pairs);
    }

    fn write_pairs(&mut self, pairs: &[(&str, &str)]) {
        let mut v = Vec::with_capacity(128);
        Message::from_pairs(pairs).write_to(&mut v);
        self.out.put_slice(&v);
    }

    fn handle(&mut self, m: &Message) {
        let action_id = m.get("ActionID").map(str::to_string);
        let id = action_id.as_deref();
        let action = m.get("Action").unwrap_or("").trim().to_string();
        if action.is_empty() {
            return self.response("Error", id, "Missing action in request");
        }
        let lower = action.to_ascii_lowercase();
        if !self.authed && !matches!(lower.as_str(), "login" | "logoff" | "challenge") {
            return self.response("Error", id, "Permission denied");
        }
        match lower.as_str() {
            "login" => self.login(m, action_id),
            "logoff" => {
                self.response("Goodbye", id, "Thanks for all the fish.");
                self.closing = true;
            }
            "challenge" => self.response("Error", id, "Must specify AuthType"),
            "ping" => {
                let ts = wall_clock::timestamp();
                let mut pairs = vec![("Response", "Success")];
                if let Some(id) = id {
                    pairs.push(("ActionID", id));
                }
                pairs.push(("Ping", "Pong"));
                pairs.push(("Timestamp", &ts));
                self.write_pairs(&pairs);
            }
            "events" => {
                let on = m
                    .get("EventMask")
                    .is_none_or(|v| !v.eq_ignore_ascii_case("off"));
                self.send_events = on;
                let mut pairs = vec![("Response", "Success")];
                if let Some(id) = id {
                    pairs.push(("ActionID", id));
                }
                pairs.push(("Events", if on { "On" } else { "Off" }));
                self.write_pairs(&pairs);
            }
            "originate" => self.originate(m, action_id),
            "hangup" => self.hangup(m, id),
            "coreshowchannels" => self.core_show_channels(id),
            "command" => self.command(m, id),
            _ => {
                let msg = format!(
                    "Invalid/unknown command: {action}. Use Action: ListCommands to show available commands."
                );
                self.response("Error", id, &msg);
                if self.send_events {
                    self.request_bad_format(&action);
                }
            }
        }
    }

    fn addr_text(a: &SocketAddr) -> String {
        let v = if a.is_ipv4() { "IPV4" } else { "IPV6" };
        format!("{v}/TCP/{}/{}", a.ip(), a.port())
    }

    fn login(&mut self, m: &Message, action_id: Option<String>) {
        if self.authed {
            return self.response("Success", action_id.as_deref(), "Already authenticated");
        }
        let user = m.get("Username").unwrap_or("");
        let secret = m.get("Secret").unwrap_or("");
        let ok = !self.pbx.refuse_logins.load(Ordering::Relaxed)
            && user.eq_ignore_ascii_case(&self.pbx.cfg.username)
            && secret == self.pbx.cfg.secret;
        self.pbx.stats.login(ok);
        if !ok {
            self.invalid_password(user);
            self.pending = Some(Pending::LoginFailed {
                action_id,
                sleep: Box::pin(tokio::time::sleep(self.pbx.cfg.login_failure_delay())),
            });
            return;
        }
        self.authed = true;
        self.send_events = m
            .get("Events")
            .is_none_or(|v| !v.eq_ignore_ascii_case("off"));
        self.response("Success", action_id.as_deref(), "Authentication accepted");
        if self.send_events {
            let up = self.pbx.uptime_secs().to_string();
            self.write_pairs(&[
                ("Event", "FullyBooted"),
                ("Privilege", PRIV_SYSTEM),
                ("Uptime", &up),
                ("LastReload", &up),
                ("Status", "Fully Booted"),
            ]);
        }
        let tv = wall_clock::event_tv();
        let mut ev = EventBuf::new();
        ev.begin_event("SuccessfulAuth", Some(PRIV_SECURITY));
        for (k, v) in [
            ("EventTV", tv.as_str()),
            ("Severity", "Informational"),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("AccountID", user),
            ("SessionID", &self.session_id),
            ("LocalAddress", &Self::addr_text(&self.local)),
            ("RemoteAddress", &Self::addr_text(&self.peer)),
            ("UsingPassword", "0"),
            ("SessionTV", tv.as_str()),
        ] {
            ev.header(k, v);
        }
        ev.end();
        let (bytes, n) = ev.take();
        // Other sessions get it from the event stream; this one right after FullyBooted, before
        // anything else. Resubscribing after publishing also skips every event from before the
        // login, which Asterisk does not send to a session either.
        self.pbx.publish_bytes(bytes.clone(), n);
        self.events = self.events.resubscribe();
        if self.send_events {
            self.out.put_slice(&bytes);
        }
    }

    /// What other logged-in sessions see when a login fails (login_failed_observer).
    fn invalid_password(&self, user: &str) {
        let mut ev = EventBuf::new();
        ev.begin_event("InvalidPassword", Some(PRIV_SECURITY));
        for (k, v) in [
            ("EventTV", wall_clock::event_tv().as_str()),
            ("Severity", "Error"),
            ("Service", "AMI"),
            ("EventVersion", "2"),
            ("AccountID", user),
            ("SessionID", &self.session_id),
            ("LocalAddress", &Self::addr_text(&self.local)),
            ("RemoteAddress", &Self::addr_text(&self.peer)),
            ("SessionTV", "1970-01-01T00:00:00.000+0000"),
        ] {
            ev.header(k, v);
        }
        ev.end();
        self.pbx.publish(&mut ev);
    }

    fn request_bad_format(&mut self, action: &str) {
        let tv = wall_clock::event_tv();
        let req = format!("Action: {action}");
        self.write_pairs(&[
            ("Event", "RequestBadFormat"),
            ("Privilege", PRIV_SECURITY),
            ("EventTV", &tv),
            ("Severity", "Error"),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("SessionID", &self.session_id.clone()),
            ("LocalAddress", &Self::addr_text(&self.local)),
            ("RemoteAddress", &Self::addr_text(&self.peer)),
            ("RequestType", &req),
            ("SessionTV", &tv),
            ("AccountID", &self.pbx.cfg.username.clone()),
        ]);
    }

    fn originate(&mut self, m: &Message, action_id: Option<String>) {
        let id = action_id.as_deref();
        let Some(channel) = m.get("Channel").filter(|c| !c.is_empty()) else {
            return self.response("Error", id, "Channel not specified");
        };
        let priority = match m.get("Priority").filter(|p| !p.is_empty()) {
            None => 1,
            Some(p) => match p.trim().parse::<u32>() {
                Ok(p) => p,
                // No dialplan labels here: a non-numeric priority is never found.
                Err(_) => return self.response("Error", id, "Invalid priority"),
            },
        };
        let timeout = match m.get("Timeout").filter(|t| !t.is_empty()) {
            None => Duration::from_millis(30_000),
            Some(t) => match t.trim().parse::<i64>() {
                Ok(ms) => Duration::from_millis(ms.max(0) as u64),
                Err(_) => return self.response("Error", id, "Invalid timeout"),
            },
        };
        let Some(dial) = DialString::parse(channel) else {
            return self.response("Error", id, "Invalid channel");
        };
        let application = m
            .get("Application")
            .filter(|a| !a.is_empty())
            .map(|a| (a.to_string(), m.get("Data").unwrap_or("").to_string()));
        let (cid_num, cid_name) = parse_caller_id(m.get("CallerID").unwrap_or(""));
        let mut variables = Vec::new();
        for v in m.get_all("Variable") {
            for part in v.split(',') {
                if let Some((k, val)) = part.split_once('=') {
                    let k = k.trim();
                    if !k.is_empty() {
                        variables.push((k.to_string(), val.to_string()));
                    }
                }
            }
        }
        let nonempty = |k: &str| m.get(k).filter(|v| !v.is_empty()).map(str::to_string);
        let sync = !m.get("Async").is_some_and(ast_true);
        let req = OriginateRequest {
            action_id: action_id.clone(),
            channel: channel.to_string(),
            dial,
            context: nonempty("Context").unwrap_or_else(|| "default".into()),
            exten: nonempty("Exten").unwrap_or_else(|| "s".into()),
            priority,
            application,
            timeout,
            cid_num,
            cid_name,
            variables,
            channel_id: nonempty("ChannelId"),
            other_channel_id: nonempty("OtherChannelId"),
            account: m.get("Account").unwrap_or("").to_string(),
            sync,
        };
        if !sync {
            self.response("Success", id, "Originate successfully queued");
            let _ = self.pbx.originate(req);
            return;
        }
        match self.pbx.originate(req) {
            Started::Failed => self.response("Error", id, "Originate failed"),
            Started::Running(Some(rx)) => {
                self.pending = Some(Pending::SyncOriginate { action_id, rx })
            }
            Started::Running(None) => self.response("Success", id, "Originate successfully queued"),
        }
    }

    fn hangup(&mut self, m: &Message, id: Option<&str>) {
        let Some(channel) = m.get("Channel").filter(|c| !c.is_empty()) else {
            return self.response("Error", id, "No channel specified");
        };
        let cause = match m.get("Cause").filter(|c| !c.is_empty()) {
            None => 16,
            Some(c) => match c.trim().parse::<u32>() {
                Ok(c) => c,
                Err(_) => return self.response("Error", id, "Invalid cause"),
            },
        };
        // The response goes into this session's buffer before any event of the hangup.
        if self.pbx.hangup(channel, cause) {
            self.response("Success", id, "Channel Hungup");
        } else {
            self.response("Error", id, "No such channel");
        }
    }

    fn core_show_channels(&mut self, id: Option<&str>) {
        let views = self.pbx.channel_views();
        let vars = self.pbx.cfg.channelvars.clone();
        let mut b = EventBuf::new();
        b.header("Response", "Success");
        if let Some(id) = id {
            b.header("ActionID", id);
        }
        b.header("EventList", "start");
        b.header("Message", "Channels will follow");
        b.end();
        for v in &views {
            b.begin_event("CoreShowChannel", None);
            if let Some(id) = id {
                b.header("ActionID", id);
            }
            b.snapshot("", &v.snapshot, &vars);
            b.header("Application", &v.app);
            b.header("ApplicationData", &v.app_data);
            let secs = v.created.elapsed().as_secs();
            let dur = format!(
                "{:02}:{:02}:{:02}",
                secs / 3600,
                (secs % 3600) / 60,
                secs % 60
            );
            b.header("Duration", &dur);
            b.header("BridgeId", "");
            b.end();
        }
        b.begin_event("CoreShowChannelsComplete", None);
        if let Some(id) = id {
            b.header("ActionID", id);
        }
        b.header("EventList", "Complete");
        b.header("ListItems", &views.len().to_string());
        b.end();
        let (bytes, _) = b.take();
        self.out.put_slice(&bytes);
    }

    fn command(&mut self, m: &Message, id: Option<&str>) {
        let Some(cmd) = m.get("Command").filter(|c| !c.trim().is_empty()) else {
            return self.response("Error", id, "No command provided");
        };
        let (ok, lines) = cli_output::run(cmd.trim(), &self.pbx);
        let mut b = EventBuf::new();
        b.header("Response", if ok { "Success" } else { "Error" });
        if let Some(id) = id {
            b.header("ActionID", id);
        }
        b.header("Message", "Command output follows");
        for line in &lines {
            b.header("Output", line);
        }
        b.end();
        let (bytes, _) = b.take();
        self.out.put_slice(&bytes);
    }
}

/// Asterisk's `ast_true`.
fn ast_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "y" | "t" | "1" | "on"
    )
}

/// `"Dialer" <5550100>` -> (number, name); a bare number or a bare name gives one of them.
fn parse_caller_id(v: &str) -> (Option<String>, Option<String>) {
    let v = v.trim();
    if v.is_empty() {
        return (None, None);
    }
    if let (Some(lt), Some(gt)) = (v.find('<'), v.rfind('>'))
        && lt < gt
    {
        let num = v[lt + 1..gt].trim();
        let name = v[..lt].trim().trim_matches('"').trim();
        return (
            (!num.is_empty()).then(|| num.to_string()),
            (!name.is_empty()).then(|| name.to_string()),
        );
    }
    if v.chars().all(|c| c.is_ascii_digit() || "+*#".contains(c)) {
        (Some(v.to_string()), None)
    } else {
        (None, Some(v.trim_matches('"').to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_id_forms() {
        assert_eq!(
            parse_caller_id("\"Dialer\" <5550100>"),
            (Some("5550100".into()), Some("Dialer".into()))
        );
        assert_eq!(parse_caller_id("5550100"), (Some("5550100".into()), None));
        assert_eq!(parse_caller_id("Dialer"), (None, Some("Dialer".into())));
        assert_eq!(parse_caller_id(""), (None, None));
        assert_eq!(parse_caller_id("<>"), (None, None));
    }

    #[test]
    fn ast_true_forms() {
        assert!(ast_true("true") && ast_true("Yes") && ast_true("1") && ast_true("on"));
        assert!(!ast_true("false") && !ast_true("0") && !ast_true(""));
    }
}
