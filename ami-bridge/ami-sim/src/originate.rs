//! Starting an Originate: the far end's outcome picked, the channels made and the call's task
//! spawned, or an immediate failure when no channel can be made.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use crate::call::Call;
use crate::channel_events::EventBuf;
use crate::originate_action::{NoChannel, OriginateRequest, originate_response};
use crate::outcome::OutcomeKind;
use crate::pbx::Pbx;

/// How an Originate started.
pub(crate) enum Started {
    /// Failed at once (no channel): an async Originate already got its OriginateResponse.
    Failed,
    /// A call runs; a sync Originate learns its result (answered or not) here.
    Running(Option<oneshot::Receiver<bool>>),
}

/// Starts an Originate. An async one gets its failed OriginateResponse here when no channel
/// can be made; the caller has already written `Originate successfully queued`.
pub(crate) fn start(pbx: &Arc<Pbx>, req: OriginateRequest) -> Started {
    pbx.stats
        .originate(&req.dial.number, req.channel_id.as_deref());
    if pbx.down.load(Ordering::SeqCst) {
        return fail_now(pbx, &req, NoChannel::ShuttingDown);
    }
    if !req.dial.known {
        return fail_now(pbx, &req, NoChannel::UnknownTech);
    }
    let outcome = pbx.pick_outcome(&req.dial.number);
    if outcome.kind == OutcomeKind::Unreachable {
        return fail_now(pbx, &req, NoChannel::Unreachable);
    }
    let channels = match pbx.create_channels(&req) {
        Ok(created) => created,
        Err(why) => return fail_now(pbx, &req, why),
    };
    let effective = if outcome.ring >= req.timeout {
        OutcomeKind::NoAnswer
    } else {
        outcome.kind
    };
    pbx.stats.outcome(effective.as_str());
    let (done_tx, done_rx) = if req.sync {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let call = Call::new(pbx.clone(), req, outcome, channels, done_tx);
    tokio::spawn(call.run());
    Started::Running(done_rx)
}

fn fail_now(pbx: &Pbx, req: &OriginateRequest, why: NoChannel) -> Started {
    pbx.stats.outcome(why.stat());
    if !req.sync {
        let mut out = EventBuf::new();
        originate_response(&mut out, req, None, 0, &pbx.cfg.channelvars);
        pbx.publish(&mut out);
    }
    Started::Failed
}
