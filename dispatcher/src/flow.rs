//! What an Originate carries for its batch's flow after the answer (`docs/call-flow.md`): a
//! batch with a flow is dialed into the shipped dialplan's context with the channel variables
//! it reads; a batch without one goes to the account's own `dial_context`, as before.

use std::time::Duration;

use ami_bridge::Originate;
use chrono::Utc;
use dialer_core::media_url::MediaUrls;

use crate::state::Claimed;

/// How long a recording upload URL stays valid past the longest the call could last: the
/// PBX uploads once the channel is gone, and `curl` may take a while on a slow link.
const UPLOAD_GRACE: Duration = Duration::from_secs(3600);

/// The dispatcher's side of the flow: the dialplan context it dials into, and the media URLs
/// it hands the PBX.
#[derive(Debug, Clone)]
pub struct FlowSetup {
    /// `DIALER_FLOW_CONTEXT` (default `dialer-flow`).
    pub context: String,
    pub media: MediaUrls,
}

impl FlowSetup {
    /// The Originate of a claimed attempt, addressed to its dialplan: the flow's context and
    /// variables when its batch has a flow, else the account's context and extension.
    pub fn address(&self, o: Originate, c: &Claimed) -> Originate {
        let flow = c.call_flow();
        if flow.is_plain() {
            return o.extension(c.dial_context.clone(), c.dial_exten.clone(), 1);
        }
        let longest =
            Duration::from_secs((c.ring_timeout_seconds.max(1) + c.max_call_seconds.max(1)) as u64)
                + UPLOAD_GRACE;
        let expires = Utc::now() + chrono::Duration::from_std(longest).unwrap_or_default();
        let record_url = flow
            .record
            .then(|| self.media.recording_upload(c.call_id, c.attempt, expires));
        let mut o = o.extension(self.context.clone(), "s".to_owned(), 1);
        for (name, value) in flow.originate_variables(|p| self.media.prompt(p), record_url) {
            o = o.variable(name, value);
        }
        o
    }
}
