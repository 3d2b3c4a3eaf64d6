//! One originated call from first event to last: the event sequences of the recordings, for a
//! SIP-like channel (one leg) or a Local channel (`;1` and `;2`), timed with tokio's clock. An
//! answered call into the flow context runs the flow after the answer (`flow`).

mod flow;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::channel_events::{ChanState, EventBuf, PRIV_CALL, Snapshot};
use crate::flow_vars::FlowVars;
use crate::originate_action::{OriginateRequest, originate_response};
use crate::outcome::{Outcome, OutcomeKind};
use crate::pbx::{CallCmd, NewChannels, Pbx};

/// OriginateResponse `Reason` values (Asterisk's AST_CONTROL_* codes).
const REASON_FAILED: u32 = 0;
const REASON_HANGUP: u32 = 1;
const REASON_NO_ANSWER: u32 = 3;
const REASON_ANSWERED: u32 = 4;
const REASON_BUSY: u32 = 5;
const REASON_CONGESTION: u32 = 8;

/// Soft-hangup flags as `SoftHangupRequest` reports them.
const SOFT_EXPLICIT: u32 = 16;
const SOFT_SHUTDOWN: u32 = 4;

pub(crate) struct Call {
    pbx: Arc<Pbx>,
    req: OriginateRequest,
    outcome: Outcome,
    one: Snapshot,
    /// Local `;2`.
    two: Option<Snapshot>,
    cmds: mpsc::Receiver<CallCmd>,
    done: Option<oneshot::Sender<bool>>,
    out: EventBuf,
    answered: bool,
    /// Priority the `;2` dialplan has reached (Local only).
    two_prio: u32,
    /// The flow after the answer, when this call runs it.
    flow: Option<FlowVars>,
    /// When the call was answered (the flow's times count from it).
    answered_at: Instant,
    /// The application the flow runs now, for CoreShowChannels.
    app: Option<(&'static str, String)>,
    /// Ended by a shutdown: no recording is uploaded (the PBX is going away with it).
    shut_down: bool,
    /// What the flow's hangup handler would still report.
    pending: flow::Pending,
}

impl Call {
    pub(crate) fn new(
        pbx: Arc<Pbx>,
        req: OriginateRequest,
        outcome: Outcome,
        channels: NewChannels,
        done: Option<oneshot::Sender<bool>>,
    ) -> Call {
        let flow = Call::flow_of(&pbx, &req);
        Call {
            pbx,
            req,
            outcome,
            one: channels.one,
            two: channels.two,
            cmds: channels.cmds,
            done,
            out: EventBuf::new(),
            answered: false,
            two_prio: 0,
            flow,
            answered_at: Instant::now(),
            app: None,
            shut_down: false,
            pending: flow::Pending::default(),
        }
    }

    pub(crate) async fn run(mut self) {
        let rings_out =
            self.outcome.kind == OutcomeKind::NoAnswer || self.outcome.ring >= self.req.timeout;
        let ring_for = if rings_out {
            self.req.timeout
        } else {
            self.outcome.ring
        };
        self.start(rings_out);
        self.flush();
        self.pbx.stats.setup_latency(self.req.received.elapsed());
        if let Some(cmd) = self.wait(ring_for).await {
            return self.interrupted(cmd);
        }
        if rings_out {
            self.no_answer();
            return self.finish();
        }
        match self.outcome.kind {
            OutcomeKind::Answered | OutcomeKind::RemoteHangup => {
                self.answer();
                self.flush();
                if self.flow.is_some() {
                    return self.run_flow().await;
                }
                if let Some(cmd) = self.wait(self.outcome.talk).await {
                    return self.interrupted(cmd);
                }
                if self.outcome.kind == OutcomeKind::Answered {
                    self.dialplan_hangup();
                } else {
                    self.remote_hangup();
                }
            }
            kind => self.rejected(kind),
        }
        self.finish()
    }

    /// Sleeps `d` unless a command comes first.
    async fn wait(&mut self, d: Duration) -> Option<CallCmd> {
        if d.is_zero() {
            return self.cmds.try_recv().ok();
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => None,
            cmd = self.cmds.recv() => match cmd {
                Some(cmd) => Some(cmd),
                // Every sender gone cannot happen while registered; just let the time pass.
                None => {
                    tokio::time::sleep(d).await;
                    None
                }
            },
        }
    }

    fn flush(&mut self) {
        self.pbx.publish(&mut self.out);
        self.pbx
            .update_view(&self.one, self.app_one().0, &self.app_one().1);
        if let Some(two) = &self.two {
            self.pbx.update_view(two, "Wait", "");
        }
    }

    fn app_one(&self) -> (&'static str, String) {
        if let Some((app, data)) = &self.app {
            (app, data.clone())
        } else if self.answered {
            ("Wait", secs_text(self.outcome.talk))
        } else {
            ("AppDial2", "(Outgoing Line)".into())
        }
    }

    /// Unregisters the channels, then publishes the last burst, so a Hangup action sent after
    /// the client saw `Hangup` gets "No such channel".
    fn finish(mut self) {
        let mut gone = vec![&self.one];
        if let Some(two) = &self.two {
            gone.push(two);
        }
        self.pbx.remove_channels(&gone);
        self.pbx.publish(&mut self.out);
        if !self.shut_down {
            self.upload_recording();
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(self.answered);
        }
    }

    fn report(&mut self, success: bool, reason: u32) {
        if let Some(done) = self.done.take() {
            // A sync Originate gets a Response instead of an OriginateResponse event.
            let _ = done.send(success);
            return;
        }
        if self.req.sync {
            return;
        }
        let answered = success.then_some(&self.one);
        originate_response(
            &mut self.out,
            &self.req,
            answered,
            reason,
            &self.pbx.cfg.channelvars,
        );
    }

    // ---- the common start ----

    fn start(&mut self, rings_out: bool) {
        if self.two.is_some() {
            self.start_local(rings_out);
        } else {
            self.start_sip();
        }
    }

    fn start_sip(&mut self) {
        let vars = self.pbx.cfg.channelvars.clone();
        let out = &mut self.out;
        let s = &mut self.one;
        out.channel_event("Newchannel", PRIV_CALL, s, &vars, &[]);
        out.var_set(s, &vars, "SIPCALLID", &sip_call_id(&s.uniqueid));
        s.exten.clear();
        dial_out(out, s, &vars, &self.req);
        out.dial_event(
            "DialBegin",
            s,
            &vars,
            &[("DialString", &self.req.dial.data)],
        );
        s.state = ChanState::Ringing;
        out.channel_event("Newstate", PRIV_CALL, s, &vars, &[]);
        out.dial_event("DialState", s, &vars, &[("DialStatus", "RINGING")]);
    }

    fn start_local(&mut self, rings_out: bool) {
        let vars = self.pbx.cfg.channelvars.clone();
        let ring = secs_text(self.outcome.ring);
        let timeout = secs_text(self.req.timeout);
        let kind = self.outcome.kind;
        let Some(two) = self.two.as_mut() else {
            return;
        };
        let out = &mut self.out;
        let one = &mut self.one;
        out.channel_event("Newchannel", PRIV_CALL, one, &vars, &[]);
        out.channel_event("Newchannel", PRIV_CALL, two, &vars, &[]);
        dial_out(out, one, &vars, &self.req);
        // The ;2 half gets the variables copied: its VarSet still shows the old value.
        for (k, v) in &self.req.variables {
            out.var_set(two, &vars, k, v);
            two.set_var(k, v);
        }
        set_caller_id(two, &self.req);
        two.conn_num = one.cid_num.clone();
        two.conn_name = one.cid_name.clone();
        out.channel_event("NewCallerid", PRIV_CALL, two, &vars, &[CALLING_PRES]);
        out.channel_event("NewConnectedLine", PRIV_CALL, two, &vars, &[]);
        out.local_bridge(one, two, &vars);
        out.dial_event(
            "DialBegin",
            one,
            &vars,
            &[("DialString", &self.req.dial.data)],
        );
        let rings = rings_out || !self.outcome.ring.is_zero();
        if rings {
            // Ringing(), then Wait() until the outcome.
            self.two_prio = 1;
            two.priority = 1;
            out.newexten(two, &vars, "Ringing", "");
            one.state = ChanState::Ringing;
            out.channel_event("Newstate", PRIV_CALL, one, &vars, &[]);
            two.priority = 2;
            self.two_prio = 2;
            let wait = if rings_out { &timeout } else { &ring };
            if rings_out {
                out.newexten(two, &vars, "Wait", wait);
                out.dial_event("DialState", one, &vars, &[("DialStatus", "RINGING")]);
            } else {
                out.dial_event("DialState", one, &vars, &[("DialStatus", "RINGING")]);
                out.newexten(two, &vars, "Wait", wait);
            }
        } else if kind == OutcomeKind::Answered || kind == OutcomeKind::RemoteHangup {
            // Answered at once: Answer() is the first application (local_answered).
            self.two_prio = 1;
            out.newexten(two, &vars, "Answer", "");
        }
    }

    // ---- outcomes ----

    fn answer(&mut self) {
        let vars = self.pbx.cfg.channelvars.clone();
        self.answered = true;
        self.answered_at = Instant::now();
        let talk = secs_text(self.outcome.talk);
        if let Some(mut two) = self.two.take() {
            let out = &mut self.out;
            if self.two_prio >= 2 {
                self.two_prio += 1;
                two.priority = self.two_prio;
                out.newexten(&two, &vars, "Answer", "");
            }
            self.report(true, REASON_ANSWERED);
            let out = &mut self.out;
            two.state = ChanState::Up;
            out.channel_event("Newstate", PRIV_CALL, &two, &vars, &[]);
            self.one.state = ChanState::Up;
            out.channel_event("Newstate", PRIV_CALL, &self.one, &vars, &[]);
            out.dial_event("DialEnd", &self.one, &vars, &[("DialStatus", "ANSWER")]);
            self.run_dialplan();
            self.two_prio += 1;
            two.priority = self.two_prio;
            self.out.newexten(&two, &vars, "Wait", &talk);
            self.two = Some(two);
        } else {
            let out = &mut self.out;
            self.one.state = ChanState::Up;
            out.channel_event("Newstate", PRIV_CALL, &self.one, &vars, &[]);
            out.dial_event("DialEnd", &self.one, &vars, &[("DialStatus", "ANSWER")]);
            self.run_dialplan();
            self.report(true, REASON_ANSWERED);
        }
    }

    /// The Originate's target after answer: NoOp, then Wait(talk); or the flow's start.
    fn run_dialplan(&mut self) {
        if self.flow.is_some() {
            return self.flow_start();
        }
        let vars = self.pbx.cfg.channelvars.clone();
        let talk = secs_text(self.outcome.talk);
        let s = &mut self.one;
        if let Some((app, data)) = &self.req.application {
            s.context.clear();
            s.exten.clear();
            s.priority = 1;
            self.out.newexten(s, &vars, app, data);
            return;
        }
        s.context = self.req.context.clone();
        s.exten = self.req.exten.clone();
        s.priority = self.req.priority;
        let label = if s.exten == "s" { "answered" } else { &s.exten };
        let noop = match self.req.variables.first() {
            Some((k, v)) => format!("{label} {k}={v}"),
            None => label.to_string(),
        };
        self.out.newexten(s, &vars, "NoOp", &noop);
        s.priority += 1;
        self.out.newexten(s, &vars, "Wait", &talk);
    }

    fn dialplan_hangup(&mut self) {
        let vars = self.pbx.cfg.channelvars.clone();
        let out = &mut self.out;
        let one = &mut self.one;
        if self.req.application.is_none() {
            one.priority += 1;
            out.newexten(one, &vars, "Hangup", "");
        }
        out.hangup_request("SoftHangupRequest", one, &vars, SOFT_EXPLICIT);
        match &self.two {
            Some(two) => {
                out.hangup_request("HangupRequest", two, &vars, 16);
                out.hangup(one, &vars, 16);
                out.hangup_request("SoftHangupRequest", two, &vars, SOFT_EXPLICIT);
                out.hangup(two, &vars, 16);
            }
            None => {
                out.rtp_teardown(one, &vars);
                out.hangup(one, &vars, 16);
            }
        }
    }

    fn remote_hangup(&mut self) {
        let vars = self.pbx.cfg.channelvars.clone();
        if let Some(two) = &self.two {
            let (out, one) = (&mut self.out, &self.one);
            out.hangup_request("SoftHangupRequest", two, &vars, SOFT_EXPLICIT);
            out.hangup_request("HangupRequest", one, &vars, 16);
            out.hangup(two, &vars, 16);
            out.hangup_request("SoftHangupRequest", one, &vars, SOFT_EXPLICIT);
            out.hangup(one, &vars, 16);
            return;
        }
        // The BYE: five RTP VarSets (no repeat of RTPAUDIOQOS), then the requests.
        for (name, value) in &crate::channel_events::RTP_QOS_VARS[..5] {
            self.out.var_set(&self.one, &vars, name, value);
        }
        self.out
            .hangup_request("HangupRequest", &self.one, &vars, 16);
        self.out
            .hangup_request("SoftHangupRequest", &self.one, &vars, SOFT_EXPLICIT);
        self.hangup_handler();
        self.out.hangup(&self.one, &vars, 16);
    }

    fn rejected(&mut self, kind: OutcomeKind) {
        if self.two.is_some() {
            return self.rejected_local(kind);
        }
        let vars = self.pbx.cfg.channelvars.clone();
        match kind {
            OutcomeKind::Busy | OutcomeKind::Decline => {
                let cause = if kind == OutcomeKind::Busy { 17 } else { 21 };
                self.out
                    .dial_event("DialEnd", &self.one, &vars, &[("DialStatus", "BUSY")]);
                self.out.hangup(&self.one, &vars, cause);
                self.report(false, REASON_BUSY);
            }
            OutcomeKind::Congestion => {
                self.out
                    .dial_event("DialEnd", &self.one, &vars, &[("DialStatus", "CONGESTION")]);
                self.report(false, REASON_CONGESTION);
                self.out.hangup(&self.one, &vars, 34);
            }
            OutcomeKind::NotFound => {
                self.out
                    .hangup_request("HangupRequest", &self.one, &vars, 1);
                self.out
                    .dial_event("DialEnd", &self.one, &vars, &[("DialStatus", "NOANSWER")]);
                self.out.rtp_teardown(&self.one, &vars);
                self.out.hangup(&self.one, &vars, 1);
                self.report(false, REASON_FAILED);
            }
            _ => {}
        }
    }

    fn rejected_local(&mut self, kind: OutcomeKind) {
        let vars = self.pbx.cfg.channelvars.clone();
        let Some(mut two) = self.two.take() else {
            return;
        };
        let (app, status, reason, cause) = match kind {
            OutcomeKind::Busy => ("Busy", "BUSY", REASON_BUSY, 17),
            OutcomeKind::Decline => ("Busy", "BUSY", REASON_BUSY, 21),
            OutcomeKind::NotFound => ("Congestion", "NOANSWER", REASON_FAILED, 1),
            _ => ("Congestion", "CONGESTION", REASON_CONGESTION, 34),
        };
        self.two_prio += 1;
        two.priority = self.two_prio;
        self.out.newexten(&two, &vars, app, "2");
        two.state = ChanState::Busy;
        self.out
            .channel_event("Newstate", PRIV_CALL, &two, &vars, &[]);
        // local_busy reports before DialEnd, local_congestion after the ;1 Hangup.
        let early = app == "Busy";
        if early {
            self.report(false, reason);
        }
        self.out
            .dial_event("DialEnd", &self.one, &vars, &[("DialStatus", status)]);
        self.out.hangup_request("HangupRequest", &two, &vars, 0);
        self.out.hangup(&self.one, &vars, 0);
        if !early {
            self.report(false, reason);
        }
        self.out
            .hangup_request("SoftHangupRequest", &two, &vars, SOFT_EXPLICIT);
        self.out.hangup(&two, &vars, cause);
        self.two = Some(two);
    }

    fn no_answer(&mut self) {
        let vars = self.pbx.cfg.channelvars.clone();
        match self.two.take() {
            Some(two) => {
                self.out.hangup_request("HangupRequest", &two, &vars, 19);
                self.report(false, REASON_NO_ANSWER);
                self.out
                    .hangup_request("SoftHangupRequest", &two, &vars, SOFT_EXPLICIT);
                self.out.hangup(&two, &vars, 19);
                self.out.hangup(&self.one, &vars, 19);
                self.two = Some(two);
            }
            None => {
                // No DialEnd at all on a ring timeout.
                self.out.hangup(&self.one, &vars, 19);
                self.report(false, REASON_NO_ANSWER);
            }
        }
    }

    // ---- interruptions ----

    fn interrupted(mut self, cmd: CallCmd) {
        let vars = self.pbx.cfg.channelvars.clone();
        match cmd {
            CallCmd::Hangup { cause, leg } => {
                if !self.answered {
                    self.out
                        .dial_event("DialEnd", &self.one, &vars, &[("DialStatus", "CANCEL")]);
                }
                match self.two.take() {
                    Some(two) => {
                        let (target, other) = if leg == 1 {
                            (&two, &self.one)
                        } else {
                            (&self.one, &two)
                        };
                        self.out
                            .hangup_request("SoftHangupRequest", target, &vars, SOFT_EXPLICIT);
                        self.out
                            .hangup_request("HangupRequest", other, &vars, cause);
                        self.out.hangup(target, &vars, cause);
                        self.out
                            .hangup_request("SoftHangupRequest", other, &vars, SOFT_EXPLICIT);
                        self.out.hangup(other, &vars, cause);
                        self.two = Some(two);
                    }
                    None => {
                        self.out.hangup_request(
                            "SoftHangupRequest",
                            &self.one,
                            &vars,
                            SOFT_EXPLICIT,
                        );
                        self.hangup_handler();
                        self.out.rtp_teardown(&self.one, &vars);
                        self.out.hangup(&self.one, &vars, cause);
                    }
                }
                if !self.answered {
                    self.report(false, REASON_HANGUP);
                }
            }
            CallCmd::Shutdown => {
                self.shut_down = true;
                let legs: Vec<Snapshot> = std::iter::once(self.one.clone())
                    .chain(self.two.clone())
                    .collect();
                for s in &legs {
                    self.out
                        .hangup_request("SoftHangupRequest", s, &vars, SOFT_SHUTDOWN);
                    self.out
                        .hangup_request("SoftHangupRequest", s, &vars, SOFT_EXPLICIT);
                    if self.two.is_none() {
                        self.hangup_handler();
                    }
                    if self.answered && self.two.is_none() {
                        self.out.rtp_teardown(s, &vars);
                    }
                    self.out.hangup(s, &vars, 16);
                }
            }
        }
        self.finish();
    }
}

/// `CID-CallingPres` of every NewCallerid the recordings show.
const CALLING_PRES: (&str, &str) = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)");

fn set_caller_id(s: &mut Snapshot, req: &OriginateRequest) {
    if let Some(n) = &req.cid_num {
        s.cid_num = n.clone();
    }
    if let Some(n) = &req.cid_name {
        s.cid_name = n.clone();
    }
}

/// The outbound channel (SIP, or Local `;1`) enters `AppDial2`, takes the Originate's variables
/// and caller id, and shows the caller as its connected line.
fn dial_out(out: &mut EventBuf, s: &mut Snapshot, vars: &[String], req: &OriginateRequest) {
    out.newexten(s, vars, "AppDial2", "(Outgoing Line)");
    for (k, v) in &req.variables {
        s.set_var(k, v);
        out.var_set(s, vars, k, v);
    }
    set_caller_id(s, req);
    out.channel_event("NewCallerid", PRIV_CALL, s, vars, &[CALLING_PRES]);
    s.conn_num = s.cid_num.clone();
    s.conn_name = s.cid_name.clone();
    out.channel_event("NewConnectedLine", PRIV_CALL, s, vars, &[]);
}

/// Dialplan argument for a duration: `2` for whole seconds, `1.5` otherwise.
fn secs_text(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        s.trim_end_matches('0').to_string()
    }
}

/// A chan_sip-like Call-ID derived from the Uniqueid (stable, no RNG on the hot path).
fn sip_call_id(uniqueid: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uniqueid.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let h2 = h.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("{h:016x}{h2:016x}@127.0.0.1:5060")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_dialplan_arguments() {
        assert_eq!(secs_text(Duration::from_secs(2)), "2");
        assert_eq!(secs_text(Duration::from_millis(1500)), "1.5");
        assert_eq!(secs_text(Duration::ZERO), "0");
    }

    #[test]
    fn sip_call_ids_differ_per_channel() {
        let a = sip_call_id("1.0");
        assert_ne!(a, sip_call_id("1.1"));
        assert!(a.ends_with("@127.0.0.1:5060"));
        assert_eq!(a.len(), 32 + "@127.0.0.1:5060".len());
    }
}
