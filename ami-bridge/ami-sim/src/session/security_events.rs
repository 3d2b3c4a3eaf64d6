//! The security events a session causes (Asterisk's `security_events`): SuccessfulAuth,
//! InvalidPassword and RequestBadFormat, each naming the session and its two addresses.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes};

use super::Session;
use crate::channel_events::{EventBuf, PRIV_SECURITY};
use crate::wall_clock;

/// `IPV4/TCP/127.0.0.1/5038`, as security events write an address.
fn addr_text(a: &SocketAddr) -> String {
    let v = if a.is_ipv4() { "IPV4" } else { "IPV6" };
    format!("{v}/TCP/{}/{}", a.ip(), a.port())
}

/// `Event` to `EventVersion`: the head every security event starts with.
fn begin(ev: &mut EventBuf, event: &str, tv: &str, severity: &str, version: &str) {
    ev.begin_event(event, Some(PRIV_SECURITY));
    ev.header("EventTV", tv);
    ev.header("Severity", severity);
    ev.header("Service", "AMI");
    ev.header("EventVersion", version);
}

impl Session {
    fn session_headers(&self, ev: &mut EventBuf) {
        ev.header("SessionID", &self.session_id);
        ev.header("LocalAddress", &addr_text(&self.local));
        ev.header("RemoteAddress", &addr_text(&self.peer));
    }

    /// The event of an accepted login and its count of messages, for the caller to publish.
    pub(super) fn successful_auth(&self, user: &str) -> (Bytes, u64) {
        let tv = wall_clock::event_tv();
        let mut ev = EventBuf::new();
        begin(&mut ev, "SuccessfulAuth", &tv, "Informational", "1");
        ev.header("AccountID", user);
        self.session_headers(&mut ev);
        ev.header("UsingPassword", "0");
        ev.header("SessionTV", &tv);
        ev.end();
        ev.take()
    }

    /// What other logged-in sessions see when a login fails (login_failed_observer).
    pub(super) fn invalid_password(&self, user: &str) {
        let mut ev = EventBuf::new();
        begin(
            &mut ev,
            "InvalidPassword",
            &wall_clock::event_tv(),
            "Error",
            "2",
        );
        ev.header("AccountID", user);
        self.session_headers(&mut ev);
        ev.header("SessionTV", "1970-01-01T00:00:00.000+0000");
        ev.end();
        self.pbx.publish(&mut ev);
    }

    /// An unknown action, told to this session only.
    pub(super) fn request_bad_format(&mut self, action: &str) {
        let tv = wall_clock::event_tv();
        let mut ev = EventBuf::new();
        begin(&mut ev, "RequestBadFormat", &tv, "Error", "1");
        self.session_headers(&mut ev);
        ev.header("RequestType", &format!("Action: {action}"));
        ev.header("SessionTV", &tv);
        ev.header("AccountID", &self.pbx.cfg.username);
        ev.end();
        let (bytes, _) = ev.take();
        if self.pbx.filter.passes(&bytes) {
            self.out.put_slice(&bytes);
        }
    }
}
