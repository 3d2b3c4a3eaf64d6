//! Faults on demand: drop, stall, resume, garbage, refused logins, and a restart that ends every
//! call the way `core stop now` did in core_stop_midcall.ami.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::channel_events::{EventBuf, PRIV_SYSTEM};
use crate::pbx::{Fault, Pbx};

pub(crate) fn send(pbx: &Pbx, fault: Fault) {
    // No session open: nothing to do.
    let _ = pbx.faults.send(fault);
}

pub(crate) fn refuse_logins(pbx: &Pbx, on: bool) {
    pbx.refuse_logins.store(on, Ordering::SeqCst);
}

async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !done() && Instant::now() < end {
        sleep(Duration::from_millis(5)).await;
    }
}

/// Every live channel hangs up (SoftHangupRequest Cause 4 ... Hangup), then after the configured
/// delay `Event: Shutdown` goes out and every session is closed; new connections are closed at
/// once for `restart_downtime_ms`, then the server is up again with a fresh uptime.
pub(crate) async fn restart(pbx: &Arc<Pbx>) {
    pbx.down.store(true, Ordering::SeqCst);
    pbx.shutdown_calls();
    wait_until(Duration::from_secs(5), || pbx.channel_count() == 0).await;
    sleep(Duration::from_millis(pbx.cfg.shutdown_event_delay_ms)).await;
    let mut ev = EventBuf::new();
    ev.begin_event("Shutdown", Some(PRIV_SYSTEM));
    ev.header("Shutdown", "Cleanly");
    ev.header("Restart", "False");
    ev.end();
    let (bytes, _) = ev.take();
    pbx.publish_shutdown(bytes);
    wait_until(Duration::from_secs(2), || {
        pbx.sessions.load(Ordering::SeqCst) == 0
    })
    .await;
    // Stalled sessions never read the Shutdown: cut them.
    send(pbx, Fault::Drop);
    wait_until(Duration::from_secs(1), || {
        pbx.sessions.load(Ordering::SeqCst) == 0
    })
    .await;
    sleep(Duration::from_millis(pbx.cfg.restart_downtime_ms)).await;
    *pbx.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    pbx.down.store(false, Ordering::SeqCst);
}
