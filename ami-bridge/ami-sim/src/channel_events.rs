//! Wire form of the events Asterisk 20 builds from a channel, in the header order of the
//! recordings. Events are written straight into one buffer per burst (no per-header allocation);
//! a burst is published to every session as one shared `Bytes`.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChanState {
    Down,
    Ring,
    Ringing,
    Up,
    Busy,
}

impl ChanState {
    pub fn code(self) -> u8 {
        match self {
            ChanState::Down => 0,
            ChanState::Ring => 4,
            ChanState::Ringing => 5,
            ChanState::Up => 6,
            ChanState::Busy => 7,
        }
    }

    pub fn desc(self) -> &'static str {
        match self {
            ChanState::Down => "Down",
            ChanState::Ring => "Ring",
            ChanState::Ringing => "Ringing",
            ChanState::Up => "Up",
            ChanState::Busy => "Busy",
        }
    }
}

/// What a channel event shows of its channel (Asterisk's channel snapshot).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub name: String,
    pub state: ChanState,
    pub cid_num: String,
    pub cid_name: String,
    pub conn_num: String,
    pub conn_name: String,
    pub account: String,
    pub context: String,
    pub exten: String,
    pub priority: u32,
    pub uniqueid: String,
    pub linkedid: String,
    /// Channel variables set so far, in the order they were set.
    pub vars: Vec<(String, String)>,
}

impl Snapshot {
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn set_var(&mut self, name: &str, value: &str) {
        match self.vars.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.vars.push((name.to_string(), value.to_string())),
        }
    }
}

pub const UNKNOWN: &str = "<unknown>";

/// Q.850 cause text as Asterisk's `ast_cause2str` gives it.
pub fn cause_text(cause: u32) -> &'static str {
    match cause {
        1 => "Unallocated (unassigned) number",
        2 => "No route to specified transmit network",
        3 => "No route to destination",
        16 => "Normal Clearing",
        17 => "User busy",
        18 => "No user responding",
        19 => "User alerting, no answer",
        21 => "Call Rejected",
        22 => "Number changed",
        27 => "Destination out of order",
        28 => "Invalid number format",
        31 => "Normal, unspecified",
        34 => "Circuit/channel congestion",
        38 => "Network out of order",
        41 => "Temporary failure",
        42 => "Switching equipment congestion",
        127 => "Interworking, unspecified",
        _ => "Unknown",
    }
}

/// The VarSet events chan_sip sends when RTP is torn down, values as recorded.
pub const RTP_QOS_VARS: [(&str, &str); 6] = [
    (
        "RTPAUDIOQOS",
        "ssrc=1643704688;themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;txcount=0;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000",
    ),
    (
        "RTPAUDIOQOSJITTER",
        "minrxjitter=000.000000;maxrxjitter=000.000000;avgrxjitter=000.000000;stdevrxjitter=000.000000;mintxjitter=000.000000;maxtxjitter=000.000000;avgtxjitter=000.000000;stdevtxjitter=000.000000;",
    ),
    (
        "RTPAUDIOQOSLOSS",
        "  minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;  stdevrxlost=000.000000;  mintxlost=000.000000;  maxtxlost=000.000000;  avgtxlost=000.000000;  stdevtxlost=000.000000;",
    ),
    (
        "RTPAUDIOQOSRTT",
        "     minrtt=000.000000;     maxrtt=000.000000;     avgrtt=000.000000;     stdevrtt=000.000000;",
    ),
    (
        "RTPAUDIOQOSMES",
        "   minrxmes=000.000000;   maxrxmes=000.000000;   avgrxmes=000.000000;   stdevrxmes=000.000000;   mintxmes=000.000000;   maxtxmes=000.000000;   avgtxmes=000.000000;   stdevtxmes=000.000000;",
    ),
    (
        "RTPAUDIOQOS",
        "ssrc=1643704688;themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;txcount=0;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000",
    ),
];

pub const PRIV_CALL: &str = "call,all";
pub const PRIV_DIALPLAN: &str = "dialplan,all";
pub const PRIV_SYSTEM: &str = "system,all";
pub const PRIV_SECURITY: &str = "security,all";
/// `UserEvent` (a user with `read = call` alone never sees one).
pub const PRIV_USER: &str = "user,all";
/// `DTMFBegin`/`DTMFEnd` (amd_human.ami): class `dtmf`, not `call`.
pub const PRIV_DTMF: &str = "dtmf,all";

/// A burst of messages being written.
#[derive(Debug, Default)]
pub struct EventBuf {
    buf: BytesMut,
    count: u64,
}

impl EventBuf {
    pub fn new() -> EventBuf {
        EventBuf {
            buf: BytesMut::with_capacity(8 * 1024),
            count: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The burst so far and how many messages it holds; the buffer starts over.
    pub fn take(&mut self) -> (Bytes, u64) {
        let n = std::mem::take(&mut self.count);
        (self.buf.split().freeze(), n)
    }

    pub fn header(&mut self, key: &str, value: &str) {
        self.prefixed("", key, value);
    }

    /// The header when there is a value (an `ActionID` the action may not have had).
    pub fn optional_header(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.header(key, v);
        }
    }

    fn prefixed(&mut self, prefix: &str, key: &str, value: &str) {
        self.buf.reserve(prefix.len() + key.len() + value.len() + 4);
        self.buf.put_slice(prefix.as_bytes());
        self.buf.put_slice(key.as_bytes());
        self.buf.put_slice(b": ");
        self.buf.put_slice(value.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    fn number(&mut self, prefix: &str, key: &str, value: impl std::fmt::Display) {
        self.buf.put_slice(prefix.as_bytes());
        self.buf.put_slice(key.as_bytes());
        self.buf.put_slice(b": ");
        // Writing into BytesMut cannot fail.
        let _ = write!(self.buf, "{value}");
        self.buf.put_slice(b"\r\n");
    }

    pub fn begin_event(&mut self, event: &str, privilege: Option<&str>) {
        self.header("Event", event);
        if let Some(p) = privilege {
            self.header("Privilege", p);
        }
    }

    pub fn end(&mut self) {
        self.buf.put_slice(b"\r\n");
        self.count += 1;
    }

    /// The 14 snapshot headers and one `ChanVariable` per configured `channelvars` name.
    pub fn snapshot(&mut self, prefix: &str, s: &Snapshot, channelvars: &[String]) {
        self.prefixed(prefix, "Channel", &s.name);
        self.number(prefix, "ChannelState", s.state.code());
        self.prefixed(prefix, "ChannelStateDesc", s.state.desc());
        self.prefixed(prefix, "CallerIDNum", &s.cid_num);
        self.prefixed(prefix, "CallerIDName", &s.cid_name);
        self.prefixed(prefix, "ConnectedLineNum", &s.conn_num);
        self.prefixed(prefix, "ConnectedLineName", &s.conn_name);
        self.prefixed(prefix, "Language", "en");
        self.prefixed(prefix, "AccountCode", &s.account);
        self.prefixed(prefix, "Context", &s.context);
        self.prefixed(prefix, "Exten", &s.exten);
        self.number(prefix, "Priority", s.priority);
        self.prefixed(prefix, "Uniqueid", &s.uniqueid);
        self.prefixed(prefix, "Linkedid", &s.linkedid);
        for name in channelvars {
            self.buf.put_slice(prefix.as_bytes());
            self.buf.put_slice(b"ChanVariable: ");
            self.buf.put_slice(name.as_bytes());
            self.buf.put_u8(b'=');
            self.buf.put_slice(s.var(name).as_bytes());
            self.buf.put_slice(b"\r\n");
        }
    }

    /// An event about one channel: `Event`, `Privilege`, snapshot, then `extra` headers.
    pub fn channel_event(
        &mut self,
        event: &str,
        privilege: &str,
        s: &Snapshot,
        channelvars: &[String],
        extra: &[(&str, &str)],
    ) {
        self.snapshot_event(event, privilege, "", s, channelvars, extra);
    }

    /// DialBegin/DialState/DialEnd of an originated call: only the `Dest` side exists.
    pub fn dial_event(
        &mut self,
        event: &str,
        s: &Snapshot,
        channelvars: &[String],
        extra: &[(&str, &str)],
    ) {
        self.snapshot_event(event, PRIV_CALL, "Dest", s, channelvars, extra);
    }

    fn snapshot_event(
        &mut self,
        event: &str,
        privilege: &str,
        prefix: &str,
        s: &Snapshot,
        channelvars: &[String],
        extra: &[(&str, &str)],
    ) {
        self.begin_event(event, Some(privilege));
        self.snapshot(prefix, s, channelvars);
        for (k, v) in extra {
            self.header(k, v);
        }
        self.end();
    }

    pub fn var_set(&mut self, s: &Snapshot, channelvars: &[String], name: &str, value: &str) {
        self.channel_event(
            "VarSet",
            PRIV_DIALPLAN,
            s,
            channelvars,
            &[("Variable", name), ("Value", value)],
        );
    }

    pub fn newexten(&mut self, s: &Snapshot, channelvars: &[String], app: &str, data: &str) {
        let exten = s.exten.clone();
        self.channel_event(
            "Newexten",
            PRIV_DIALPLAN,
            s,
            channelvars,
            &[
                ("Extension", &exten),
                ("Application", app),
                ("AppData", data),
            ],
        );
    }

    pub fn hangup(&mut self, s: &Snapshot, channelvars: &[String], cause: u32) {
        let c = cause.to_string();
        self.channel_event(
            "Hangup",
            PRIV_CALL,
            s,
            channelvars,
            &[("Cause", &c), ("Cause-txt", cause_text(cause))],
        );
    }

    /// `SoftHangupRequest` carries Asterisk's soft-hangup flag, `HangupRequest` a Q.850 cause.
    pub fn hangup_request(
        &mut self,
        event: &str,
        s: &Snapshot,
        channelvars: &[String],
        cause: u32,
    ) {
        let c = cause.to_string();
        self.channel_event(event, PRIV_CALL, s, channelvars, &[("Cause", &c)]);
    }

    pub fn rtp_teardown(&mut self, s: &Snapshot, channelvars: &[String]) {
        for (name, value) in RTP_QOS_VARS {
            self.var_set(s, channelvars, name, value);
        }
    }

    /// `UserEvent(<name>,<Key: value>,...)`: the channel's headers, `UserEvent: <name>`, then
    /// the dialplan's headers as written (amd_human.ami).
    pub fn user_event(
        &mut self,
        s: &Snapshot,
        channelvars: &[String],
        name: &str,
        headers: &[(&str, &str)],
    ) {
        self.begin_event("UserEvent", Some(PRIV_USER));
        self.snapshot("", s, channelvars);
        self.header("UserEvent", name);
        for (k, v) in headers {
            self.header(k, v);
        }
        self.end();
    }

    /// A key's start, as the callee's RTP events (RFC 2833) announce it.
    pub fn dtmf_begin(&mut self, s: &Snapshot, channelvars: &[String], digit: char) {
        let d = digit.to_string();
        self.channel_event(
            "DTMFBegin",
            PRIV_DTMF,
            s,
            channelvars,
            &[("Digit", &d), ("Direction", "Received")],
        );
    }

    /// A key's end, with how long it was held.
    pub fn dtmf_end(&mut self, s: &Snapshot, channelvars: &[String], digit: char, held_ms: u64) {
        let (d, ms) = (digit.to_string(), held_ms.to_string());
        self.channel_event(
            "DTMFEnd",
            PRIV_DTMF,
            s,
            channelvars,
            &[
                ("Digit", &d),
                ("DurationMs", &ms),
                ("Direction", "Received"),
            ],
        );
    }

    pub fn local_bridge(&mut self, one: &Snapshot, two: &Snapshot, channelvars: &[String]) {
        self.begin_event("LocalBridge", Some(PRIV_CALL));
        self.snapshot("LocalOne", one, channelvars);
        self.snapshot("LocalTwo", two, channelvars);
        self.header("Context", &two.context);
        self.header("Exten", &two.exten);
        self.header("LocalOptimization", "Yes");
        self.end();
    }

    /// A whole pre-built message (responses, list items).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    pub fn message_done(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            name: "SIP/trunk-00000000".into(),
            state: ChanState::Down,
            cid_num: UNKNOWN.into(),
            cid_name: UNKNOWN.into(),
            conn_num: UNKNOWN.into(),
            conn_name: UNKNOWN.into(),
            account: String::new(),
            context: "from-trunk".into(),
            exten: "s".into(),
            priority: 1,
            uniqueid: "1795316362.0".into(),
            linkedid: "1795316362.0".into(),
            vars: Vec::new(),
        }
    }

    #[test]
    fn newchannel_bytes_match_the_recording() {
        let mut b = EventBuf::new();
        b.channel_event(
            "Newchannel",
            PRIV_CALL,
            &snap(),
            &["DIALER_CALL_ID".into()],
            &[],
        );
        let (bytes, n) = b.take();
        assert_eq!(n, 1);
        let expected = "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/trunk-00000000\r\nChannelState: 0\r\nChannelStateDesc: Down\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: from-trunk\r\nExten: s\r\nPriority: 1\r\nUniqueid: 1795316362.0\r\nLinkedid: 1795316362.0\r\nChanVariable: DIALER_CALL_ID=\r\n\r\n";
        assert_eq!(std::str::from_utf8(&bytes).expect("utf8"), expected);
    }

    #[test]
    fn user_event_puts_the_dialplans_headers_after_the_channels() {
        let mut b = EventBuf::new();
        b.user_event(
            &snap(),
            &[],
            "DialerAMD",
            &[("CallID", "call-1"), ("Status", "HUMAN")],
        );
        let (bytes, _) = b.take();
        let text = std::str::from_utf8(&bytes).expect("utf8");
        assert!(text.starts_with("Event: UserEvent\r\nPrivilege: user,all\r\nChannel: "));
        assert!(text.ends_with(
            "Linkedid: 1795316362.0\r\nUserEvent: DialerAMD\r\nCallID: call-1\r\nStatus: HUMAN\r\n\r\n"
        ));
    }

    #[test]
    fn set_var_replaces() {
        let mut s = snap();
        s.set_var("A", "1");
        s.set_var("A", "2");
        assert_eq!(s.var("A"), "2");
        assert_eq!(s.vars.len(), 1);
        assert_eq!(s.var("B"), "");
    }
}
