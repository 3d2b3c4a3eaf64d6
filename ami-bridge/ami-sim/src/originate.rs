//! Starting an Originate: the far end's outcome picked, the channels made (at once, or when the
//! channel-setup queue gets to it) and the call's task spawned, or a failure when no channel can
//! be made.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::call::Call;
use crate::channel_events::EventBuf;
use crate::originate_action::{NoChannel, OriginateRequest, originate_response};
use crate::outcome::{Outcome, OutcomeKind};
use crate::pbx::Pbx;

/// How an Originate started.
pub(crate) enum Started {
    /// Failed at once (no channel): an async Originate already got its OriginateResponse.
    Failed,
    /// A call runs or waits for its channel; a sync Originate learns its result (answered or
    /// not) here.
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
    let (done_tx, done_rx) = if req.sync {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    if pbx.setup.immediate() {
        return match launch(pbx, req, outcome, done_tx) {
            true => Started::Running(done_rx),
            false => Started::Failed,
        };
    }
    let Some(admitted) = pbx.setup.admit(Instant::now()) else {
        return fail_now(pbx, &req, NoChannel::SetupBacklog);
    };
    pbx.stats.setup_backlog(admitted.backlog);
    let pbx = pbx.clone();
    let lifetime = pbx.lifetime.load(Ordering::SeqCst);
    tokio::spawn(async move {
        tokio::time::sleep_until(admitted.at).await;
        if pbx.lifetime.load(Ordering::SeqCst) != lifetime {
            // The PBX stopped meanwhile: the Originate died with it, nothing is sent.
            pbx.stats.outcome(NoChannel::ShuttingDown.stat());
            return;
        }
        if pbx.down.load(Ordering::SeqCst) {
            fail_now(&pbx, &req, NoChannel::ShuttingDown);
            if let Some(done) = done_tx {
                let _ = done.send(false);
            }
            return;
        }
        launch(&pbx, req, outcome, done_tx);
    });
    Started::Running(done_rx)
}

/// Makes the channels and spawns the call; `false` when none can be made (then reported as a
/// failure: the OriginateResponse of an async Originate, `false` to a sync one's waiter).
fn launch(
    pbx: &Arc<Pbx>,
    req: OriginateRequest,
    outcome: Outcome,
    done: Option<oneshot::Sender<bool>>,
) -> bool {
    let channels = match pbx.create_channels(&req) {
        Ok(created) => created,
        Err(why) => {
            fail_now(pbx, &req, why);
            if let Some(done) = done {
                let _ = done.send(false);
            }
            return false;
        }
    };
    let effective = if outcome.ring >= req.timeout {
        OutcomeKind::NoAnswer
    } else {
        outcome.kind
    };
    pbx.stats.outcome(effective.as_str());
    let call = Call::new(pbx.clone(), req, outcome, channels, done);
    tokio::spawn(call.run());
    true
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
