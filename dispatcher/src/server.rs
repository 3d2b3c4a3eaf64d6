//! One Asterisk server this dispatcher holds the lease of: its AMI connection, its event pump,
//! its channel count and its own calls-per-second pacing.
//!
//! While the connection is down the server takes no new calls. When it comes back, the calls
//! that were in flight on it are reconciled against `CoreShowChannels`: those whose channel is
//! gone ended while we could not see them, and end as `unknown`.
//!
//! [`Server::settle`] lets a timer judge on what the PBX has said: it returns once every event
//! that had arrived in the socket is applied (after this process was stopped, they wait there
//! unread while every timer has run out).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ami_bridge::{AmiClient, AmiError, Backoff, ClientConfig, ClientEvent, Originate};
use dialer_core::models::AsteriskServer;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use uuid::Uuid;

use crate::flow::FlowSetup;
use crate::health::{Health, HealthPolicy};
use crate::pacer::Pacer;
use crate::registry::Registry;
use crate::state::{Claimed, Transition};

/// How long a PBX that said it is shutting down takes no new call while its connection stays up.
const SHUTDOWN_HOLD: Duration = Duration::from_secs(30);

/// The servers this dispatcher holds, by id.
pub type Servers = Arc<Mutex<HashMap<i64, Arc<Server>>>>;

/// A server row as the dispatcher holds it.
pub type ServerSpec = AsteriskServer;

/// The same server set up the same way, the row's timestamps aside: a held server whose row
/// changed otherwise is reconnected.
pub fn same_setup(held: &ServerSpec, row: &ServerSpec) -> bool {
    let held = ServerSpec {
        created_at: row.created_at,
        updated_at: row.updated_at,
        ..held.clone()
    };
    held == *row
}

pub struct Server {
    pub spec: ServerSpec,
    client: Mutex<Option<AmiClient>>,
    connected: AtomicBool,
    /// Handing the server to another dispatcher: no new calls; released once empty.
    draining: AtomicBool,
    /// When the PBX said it is shutting down: no new calls until the connection is back, or
    /// for [`SHUTDOWN_HOLD`] at most (a shutdown can be aborted, `core abort shutdown`).
    shutting_down: Mutex<Option<Instant>>,
    pacer: Mutex<Pacer>,
    /// Overload protection: scales the usable channels and calls per second.
    health: Mutex<Health>,
    /// Channels promised to claims not yet registered.
    reserved: Mutex<usize>,
    /// The last AMI catch-up mark whose events are all applied (see [`Server::settle`]).
    caught_up: watch::Sender<u64>,
    /// Where the Originate's write and its channel's read meet (see [`crate::health`]).
    registry: Arc<Registry>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Starts connecting (with retries) and pumping events into `transitions`.
    pub fn start(
        spec: ServerSpec,
        registry: Arc<Registry>,
        transitions: mpsc::UnboundedSender<Transition>,
    ) -> Arc<Server> {
        let server = Arc::new(Server {
            pacer: Mutex::new(Pacer::per_second(Some(f64::from(spec.max_cps)))),
            health: Mutex::new(Health::new(HealthPolicy::default(), Instant::now())),
            spec,
            client: Mutex::new(None),
            connected: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            shutting_down: Mutex::new(None),
            reserved: Mutex::new(0),
            caught_up: watch::Sender::new(0),
            registry: registry.clone(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(run(server.clone(), registry, transitions));
        if let Ok(mut t) = server.task.lock() {
            *t = Some(task);
        }
        server
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Connected and not being handed over: may take new calls.
    pub fn is_dialable(&self) -> bool {
        self.is_connected() && !self.draining.load(Ordering::SeqCst) && !self.is_shutting_down()
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down
            .lock()
            .is_ok_and(|s| s.is_some_and(|t| t.elapsed() < SHUTDOWN_HOLD))
    }

    /// The PBX refused an Originate because it is shutting down: it takes no new call until
    /// its connection is back (it closes the connection once stopped).
    pub fn shutting_down(&self) {
        if let Ok(mut s) = self.shutting_down.lock()
            && s.replace(Instant::now()).is_none()
        {
            warn!(server = %self.spec.code, "PBX shutting down; no new calls on it until it is back");
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::SeqCst);
    }

    /// No live call and no claim in progress on it.
    pub fn is_idle(&self, registry: &Registry) -> bool {
        registry.on_server(self.spec.id) == 0 && self.reserved.lock().is_ok_and(|r| *r == 0)
    }

    /// The share of the configured capacity usable now (below 1 while the PBX is overloaded).
    pub fn capacity_factor(&self) -> f64 {
        self.health.lock().map_or(1.0, |h| h.factor())
    }

    /// Calls per second the server takes now: its `max_cps` scaled by the overload factor.
    pub fn calls_per_second(&self) -> f64 {
        self.cps_at(self.capacity_factor())
    }

    /// `max_cps` scaled by an overload factor: the pace and what the scheduler plans for.
    fn cps_at(&self, factor: f64) -> f64 {
        f64::from(self.spec.max_cps.max(0)) * factor
    }

    fn usable_channels(&self) -> usize {
        (f64::from(self.spec.max_channels.max(0)) * self.capacity_factor()).ceil() as usize
    }

    /// Free channels, counting live attempts and reservations.
    pub fn free_channels(&self, registry: &Registry) -> usize {
        let reserved = self.reserved.lock().map_or(0, |r| *r);
        let used = registry.on_server(self.spec.id) + reserved;
        self.usable_channels().saturating_sub(used)
    }

    /// Records how long the PBX took to create an Originate's channel.
    fn channel_created(&self, after: Duration) {
        if let Ok(mut h) = self.health.lock() {
            h.channel_created(after, Instant::now());
        }
        metrics::histogram!("dialer_channel_creation_seconds", "server" => self.spec.code.clone())
            .record(after.as_secs_f64());
    }

    /// Records an Originate that got no channel at all.
    fn no_channel(&self) {
        if let Ok(mut h) = self.health.lock() {
            h.no_channel(Instant::now());
        }
    }

    /// Re-evaluates overload (about once a second) and applies the factor to the pacing.
    pub fn check_health(&self) {
        let factor = match self.health.lock() {
            Ok(mut h) => {
                let seen = h.evaluate(Instant::now());
                if seen.changed() {
                    warn!(
                        server = %self.spec.code,
                        from = seen.previous,
                        to = seen.factor,
                        channel_p90_ms = seen.p90.map(|p| p.as_millis() as u64),
                        knee_ms = seen.knee.as_millis() as u64,
                        channels = seen.channels,
                        no_channel = seen.failures,
                        "PBX capacity factor changed"
                    );
                }
                seen.factor
            }
            Err(_) => return,
        };
        if let Ok(mut p) = self.pacer.lock() {
            p.set_rate(Some(self.cps_at(factor)));
        }
        let code = self.spec.code.clone();
        metrics::gauge!("dialer_server_capacity_factor", "server" => code.clone()).set(factor);
        metrics::gauge!("dialer_server_connected", "server" => code).set(if self.is_connected() {
            1.0
        } else {
            0.0
        });
    }

    /// Load relative to capacity, for choosing the least loaded server.
    pub fn load(&self, registry: &Registry) -> f64 {
        let max = self.usable_channels().max(1) as f64;
        let reserved = self.reserved.lock().map_or(0, |r| *r);
        (registry.on_server(self.spec.id) + reserved) as f64 / max
    }

    pub fn reserve(&self, n: usize) {
        if let Ok(mut r) = self.reserved.lock() {
            *r += n;
        }
    }

    pub fn release(&self, n: usize) {
        if let Ok(mut r) = self.reserved.lock() {
            *r = r.saturating_sub(n);
        }
    }

    /// When this server's own pacing allows the next Originate, `from` on (taken now).
    pub fn pace_from(&self, from: Instant) -> Instant {
        let from = from.max(Instant::now());
        self.pacer.lock().map_or(from, |mut p| p.reserve(from))
    }

    /// The AMI client, while connected.
    fn client(&self) -> Result<AmiClient, AmiError> {
        self.client
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or(AmiError::NotConnected)
    }

    /// Sends the Originate of a claimed attempt.
    pub async fn originate(&self, c: &Claimed, flow: &FlowSetup) -> Result<(), AmiError> {
        let client = self.client()?;
        let channel = channel_for(&self.spec.channel_template, &c.phone_e164);
        let mut o = flow
            .address(Originate::new(channel), c)
            .timeout(Duration::from_secs(c.ring_timeout_seconds.max(1) as u64))
            .channel_id(c.attempt_id.to_string())
            .account(c.accountcode.clone())
            .variable("DIALER_CALL_ID", c.call_id.to_string())
            .variable("DIALER_ATTEMPT", c.attempt.to_string());
        if let Some(cid) = &c.caller_id {
            o = o.caller_id(cid.clone());
        }
        metrics::counter!("dialer_originates_total", "server" => self.spec.code.clone())
            .increment(1);
        let response = client.originate(o).await?;
        if let Some(at) = response.written_at
            && let Some(after) = self.registry.originate_written(&c.attempt_id, at)
        {
            self.channel_created(after);
        }
        Ok(())
    }

    pub async fn hangup(&self, attempt: Uuid) -> Result<(), AmiError> {
        let client = self.client()?;
        // Asterisk's Hangup takes a uniqueid as well as a channel name; ours is the attempt id.
        // Cause 16: normal clearing.
        client
            .hangup(&attempt.to_string(), Some(16))
            .await
            .map(|_| ())
    }

    /// Waits until every AMI event that had arrived from this server when called is applied
    /// to the attempts followed (ended, answered), at most `within`. `false` when the server is
    /// not connected (nothing can arrive) or it took longer.
    pub async fn settle(&self, within: Duration) -> bool {
        if !self.is_connected() {
            return false;
        }
        let Ok(mark) = self.client().and_then(|c| c.catch_up()) else {
            return false;
        };
        let mut applied = self.caught_up.subscribe();
        let reached = tokio::time::timeout(within, applied.wait_for(|n| *n >= mark)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Whether the attempt's channel is up on the PBX (`Some(answered)`), from `CoreShowChannels`.
    pub async fn live_channel(&self, attempt: Uuid) -> Option<bool> {
        let client = self.client().ok()?;
        let channels = client.core_show_channels().await.ok()?;
        let id = attempt.to_string();
        let mine: Vec<_> = channels
            .iter()
            .filter(|c| {
                c.get("Uniqueid") == Some(id.as_str()) || c.get("Linkedid") == Some(id.as_str())
            })
            .collect();
        if mine.is_empty() {
            return None;
        }
        Some(mine.iter().any(|c| c.get("ChannelState") == Some("6")))
    }

    pub async fn stop(&self) {
        let client = self.client.lock().ok().and_then(|mut c| c.take());
        if let Some(client) = client {
            let _ = client.logoff().await;
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
        }
        self.connected.store(false, Ordering::SeqCst);
    }
}

/// `PJSIP/{number}@trunk` with the E.164 number (`+` included; a trunk that wants it without
/// strips it in its dialplan).
pub fn channel_for(template: &str, e164: &str) -> String {
    template.replace("{number}", e164)
}

async fn run(
    server: Arc<Server>,
    registry: Arc<Registry>,
    transitions: mpsc::UnboundedSender<Transition>,
) {
    let spec = server.spec.clone();
    let mut config = ClientConfig::new(
        format!("{}:{}", spec.host, spec.port),
        spec.username.clone(),
        spec.secret.clone(),
    );
    config.ping_interval = Duration::from_secs(3);
    config.ping_timeout = Duration::from_secs(3);
    // The overload signal is timed at the socket; this runtime's own delays stay out of it.
    config.io_thread = true;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let (client, mut events) = loop {
        match AmiClient::connect(config.clone()).await {
            Ok(pair) => break pair,
            Err(e) => {
                warn!(server = %spec.code, error = %e, "AMI connect failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    };
    if let Ok(mut c) = server.client.lock() {
        *c = Some(client.clone());
    }
    // When the last connection was seen lost: only Originates sent before it can have missed
    // their events.
    let mut lost_at: Option<Instant> = None;
    while let Some(event) = events.recv().await {
        match event {
            ClientEvent::Event(e) => {
                if let Some(t) = registry.on_event(spec.id, &e) {
                    match &t {
                        Transition::Started { attempt, .. } => {
                            if let Some(at) = e.read_at()
                                && let Some(after) = registry.channel_read(attempt, at)
                            {
                                server.channel_created(after);
                            }
                        }
                        Transition::Ended { outcome, .. }
                            if outcome.disposition
                                == dialer_core::domain::Disposition::Unreachable
                                && outcome.cause.is_none() =>
                        {
                            server.no_channel();
                        }
                        _ => {}
                    }
                    let _ = transitions.send(t);
                }
            }
            ClientEvent::Connected { reconnected } => {
                info!(server = %spec.code, reconnected, "AMI connected");
                if reconnected {
                    let lost_at = lost_at.take().unwrap_or_else(Instant::now);
                    reconcile(&server, &client, &registry, &transitions, lost_at).await;
                }
                if let Ok(mut s) = server.shutting_down.lock() {
                    s.take();
                }
                server.connected.store(true, Ordering::SeqCst);
            }
            // Everything before it on the stream is applied: timers waiting on it may judge.
            ClientEvent::CaughtUp(mark) => {
                server.caught_up.send_replace(mark);
            }
            ClientEvent::Disconnected { reason } => {
                warn!(server = %spec.code, ?reason, "AMI connection lost; no new calls on it");
                server.connected.store(false, Ordering::SeqCst);
                lost_at.get_or_insert_with(Instant::now);
            }
        }
    }
    server.connected.store(false, Ordering::SeqCst);
}

async fn reconcile(
    server: &Server,
    client: &AmiClient,
    registry: &Registry,
    transitions: &mpsc::UnboundedSender<Transition>,
    lost_at: Instant,
) {
    match client.core_show_channels().await {
        Ok(channels) => {
            let live: HashSet<Uuid> = channels
                .iter()
                .flat_map(|c| [c.get("Uniqueid"), c.get("Linkedid")])
                .flatten()
                .filter_map(|u| Uuid::parse_str(u).ok())
                .collect();
            for t in registry.reconcile(server.spec.id, &live, lost_at) {
                let _ = transitions.send(t);
            }
        }
        Err(e) => warn!(server = %server.spec.code, error = %e, "CoreShowChannels failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            channel_for("PJSIP/{number}@trunk", "+919876543210"),
            "PJSIP/+919876543210@trunk"
        );
        assert_eq!(
            channel_for("Local/{number}@dialer-out", "+15550100"),
            "Local/+15550100@dialer-out"
        );
    }
}
