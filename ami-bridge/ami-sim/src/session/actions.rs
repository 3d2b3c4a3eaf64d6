//! The actions a session answers, as Asterisk 20's manager answers them. A response goes into
//! this session's buffer before any event the action causes.

use std::sync::atomic::Ordering;

use ami_bridge::Message;
use bytes::BufMut;

use super::{Pending, Session};
use crate::action_headers::{nonempty, number};
use crate::channel_events::{EventBuf, PRIV_SYSTEM};
use crate::originate::{self, Started};
use crate::originate_action::{NoChannel, OriginateRequest};
use crate::{cli_output, wall_clock};

impl Session {
    pub(super) fn handle(&mut self, m: &Message) {
        let action_id = m.get("ActionID").map(str::to_string);
        let id = action_id.as_deref();
        let action = m.get("Action").unwrap_or("").trim().to_string();
        if action.is_empty() {
            return self.response("Error", id, "Missing action in request");
        }
        if self.pbx.down.load(Ordering::SeqCst) {
            // From `core stop` on, Asterisk refuses every action with this, before it looks
            // at the action or the login (main/manager.c, process_message).
            if action.eq_ignore_ascii_case("originate") {
                self.pbx.stats.outcome(NoChannel::ShuttingDown.stat());
            }
            return self.response("Error", id, "Asterisk is shutting down");
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
                self.reply("Success", id, &[("Ping", "Pong"), ("Timestamp", &ts)]);
            }
            "events" => {
                let on = m
                    .get("EventMask")
                    .is_none_or(|v| !v.eq_ignore_ascii_case("off"));
                self.send_events = on;
                self.reply("Success", id, &[("Events", if on { "On" } else { "Off" })]);
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
        // Written straight to the session, past the filter, but only with `read` system.
        if self.send_events && self.pbx.filter.reads("system") {
            let up = self.pbx.uptime_secs().to_string();
            self.write_pairs(&[
                ("Event", "FullyBooted"),
                ("Privilege", PRIV_SYSTEM),
                ("Uptime", &up),
                ("LastReload", &up),
                ("Status", "Fully Booted"),
            ]);
        }
        let (bytes, n) = self.successful_auth(user);
        // Other sessions get it from the event stream; this one right after FullyBooted, before
        // anything else. Resubscribing after publishing also skips every event from before the
        // login, which Asterisk does not send to a session either.
        let bytes = self.pbx.publish_bytes(bytes, n);
        self.events = self.events.resubscribe();
        if self.send_events {
            self.out.put_slice(&bytes);
        }
    }

    fn originate(&mut self, m: &Message, action_id: Option<String>) {
        let id = action_id.as_deref();
        let req = match OriginateRequest::parse(m) {
            Ok(req) => req,
            Err(message) => return self.response("Error", id, message),
        };
        if !req.sync {
            self.response("Success", id, "Originate successfully queued");
            let _ = originate::start(&self.pbx, req);
            return;
        }
        match originate::start(&self.pbx, req) {
            Started::Failed => self.response("Error", id, "Originate failed"),
            Started::Running(Some(rx)) => {
                self.pending = Some(Pending::SyncOriginate { action_id, rx })
            }
            Started::Running(None) => self.response("Success", id, "Originate successfully queued"),
        }
    }

    fn hangup(&mut self, m: &Message, id: Option<&str>) {
        let Some(channel) = nonempty(m, "Channel") else {
            return self.response("Error", id, "No channel specified");
        };
        let Some(cause) = number::<u32>(m, "Cause", 16) else {
            return self.response("Error", id, "Invalid cause");
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
        b.optional_header("ActionID", id);
        b.header("EventList", "start");
        b.header("Message", "Channels will follow");
        b.end();
        for v in &views {
            b.begin_event("CoreShowChannel", None);
            b.optional_header("ActionID", id);
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
        b.optional_header("ActionID", id);
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
        b.optional_header("ActionID", id);
        b.header("Message", "Command output follows");
        for line in &lines {
            b.header("Output", line);
        }
        b.end();
        let (bytes, _) = b.take();
        self.out.put_slice(&bytes);
    }
}
