//! The simulated Asterisk core: live channels, id and name counters, the event stream every
//! session reads, capacity, and the outcome picker.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::channel_events::{ChanState, EventBuf, Snapshot, UNKNOWN};
use crate::channel_setup::ChannelSetup;
use crate::config::{ConfigError, SimConfig};
use crate::event_filter::EventFilter;
use crate::originate_action::{NoChannel, OriginateRequest};
use crate::outcome::{Outcome, OutcomePicker};
use crate::stats::Stats;
use crate::wall_clock;

/// What sessions receive from the core, in order.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// Events for logged-in sessions.
    Events(Bytes),
    /// Write this (`Event: Shutdown`) and close.
    Shutdown(Bytes),
}

/// Commands a live call obeys; the registry holds each call's sender.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CallCmd {
    /// Hangup action on leg 0 (the channel, or Local `;1`) or leg 1 (Local `;2`).
    Hangup { cause: u32, leg: u8 },
    /// `core stop now`.
    Shutdown,
}

/// Faults aimed at the sessions open right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Drop,
    Stall,
    Resume,
    Garbage,
}

/// A live channel as CoreShowChannels and Hangup see it.
#[derive(Debug, Clone)]
pub(crate) struct ChannelView {
    pub snapshot: Snapshot,
    pub app: String,
    pub app_data: String,
    pub created: Instant,
}

/// The channels of a new call, and where the commands to it arrive.
pub(crate) struct NewChannels {
    pub one: Snapshot,
    /// Local `;2`.
    pub two: Option<Snapshot>,
    pub cmds: mpsc::Receiver<CallCmd>,
}

#[derive(Debug)]
struct Entry {
    view: ChannelView,
    /// Which leg of its call (0, or 1 for a Local `;2`).
    leg: u8,
    cmd: mpsc::Sender<CallCmd>,
}

#[derive(Debug, Default)]
struct Registry {
    /// Key: channel name, lower-cased (Asterisk looks names up case-insensitively).
    by_name: HashMap<String, Entry>,
    /// Uniqueid -> key in `by_name`; ordered for Asterisk's prefix lookup of `ChannelId`.
    by_uniqueid: BTreeMap<String, String>,
    /// Per-technology channel name counters (`SIP/trunk-0000000b`).
    name_seq: HashMap<String, u32>,
}

#[derive(Debug)]
pub(crate) struct Pbx {
    pub cfg: SimConfig,
    pub stats: Stats,
    events: broadcast::Sender<Outbound>,
    pub faults: broadcast::Sender<Fault>,
    registry: Mutex<Registry>,
    picker: Mutex<OutcomePicker>,
    /// The AMI user's `read` classes and `eventfilter`.
    pub filter: EventFilter,
    /// When each Originate gets its channel (capacity, latency).
    pub setup: ChannelSetup,
    /// Fetches the flow's prompts (`prompt_fetch`).
    pub fetch_http: reqwest::Client,
    /// Uploads the flow's recordings (`recording_upload`).
    pub upload_http: reqwest::Client,
    uniqueid_seq: AtomicU64,
    pub refuse_logins: AtomicBool,
    /// Set while a restart is under way: new connections are closed at once.
    pub down: AtomicBool,
    pub sessions: AtomicUsize,
    pub started: Mutex<Instant>,
    /// Bumped when the PBX stops (restart, shutdown): Originates still waiting for a channel
    /// from before are lost with the process, as Asterisk's would be.
    pub lifetime: AtomicU64,
}

/// Bursts buffered for a session that is behind. A session further behind is closed, as
/// Asterisk drops a client that does not read.
const EVENT_QUEUE: usize = 1 << 16;

/// Why the PBX could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PbxError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client of prompts and recordings could not be made (no usable TLS/DNS setup).
    #[error("cannot make the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl Pbx {
    pub(crate) fn new(cfg: SimConfig) -> Result<Arc<Pbx>, PbxError> {
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let (faults, _) = broadcast::channel(64);
        Ok(Arc::new(Pbx {
            filter: EventFilter::new(&cfg.read, &cfg.eventfilter)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
            setup: ChannelSetup::new(&cfg),
            fetch_http: crate::prompt_fetch::client()?,
            upload_http: crate::recording_upload::client()?,
            stats: Stats::new(),
            events,
            faults,
            registry: Mutex::new(Registry::default()),
            picker: Mutex::new(cfg.outcome_picker()),
            uniqueid_seq: AtomicU64::new(0),
            refuse_logins: AtomicBool::new(cfg.refuse_logins),
            down: AtomicBool::new(false),
            sessions: AtomicUsize::new(0),
            lifetime: AtomicU64::new(0),
            started: Mutex::new(Instant::now()),
            cfg,
        }))
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Outbound> {
        self.events.subscribe()
    }

    pub(crate) fn uptime_secs(&self) -> u64 {
        let started = *self.started.lock().unwrap_or_else(|e| e.into_inner());
        started.elapsed().as_secs()
    }

    /// Sends a burst to every session.
    pub(crate) fn publish(&self, out: &mut EventBuf) {
        if out.is_empty() {
            return;
        }
        let (bytes, n) = out.take();
        self.publish_bytes(bytes, n);
    }

    /// Sends `n` messages to every session, through the user's `eventfilter` (every session
    /// logs in as the one configured user, so one filtering serves them all); returns what
    /// passed, for a session that writes the same events itself.
    pub(crate) fn publish_bytes(&self, bytes: Bytes, n: u64) -> Bytes {
        let passed = self.filter.apply(bytes, n);
        self.stats
            .events(passed.kept, passed.bytes.len() as u64, passed.dropped);
        if !passed.bytes.is_empty() {
            // No receiver (nobody connected) is fine: events are simply not seen.
            let _ = self.events.send(Outbound::Events(passed.bytes.clone()));
        }
        passed.bytes
    }

    /// `Event: Shutdown` (unless filtered out), then every session closes.
    pub(crate) fn publish_shutdown(&self, bytes: Bytes) {
        let passed = self.filter.apply(bytes, 1);
        self.stats
            .events(passed.kept, passed.bytes.len() as u64, passed.dropped);
        let _ = self.events.send(Outbound::Shutdown(passed.bytes));
    }

    pub(crate) fn channel_count(&self) -> usize {
        self.registry().by_name.len()
    }

    /// The far end's outcome for a dialed number.
    pub(crate) fn pick_outcome(&self, number: &str) -> Outcome {
        self.picker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pick(number)
    }

    fn next_uniqueid(&self) -> String {
        let seq = self.uniqueid_seq.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}", wall_clock::epoch_secs(), seq)
    }

    /// Registers the channels of a new call (two for Local), or says why there are none.
    pub(crate) fn create_channels(&self, req: &OriginateRequest) -> Result<NewChannels, NoChannel> {
        let needed = if req.dial.local { 2 } else { 1 };
        let mut reg = self.registry();
        if reg.by_name.len() + needed > self.cfg.max_channels {
            return Err(NoChannel::Capacity);
        }
        for id in [&req.channel_id, &req.other_channel_id]
            .into_iter()
            .flatten()
        {
            // Asterisk compares only strlen(id) characters: an id that is a prefix of a live
            // Uniqueid is "already in use" (see the transcripts' README).
            let taken = reg
                .by_uniqueid
                .range(id.clone()..)
                .next()
                .is_some_and(|(live, _)| live.starts_with(id.as_str()));
            if taken {
                return Err(NoChannel::ChannelIdInUse);
            }
        }
        let base = req.dial.channel_base();
        let seq_key = if req.dial.local {
            "Local".to_string()
        } else {
            req.dial.tech.clone()
        };
        let seq = {
            let slot = reg.name_seq.entry(seq_key).or_insert(0);
            let v = *slot;
            *slot = slot.wrapping_add(1);
            v
        };
        let now = Instant::now();
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let fresh = |name: String,
                     uniqueid: String,
                     linkedid: String,
                     state,
                     context: &str,
                     exten: &str| Snapshot {
            name,
            state,
            cid_num: UNKNOWN.into(),
            cid_name: UNKNOWN.into(),
            conn_num: UNKNOWN.into(),
            conn_name: UNKNOWN.into(),
            account: req.account.clone(),
            context: context.to_string(),
            exten: exten.to_string(),
            priority: 1,
            uniqueid,
            linkedid,
            vars: Vec::new(),
        };
        let uid_one = req
            .channel_id
            .clone()
            .unwrap_or_else(|| self.next_uniqueid());
        let (one, two) = if req.dial.local {
            let uid_two = req
                .other_channel_id
                .clone()
                .unwrap_or_else(|| self.next_uniqueid());
            let one = fresh(
                format!("{base}-{seq:08x};1"),
                uid_one.clone(),
                uid_one.clone(),
                ChanState::Down,
                &req.dial.peer,
                &req.dial.number,
            );
            let two = fresh(
                format!("{base}-{seq:08x};2"),
                uid_two,
                uid_one,
                ChanState::Ring,
                &req.dial.peer,
                &req.dial.number,
            );
            (one, Some(two))
        } else {
            let one = fresh(
                format!("{base}-{seq:08x}"),
                uid_one.clone(),
                uid_one,
                ChanState::Down,
                &self.cfg.trunk_context,
                "s",
            );
            (one, None)
        };
        for (leg, snap) in std::iter::once(&one).chain(two.as_ref()).enumerate() {
            let key = snap.name.to_ascii_lowercase();
            reg.by_uniqueid.insert(snap.uniqueid.clone(), key.clone());
            reg.by_name.insert(
                key,
                Entry {
                    view: ChannelView {
                        snapshot: snap.clone(),
                        app: "AppDial2".into(),
                        app_data: "(Outgoing Line)".into(),
                        created: now,
                    },
                    leg: leg as u8,
                    cmd: cmd_tx.clone(),
                },
            );
        }
        let count = reg.by_name.len() as u64;
        drop(reg);
        self.stats.channels_changed(count);
        let ids = std::iter::once(&one).chain(two.as_ref());
        self.stats
            .channels_logged(ids.map(|s| s.uniqueid.as_str()), true);
        Ok(NewChannels {
            one,
            two,
            cmds: cmd_rx,
        })
    }

    /// Keeps what CoreShowChannels shows current.
    pub(crate) fn update_view(&self, snap: &Snapshot, app: &str, app_data: &str) {
        let mut reg = self.registry();
        if let Some(e) = reg.by_name.get_mut(&snap.name.to_ascii_lowercase()) {
            e.view.snapshot = snap.clone();
            e.view.app = app.to_string();
            e.view.app_data = app_data.to_string();
        }
    }

    /// The channels are gone (their Hangup is about to be published).
    pub(crate) fn remove_channels(&self, snaps: &[&Snapshot]) {
        let mut reg = self.registry();
        let mut gone = Vec::with_capacity(snaps.len());
        for s in snaps {
            if reg.by_name.remove(&s.name.to_ascii_lowercase()).is_some() {
                reg.by_uniqueid.remove(&s.uniqueid);
                gone.push(s.uniqueid.as_str());
            }
        }
        let count = reg.by_name.len() as u64;
        drop(reg);
        self.stats.channels_changed(count);
        self.stats.channels_logged(gone.into_iter(), false);
    }

    pub(crate) fn channel_views(&self) -> Vec<ChannelView> {
        let mut v: Vec<ChannelView> = self
            .registry()
            .by_name
            .values()
            .map(|e| e.view.clone())
            .collect();
        v.sort_by(|a, b| {
            a.created
                .cmp(&b.created)
                .then_with(|| a.snapshot.name.cmp(&b.snapshot.name))
        });
        v
    }

    /// Hangup action: by channel name or Uniqueid. `false` when there is no such channel.
    pub(crate) fn hangup(&self, channel: &str, cause: u32) -> bool {
        let target = {
            let reg = self.registry();
            let key = channel.to_ascii_lowercase();
            let key = if reg.by_name.contains_key(&key) {
                Some(key)
            } else {
                reg.by_uniqueid.get(channel).cloned()
            };
            key.and_then(|k| reg.by_name.get(&k).map(|e| (e.leg, e.cmd.clone())))
        };
        match target {
            Some((leg, cmd)) => {
                // A call already ending has stopped listening; it hangs up anyway.
                let _ = cmd.try_send(CallCmd::Hangup { cause, leg });
                true
            }
            None => false,
        }
    }

    /// Tells every call to hang up for shutdown, and forgets the Originates waiting for a
    /// channel; returns how many calls were told.
    pub(crate) fn shutdown_calls(&self) -> usize {
        self.lifetime.fetch_add(1, Ordering::SeqCst);
        self.setup.reset();
        let cmds: Vec<mpsc::Sender<CallCmd>> = self
            .registry()
            .by_name
            .values()
            .filter(|e| e.leg == 0)
            .map(|e| e.cmd.clone())
            .collect();
        for c in &cmds {
            let _ = c.try_send(CallCmd::Shutdown);
        }
        cmds.len()
    }
}
