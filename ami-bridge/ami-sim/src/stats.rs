//! What the simulator counts for other tests: originates (total, per number, per ChannelId,
//! with the time of each so any sliding window can be checked), channels now and at peak,
//! outcomes, sessions, events and their bytes, Originate-to-Newchannel latency and the setup
//! backlog. Times are tokio `Instant`s, so paused-time tests work.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::latency_histogram::{LatencyHistogram, LatencySummary};

#[derive(Debug)]
pub(crate) struct Stats {
    inner: Mutex<Counts>,
    /// Hot counters kept outside the lock.
    events: AtomicU64,
    event_bytes: AtomicU64,
    events_filtered: AtomicU64,
}

#[derive(Debug)]
struct Counts {
    since: Instant,
    /// The wall clock at `since`, so two simulators' timelines can be merged.
    since_unix_ms: u64,
    /// The ChannelId of each Originate in `times` (empty when it had none).
    time_ids: Vec<String>,
    /// Offsets from `since` of every channel's creation (`true`) and end, with its Uniqueid
    /// (an Originate's `ChannelId`, as Asterisk makes it).
    channel_log: Vec<(Duration, String, bool)>,
    originates: u64,
    by_number: BTreeMap<String, u64>,
    by_channel_id: BTreeMap<String, u64>,
    /// Offsets from `since` of every Originate, in arrival order (so sorted).
    times: Vec<Duration>,
    outcomes: BTreeMap<String, u64>,
    current_channels: u64,
    max_channels: u64,
    connections: u64,
    logins_ok: u64,
    logins_failed: u64,
    setup_latency: LatencyHistogram,
    setup_backlog_peak: u64,
    prompts_played: u64,
    prompts_failed: u64,
    recordings_uploaded: u64,
    recording_upload_failures: u64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Every Originate action accepted for processing (failures included).
    pub originates_total: u64,
    pub originates_by_number: BTreeMap<String, u64>,
    /// Only Originates that carried a `ChannelId`.
    pub originates_by_channel_id: BTreeMap<String, u64>,
    /// Originates in each whole second since the counters started (index = second).
    pub originates_per_second: Vec<u64>,
    /// The most Originates inside any sliding 1 s window.
    pub max_originates_in_1s: u64,
    /// Outcome name (`answered`, `busy`, ..., `unknown_tech`, `capacity`, `channel_id_in_use`)
    /// -> count.
    pub outcomes: BTreeMap<String, u64>,
    pub current_channels: u64,
    pub max_concurrent_channels: u64,
    pub connections_total: u64,
    pub logins_ok: u64,
    pub logins_failed: u64,
    /// Events sent to each logged-in session (after the `eventfilter`), and their bytes.
    pub events_emitted: u64,
    pub event_bytes_emitted: u64,
    /// Events the `eventfilter` kept from the sessions.
    pub events_filtered: u64,
    /// Originate read to its `Newchannel` published, for every call that got a channel.
    pub setup_latency: LatencySummary,
    /// The most setups an Originate ever found ahead of it (`capacity_cps`).
    pub setup_backlog_peak: u64,
    /// Originates that failed (Reason 0) because the PBX was full: `capacity` (too many
    /// channels) plus `setup_backlog` (too many waiting for a channel).
    pub capacity_failures: u64,
    /// Flow prompts (`DIALER_MESSAGE`, `DIALER_VOICEMAIL`) fetched and played, and those that
    /// could not be (`DialerPlayback` `FAILED`).
    pub prompts_played: u64,
    pub prompts_failed: u64,
    /// Call recordings (`DIALER_RECORD_URL`) uploaded, and uploads that failed (never retried).
    pub recordings_uploaded: u64,
    pub recording_upload_failures: u64,
}

/// [`Stats::timeline`]: offsets in milliseconds from `since_unix_ms`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Timeline {
    pub since_unix_ms: u64,
    /// `[offset, ChannelId or ""]` of every Originate.
    pub originates: Vec<(u64, String)>,
    /// `[offset, Uniqueid, created]`: each channel's creation (`true`) and end (`false`).
    pub channels: Vec<(u64, String, bool)>,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            inner: Mutex::new(Counts::new(0)),
            events: AtomicU64::new(0),
            event_bytes: AtomicU64::new(0),
            events_filtered: AtomicU64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        // A panic elsewhere must not turn every later count into a panic.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    pub(crate) fn originate(&self, number: &str, channel_id: Option<&str>) {
        let at = Instant::now();
        self.with(|c| {
            c.originates += 1;
            let t = at.saturating_duration_since(c.since);
            c.times.push(t);
            c.time_ids.push(channel_id.unwrap_or_default().to_string());
            *c.by_number.entry(number.to_string()).or_default() += 1;
            if let Some(id) = channel_id {
                *c.by_channel_id.entry(id.to_string()).or_default() += 1;
            }
        });
    }

    pub(crate) fn outcome(&self, name: &str) {
        self.with(|c| *c.outcomes.entry(name.to_string()).or_default() += 1);
    }

    /// Channels created (`up`) or gone, by Uniqueid, for the timeline.
    pub(crate) fn channels_logged<'a>(&self, uniqueids: impl Iterator<Item = &'a str>, up: bool) {
        let at = Instant::now();
        self.with(|c| {
            let t = at.saturating_duration_since(c.since);
            for id in uniqueids {
                c.channel_log.push((t, id.to_string(), up));
            }
        });
    }

    pub(crate) fn channels_changed(&self, current: u64) {
        self.with(|c| {
            c.current_channels = current;
            c.max_channels = c.max_channels.max(current);
        });
    }

    pub(crate) fn connection(&self) {
        self.with(|c| c.connections += 1);
    }

    pub(crate) fn login(&self, ok: bool) {
        self.with(|c| {
            if ok {
                c.logins_ok += 1
            } else {
                c.logins_failed += 1
            }
        });
    }

    /// A burst published: `n` events of `bytes` sent, `filtered` kept back by the filter.
    pub(crate) fn events(&self, n: u64, bytes: u64, filtered: u64) {
        self.events.fetch_add(n, Ordering::Relaxed);
        self.event_bytes.fetch_add(bytes, Ordering::Relaxed);
        if filtered > 0 {
            self.events_filtered.fetch_add(filtered, Ordering::Relaxed);
        }
    }

    pub(crate) fn setup_latency(&self, d: Duration) {
        self.with(|c| c.setup_latency.record(d));
    }

    /// An Originate found `waiting` others ahead of it in the setup queue.
    pub(crate) fn setup_backlog(&self, waiting: u64) {
        self.with(|c| c.setup_backlog_peak = c.setup_backlog_peak.max(waiting));
    }

    /// A flow prompt played (`true`) or failed.
    pub(crate) fn prompt(&self, played: bool) {
        self.with(|c| {
            if played {
                c.prompts_played += 1
            } else {
                c.prompts_failed += 1
            }
        });
    }

    /// A recording uploaded (`true`) or its upload failed.
    pub(crate) fn recording_uploaded(&self, ok: bool) {
        self.with(|c| {
            if ok {
                c.recordings_uploaded += 1
            } else {
                c.recording_upload_failures += 1
            }
        });
    }

    /// Clears every counter; the peak restarts from the channels up now.
    pub(crate) fn reset(&self) {
        self.events.store(0, Ordering::Relaxed);
        self.event_bytes.store(0, Ordering::Relaxed);
        self.events_filtered.store(0, Ordering::Relaxed);
        self.with(|c| *c = Counts::new(c.current_channels));
    }

    pub(crate) fn originate_times(&self) -> Vec<Duration> {
        self.with(|c| c.times.clone())
    }

    pub(crate) fn max_in_window(&self, window: Duration) -> u64 {
        self.with(|c| max_in_window(&c.times, window))
    }

    /// Every Originate and every change in the channels up, on the wall clock: what a test
    /// merges across simulators to check a limit held in aggregate.
    pub(crate) fn timeline(&self) -> Timeline {
        self.with(|c| Timeline {
            since_unix_ms: c.since_unix_ms,
            originates: c
                .times
                .iter()
                .zip(&c.time_ids)
                .map(|(t, id)| (t.as_millis() as u64, id.clone()))
                .collect(),
            channels: c
                .channel_log
                .iter()
                .map(|(t, id, up)| (t.as_millis() as u64, id.clone(), *up))
                .collect(),
        })
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let events = self.events.load(Ordering::Relaxed);
        let event_bytes = self.event_bytes.load(Ordering::Relaxed);
        let events_filtered = self.events_filtered.load(Ordering::Relaxed);
        self.with(|c| {
            let full = |name: &str| c.outcomes.get(name).copied().unwrap_or(0);
            let mut per_second = Vec::new();
            for t in &c.times {
                let s = t.as_secs() as usize;
                if per_second.len() <= s {
                    per_second.resize(s + 1, 0);
                }
                per_second[s] += 1;
            }
            StatsSnapshot {
                originates_total: c.originates,
                originates_by_number: c.by_number.clone(),
                originates_by_channel_id: c.by_channel_id.clone(),
                originates_per_second: per_second,
                max_originates_in_1s: max_in_window(&c.times, Duration::from_secs(1)),
                outcomes: c.outcomes.clone(),
                current_channels: c.current_channels,
                max_concurrent_channels: c.max_channels,
                connections_total: c.connections,
                logins_ok: c.logins_ok,
                logins_failed: c.logins_failed,
                events_emitted: events,
                event_bytes_emitted: event_bytes,
                events_filtered,
                setup_latency: c.setup_latency.summary(),
                setup_backlog_peak: c.setup_backlog_peak,
                capacity_failures: full("capacity") + full("setup_backlog"),
                prompts_played: c.prompts_played,
                prompts_failed: c.prompts_failed,
                recordings_uploaded: c.recordings_uploaded,
                recording_upload_failures: c.recording_upload_failures,
            }
        })
    }
}

impl Counts {
    fn new(current_channels: u64) -> Counts {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Counts {
            since: Instant::now(),
            since_unix_ms: unix.as_millis() as u64,
            time_ids: Vec::new(),
            channel_log: Vec::new(),
            originates: 0,
            by_number: BTreeMap::new(),
            by_channel_id: BTreeMap::new(),
            times: Vec::new(),
            outcomes: BTreeMap::new(),
            current_channels,
            max_channels: current_channels,
            connections: 0,
            logins_ok: 0,
            logins_failed: 0,
            setup_latency: LatencyHistogram::new(),
            setup_backlog_peak: 0,
            prompts_played: 0,
            prompts_failed: 0,
            recordings_uploaded: 0,
            recording_upload_failures: 0,
        }
    }
}

/// Most entries of sorted `times` inside any half-open window `[t, t + window)`.
pub fn max_in_window(times: &[Duration], window: Duration) -> u64 {
    let mut best = 0usize;
    let mut start = 0usize;
    for (end, t) in times.iter().enumerate() {
        while *t >= times[start] + window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn sliding_window_finds_bursts_across_second_boundaries() {
        let w = Duration::from_secs(1);
        assert_eq!(max_in_window(&[], w), 0);
        // 2 in second 0 and 2 in second 1, but all 4 within 0.9..1.8 s.
        assert_eq!(max_in_window(&ms(&[100, 900, 950, 1100, 1800]), w), 4);
        // Exactly 1 s apart are in different windows.
        assert_eq!(max_in_window(&ms(&[0, 1000, 2000]), w), 1);
    }

    #[test]
    fn snapshot_counts_and_reset() {
        let s = Stats::new();
        s.originate("100", Some("id-1"));
        s.originate("100", None);
        s.originate("200", Some("id-2"));
        s.channels_changed(3);
        s.channels_changed(1);
        s.channels_logged(["id-1", "id-2"].into_iter(), true);
        s.channels_logged(["id-1"].into_iter(), false);
        let snap = s.snapshot();
        assert_eq!(snap.originates_total, 3);
        assert_eq!(snap.originates_by_number.get("100"), Some(&2));
        assert_eq!(snap.originates_by_channel_id.len(), 2);
        assert_eq!(snap.max_concurrent_channels, 3);
        assert_eq!(snap.current_channels, 1);
        assert_eq!(snap.originates_per_second, vec![3]);
        let timeline = s.timeline();
        let ids: Vec<&str> = timeline.originates.iter().map(|o| o.1.as_str()).collect();
        assert_eq!(ids, ["id-1", "", "id-2"]);
        let changes: Vec<(&str, bool)> = timeline
            .channels
            .iter()
            .map(|c| (c.1.as_str(), c.2))
            .collect();
        assert_eq!(changes, [("id-1", true), ("id-2", true), ("id-1", false)]);
        assert!(timeline.since_unix_ms > 1_700_000_000_000);
        s.reset();
        let snap = s.snapshot();
        assert_eq!(snap.originates_total, 0);
        assert_eq!(snap.max_concurrent_channels, 1);
    }
}
