//! The handle on a running simulator: its addresses, counters and faults, for tests and for the
//! control port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::faults;
use crate::pbx::{Fault, Pbx};
use crate::stats::StatsSnapshot;

/// Cheap to clone; every fault and counter of one simulator.
#[derive(Clone)]
pub struct SimHandle {
    pub(crate) pbx: Arc<Pbx>,
    pub(crate) addr: SocketAddr,
    pub(crate) control_addr: Option<SocketAddr>,
}

impl SimHandle {
    /// The AMI address actually bound (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.pbx.stats.snapshot()
    }

    /// Originates and channel changes on the wall clock ([`crate::stats::Timeline`]).
    pub fn timeline(&self) -> crate::stats::Timeline {
        self.pbx.stats.timeline()
    }

    pub fn reset_stats(&self) {
        self.pbx.stats.reset();
    }

    /// When each Originate arrived, as offsets from the start (or last reset) of the counters.
    pub fn originate_times(&self) -> Vec<Duration> {
        self.pbx.stats.originate_times()
    }

    /// The most Originates inside any sliding window of this length.
    pub fn max_originates_in_window(&self, window: Duration) -> u64 {
        self.pbx.stats.max_in_window(window)
    }

    pub fn current_channels(&self) -> usize {
        self.pbx.channel_count()
    }

    /// Open AMI sessions.
    pub fn sessions(&self) -> usize {
        self.pbx.sessions.load(Ordering::SeqCst)
    }

    /// Restart fault: hangups, `Event: Shutdown`, every session closed, then up again.
    /// Returns once new connections are accepted again.
    pub async fn restart(&self) {
        faults::restart(&self.pbx).await;
    }

    /// Closes every open AMI connection at once (calls go on).
    pub fn drop_connections(&self) {
        faults::send(&self.pbx, Fault::Drop);
    }

    /// Open connections stop reading and writing, without closing, until `resume`.
    pub fn stall(&self) {
        faults::send(&self.pbx, Fault::Stall);
    }

    pub fn resume(&self) {
        faults::send(&self.pbx, Fault::Resume);
    }

    /// Writes garbage bytes (NULs, invalid UTF-8, a line without a colon) to every connection.
    pub fn send_garbage(&self) {
        faults::send(&self.pbx, Fault::Garbage);
    }

    /// While on, every Login fails (after the usual delay) as with a wrong secret.
    pub fn refuse_logins(&self, on: bool) {
        faults::refuse_logins(&self.pbx, on);
    }
}
