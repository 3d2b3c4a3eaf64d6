//! The flow after the answer (docs/call-flow.md), as the shipped dialplan runs it on Asterisk
//! 20 for an Originate into the flow context: `MixMonitor` of the call (uploaded once it is
//! gone), `AMD()` and `UserEvent(DialerAMD)`, the voicemail prompt after a machine's greeting,
//! the message prompt, `Read()` of the callee's keys and `UserEvent(DialerDTMF)`, a failed prompt
//! as `UserEvent(DialerPlayback)`, then `Hangup()`.
//!
//! Events and their headers follow amd_human/amd_machine/amd_silence; the dialplan around
//! them (one `Newexten` per application run, priorities counting up, a `GotoIf` after the AMD
//! result, the variables the applications set) is modelled, not recorded. The callee hangs up
//! when its talk time ends, if that is before the flow does: then nothing more of the flow
//! happens, except the dialplan's hangup handler (`dialer-flow-hangup`): an AMD or a gather cut
//! short still reports, `DialerAMD` with `Status: HANGUP` and an empty `Cause` (what AMD()
//! sets when the channel goes), `DialerDTMF` with the keys read so far and `ReadStatus:
//! HANGUP` (what Read() sets), between `SoftHangupRequest` and `Hangup`. The handler's own
//! `Newexten`s are shown only when it reports.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};

use super::Call;
use crate::callee::AnsweredBy;
use crate::channel_events::PRIV_CALL;
use crate::config::SimConfig;
use crate::flow_vars::{AmdMode, FlowVars, Gather};
use crate::gather;
use crate::originate_action::OriginateRequest;
use crate::outcome::OutcomeKind;
use crate::pbx::{CallCmd, Pbx};
use crate::prompt_fetch;

/// Where MixMonitor keeps recordings (`astspooldir/monitor`).
const MONITOR_DIR: &str = "/var/spool/asterisk/monitor";

/// Why the flow stopped before its end.
pub(super) enum Stop {
    /// A Hangup action or shutdown.
    Cmd(CallCmd),
    /// The callee's talk time ran out.
    CalleeHungUp,
}

/// What the dialplan's hangup handler would still report (`DF_AMD_PENDING`,
/// `DF_GATHER_PENDING`): set while AMD() or the gather's Read() runs.
#[derive(Debug, Default)]
pub(super) struct Pending {
    amd: bool,
    /// The keys read so far (finish key left out), while gathering.
    gather: Option<String>,
}

/// `AMDSTATUS`, `AMDCAUSE` and when AMD gives them, after the answer, for who answered:
/// the three recordings with Asterisk's default amd.conf.
fn amd_result(by: AnsweredBy, cfg: &SimConfig) -> (&'static str, &'static str, Duration) {
    match by {
        AnsweredBy::Human => (
            "HUMAN",
            "HUMAN-800-800",
            Duration::from_millis(cfg.amd_human_ms),
        ),
        AnsweredBy::Machine => (
            "MACHINE",
            "LONGGREETING-1500-1500",
            Duration::from_millis(cfg.amd_machine_ms),
        ),
        AnsweredBy::Silence => (
            "MACHINE",
            "INITIALSILENCE-2500-2500",
            Duration::from_millis(cfg.amd_silence_ms),
        ),
    }
}

/// `UserEvent`'s argument as the dialplan writes it: `Name,Key: value,...`.
fn user_event_data(name: &str, headers: &[(&str, &str)]) -> String {
    let mut data = name.to_string();
    for (k, v) in headers {
        data.push_str(&format!(",{k}: {v}"));
    }
    data
}

impl Call {
    /// The flow's variables when this call runs the flow: an Originate into the flow context
    /// (not an `Application` one) that sets any of its steps.
    pub(super) fn flow_of(pbx: &Pbx, req: &OriginateRequest) -> Option<FlowVars> {
        if req.application.is_some() || req.context != pbx.cfg.flow_context {
            return None;
        }
        let vars = FlowVars::from_variables(&req.variables);
        vars.has_steps().then_some(vars)
    }

    /// When the callee hangs up on its own: after its talk time, when one was set (or the
    /// outcome is the callee's BYE); otherwise it stays until the flow hangs up.
    fn callee_leaves(&self) -> Option<Instant> {
        let o = &self.outcome;
        let leaves = o.kind == OutcomeKind::RemoteHangup || o.talk_configured;
        leaves.then(|| self.answered_at + o.talk)
    }

    /// The next application of the dialplan: its `Newexten`, and what CoreShowChannels shows.
    fn app(&mut self, app: &'static str, data: String) {
        let pbx = self.pbx.clone();
        self.one.priority += 1;
        self.out
            .newexten(&self.one, &pbx.cfg.channelvars, app, &data);
        self.app = Some((app, data));
    }

    fn var(&mut self, name: &str, value: &str) {
        let pbx = self.pbx.clone();
        self.one.set_var(name, value);
        self.out
            .var_set(&self.one, &pbx.cfg.channelvars, name, value);
    }

    /// `UserEvent(<name>,CallID: <call id>,<headers>)`.
    fn user_event(&mut self, name: &str, headers: &[(&str, &str)]) {
        let pbx = self.pbx.clone();
        let call_id = self
            .flow
            .as_ref()
            .map(|f| f.call_id.clone())
            .unwrap_or_default();
        let mut all = vec![("CallID", call_id.as_str())];
        all.extend_from_slice(headers);
        self.app("UserEvent", user_event_data(name, &all));
        self.out
            .user_event(&self.one, &pbx.cfg.channelvars, name, &all);
    }

    /// The start, in the answer's burst: the first line, then MixMonitor of the whole call.
    pub(super) fn flow_start(&mut self) {
        let pbx = self.pbx.clone();
        let vars = &pbx.cfg.channelvars;
        let Some(flow) = self.flow.clone() else {
            return;
        };
        let s = &mut self.one;
        s.context = self.req.context.clone();
        s.exten = self.req.exten.clone();
        s.priority = self.req.priority;
        let noop = format!("flow DIALER_CALL_ID={}", flow.call_id);
        self.out.newexten(s, vars, "NoOp", &noop);
        self.app = Some(("NoOp", noop));
        if let Some(url) = &flow.record_url {
            let file = format!("{MONITOR_DIR}/{}.wav", self.one.uniqueid);
            let post = format!("curl -sf -T {file} {url} && rm -f {file}");
            self.app("MixMonitor", format!("{}.wav,,{post}", self.one.uniqueid));
            self.var("MIXMONITOR_FILENAME", &file);
            self.out
                .channel_event("MixMonitorStart", PRIV_CALL, &self.one, vars, &[]);
        }
    }

    /// The rest of the flow, after the answer was published; ends the call.
    pub(super) async fn run_flow(mut self) {
        match self.flow_steps().await {
            Ok(()) => self.dialplan_hangup(),
            Err(Stop::CalleeHungUp) => self.remote_hangup(),
            Err(Stop::Cmd(cmd)) => return self.interrupted(cmd),
        }
        self.finish()
    }

    async fn flow_steps(&mut self) -> Result<(), Stop> {
        let Some(flow) = self.flow.clone() else {
            return Ok(());
        };
        if let Some(mode) = flow.amd {
            let by = self.outcome.callee.answered_by;
            let (status, cause, after) = amd_result(by, &self.pbx.cfg);
            self.app("AMD", String::new());
            self.pending.amd = true;
            self.flush();
            self.wait_until(self.answered_at + after).await?;
            self.var("AMDSTATUS", status);
            self.var("AMDCAUSE", cause);
            self.user_event("DialerAMD", &[("Status", status), ("Cause", cause)]);
            self.pending.amd = false;
            let machine = status == "MACHINE";
            let jump = machine && mode != AmdMode::Detect;
            self.app("GotoIf", format!("{}?machine", u8::from(jump)));
            if jump {
                if mode == AmdMode::Voicemail {
                    self.voicemail(by, flow.voicemail.as_deref()).await?;
                }
                return Ok(());
            }
        }
        if let Some(url) = &flow.message {
            self.play(url, "message").await?;
        }
        if let Some(g) = &flow.gather {
            self.read(g).await?;
        }
        Ok(())
    }

    /// `WaitForSilence` until the machine's greeting is over (dead air is silent already), then
    /// the voicemail prompt.
    async fn voicemail(&mut self, by: AnsweredBy, url: Option<&str>) -> Result<(), Stop> {
        self.app("WaitForSilence", "800,1,20".into());
        self.flush();
        if by == AnsweredBy::Machine {
            let greeting = Duration::from_millis(self.pbx.cfg.greeting_ms);
            self.wait_until(self.answered_at + greeting).await?;
        }
        self.var("WAITSTATUS", "SILENCE");
        match url {
            Some(url) => self.play(url, "voicemail").await,
            None => Ok(()),
        }
    }

    /// `Playback(<url>)`: the prompt fetched, then played for its length; one that cannot be
    /// played is reported and the flow goes on.
    async fn play(&mut self, url: &str, prompt: &str) -> Result<(), Stop> {
        self.app("Playback", url.to_string());
        self.flush();
        let http = self.pbx.fetch_http.clone();
        let fetched = self
            .step(async { prompt_fetch::fetch(&http, url).await })
            .await?;
        match fetched {
            Ok(length) => {
                self.step(sleep(length)).await?;
                self.pbx.stats.prompt(true);
                self.var("PLAYBACKSTATUS", "SUCCESS");
            }
            Err(e) => {
                tracing::warn!(error = %e, uniqueid = %self.one.uniqueid, prompt, "prompt not played");
                self.pbx.stats.prompt(false);
                self.var("PLAYBACKSTATUS", "FAILED");
                self.user_event(
                    "DialerPlayback",
                    &[("Prompt", prompt), ("Status", "FAILED")],
                );
            }
        }
        self.flush();
        Ok(())
    }

    /// `Read()` of the callee's keys, then `UserEvent(DialerDTMF)` (also when nothing came).
    async fn read(&mut self, g: &Gather) -> Result<(), Stop> {
        let pbx = self.pbx.clone();
        let vars = &pbx.cfg.channelvars;
        let finish = g.finish.map(String::from).unwrap_or_default();
        let timeout = super::secs_text(g.timeout);
        self.app("Read", format!("DIGITS,,{},t({finish}),1,{timeout}", g.max));
        self.var("READSTATUS", "ERROR");
        self.pending.gather = Some(String::new());
        self.flush();
        let start = Instant::now();
        let callee = self.outcome.callee.clone();
        let hold = Duration::from_millis(pbx.cfg.dtmf_ms);
        let result = gather::read(g, &callee.keys, callee.key_delay, hold);
        for press in &result.presses {
            self.wait_until(start + press.begin).await?;
            self.out.dtmf_begin(&self.one, vars, press.key);
            self.flush();
            self.wait_until(start + press.begin + hold).await?;
            self.out
                .dtmf_end(&self.one, vars, press.key, pbx.cfg.dtmf_ms);
            self.flush();
            if let Some(keys) = self
                .pending
                .gather
                .as_mut()
                .filter(|_| g.finish != Some(press.key))
            {
                keys.push(press.key);
            }
        }
        self.wait_until(start + result.ends).await?;
        let status = result.status.as_str();
        self.var("DIGITS", &result.digits);
        self.var("READSTATUS", status);
        self.user_event(
            "DialerDTMF",
            &[("Digits", &result.digits), ("ReadStatus", status)],
        );
        self.pending.gather = None;
        Ok(())
    }

    /// The dialplan's hangup handler, once the channel is hung up (after `SoftHangupRequest`,
    /// before `Hangup`): what an AMD() or a Read() cut short had not reported yet.
    pub(super) fn hangup_handler(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if !pending.amd && pending.gather.is_none() {
            return;
        }
        // What the application sets as the channel goes, before the handler runs.
        if pending.amd {
            self.var("AMDSTATUS", "HANGUP");
            self.var("AMDCAUSE", "");
        }
        if let Some(keys) = &pending.gather {
            self.var("DIGITS", keys);
            self.var("READSTATUS", "HANGUP");
        }
        self.one.context = "dialer-flow-hangup".into();
        self.one.exten = "s".into();
        self.one.priority = 0;
        self.app("GotoIf", format!("{}?gather", u8::from(!pending.amd)));
        if pending.amd {
            self.user_event("DialerAMD", &[("Status", "HANGUP"), ("Cause", "")]);
        }
        self.one.priority = 2;
        let gathering = pending.gather.is_some();
        self.app("GotoIf", format!("{}?done", u8::from(!gathering)));
        if let Some(keys) = &pending.gather {
            self.user_event("DialerDTMF", &[("Digits", keys), ("ReadStatus", "HANGUP")]);
        }
        self.one.priority = 4;
        self.app("Return", String::new());
    }

    async fn wait_until(&mut self, at: Instant) -> Result<(), Stop> {
        self.step(sleep_until(at)).await
    }

    /// Runs `work` unless a command comes or the callee hangs up first.
    async fn step<T>(&mut self, work: impl Future<Output = T>) -> Result<T, Stop> {
        let leaves = self.callee_leaves();
        let callee_gone = async move {
            match leaves {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let cmds = &mut self.cmds;
        let command = async move {
            match cmds.recv().await {
                Some(cmd) => cmd,
                // Every sender gone cannot happen while registered: no command will come.
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            cmd = command => Err(Stop::Cmd(cmd)),
            _ = callee_gone => Err(Stop::CalleeHungUp),
            done = work => Ok(done),
        }
    }

    /// A recording of the call, once its channel is gone and the flow recorded it.
    pub(super) fn upload_recording(&self) {
        let Some(url) = self.flow.as_ref().and_then(|f| f.record_url.clone()) else {
            return;
        };
        if !self.answered {
            return;
        }
        let pbx = Arc::clone(&self.pbx);
        crate::recording_upload::spawn(
            self.pbx.upload_http.clone(),
            self.pbx.cfg.recordings_dir.clone(),
            url,
            self.answered_at.elapsed(),
            self.one.uniqueid.clone(),
            move |ok| pbx.stats.recording_uploaded(ok),
        );
    }
}
