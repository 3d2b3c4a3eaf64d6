//! The attempts this dispatcher is following, and the routing of AMI events to them.
//!
//! Every attempt is originated with `ChannelId` = its id, so its channel's `Uniqueid` is the
//! attempt id, and a `Local/` channel's second half carries it as `Linkedid`. A failed
//! `OriginateResponse` carries it as `Uniqueid` too. Nothing else is needed to map an event to
//! its call.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ami_bridge::Event;
use chrono::Utc;
use uuid::Uuid;

use crate::outcome::{AttemptTracker, Signal};
use crate::state::Transition;

/// Extra time past the ring timeout (or the maximum call length) before a call the PBX says
/// nothing more about is ended as `unknown`.
pub const GUARD: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct LiveAttempt {
    pub call_pk: i64,
    pub account_id: i64,
    pub server_id: i64,
    pub tracker: AttemptTracker,
    pub originated: Instant,
    /// When the Originate left (it may wait for its pacing slot after the claim).
    pub sent: Option<Instant>,
    pub ring_timeout: Duration,
    pub max_call: Duration,
    pub answered: Option<Instant>,
    /// The platform asked the PBX to hang up (maximum call length).
    pub hangup_requested: bool,
    /// When the Originate's last byte was written to the PBX's socket, and when its channel's
    /// first event was read off it (both stamped by the AMI client at the socket): the PBX's
    /// channel-creation time, learnt from whichever comes second.
    pub written: Option<Instant>,
    pub channel_read: Option<Instant>,
}

impl LiveAttempt {
    /// An attempt followed from now, not sent yet, with the account's ring timeout and maximum
    /// call length (at least a second each).
    pub fn new(
        call_pk: i64,
        account_id: i64,
        server_id: i64,
        tracker: AttemptTracker,
        ring_timeout_seconds: i32,
        max_call_seconds: i32,
    ) -> LiveAttempt {
        LiveAttempt {
            call_pk,
            account_id,
            server_id,
            tracker,
            originated: Instant::now(),
            sent: None,
            ring_timeout: Duration::from_secs(ring_timeout_seconds.max(1) as u64),
            max_call: Duration::from_secs(max_call_seconds.max(1) as u64),
            answered: None,
            hangup_requested: false,
            written: None,
            channel_read: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    attempts: Mutex<HashMap<Uuid, LiveAttempt>>,
    /// Calls put back unplaced in a row, by call: their next delay grows. Kept in this process
    /// only (a restarted dispatcher starts again at the first delay); cleared once placed.
    not_placed: Mutex<HashMap<i64, u32>>,
    /// Originates sent since start, by (account, server): the rates the live state reports.
    sent: Mutex<HashMap<(i64, i64), u64>>,
}

impl Registry {
    pub fn insert(&self, id: Uuid, attempt: LiveAttempt) {
        if let Ok(mut m) = self.attempts.lock() {
            m.insert(id, attempt);
        }
    }

    /// Marks the attempt's Originate as leaving now. `false` when the attempt is no longer
    /// followed (it was ended meanwhile): then it must not be sent at all.
    pub fn mark_sent(&self, id: &Uuid) -> bool {
        let Ok(mut m) = self.attempts.lock() else {
            return false;
        };
        let Some(a) = m.get_mut(id) else {
            return false;
        };
        let now = Instant::now();
        a.sent = Some(now);
        // Ring timeout and guard count from the Originate, not from the claim.
        a.originated = now;
        let key = (a.account_id, a.server_id);
        drop(m);
        if let Ok(mut sent) = self.sent.lock() {
            *sent.entry(key).or_default() += 1;
        }
        true
    }

    /// Originates sent since start, by (account, server).
    pub fn sent_counts(&self) -> HashMap<(i64, i64), u64> {
        self.sent.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Stops following an attempt that will never be sent: a pause or a cancel took it back
    /// while it waited for its slot (its rows say it never happened, so nothing is reported).
    pub fn withdraw(&self, id: &Uuid) {
        if let Ok(mut m) = self.attempts.lock()
            && m.get(id).is_some_and(|a| a.sent.is_none())
        {
            m.remove(id);
        }
    }

    /// Claimed attempts of an account still waiting for their pacing slot.
    pub fn unsent_for_account(&self, account_id: i64) -> usize {
        self.attempts.lock().map_or(0, |m| {
            m.values()
                .filter(|a| a.account_id == account_id && a.sent.is_none())
                .count()
        })
    }

    /// The attempt's Originate was in the PBX's socket at `at`: its channel-creation time, if
    /// its channel was already seen.
    pub fn originate_written(&self, id: &Uuid, at: Instant) -> Option<Duration> {
        let mut m = self.attempts.lock().ok()?;
        let a = m.get_mut(id)?;
        a.written = Some(at);
        Some(a.channel_read?.saturating_duration_since(at))
    }

    /// The attempt's channel was read off the PBX's socket at `at`: its channel-creation time,
    /// if its Originate's write is known already.
    pub fn channel_read(&self, id: &Uuid, at: Instant) -> Option<Duration> {
        let mut m = self.attempts.lock().ok()?;
        let a = m.get_mut(id)?;
        a.channel_read = Some(at);
        Some(at.saturating_duration_since(a.written?))
    }

    pub fn contains(&self, id: &Uuid) -> bool {
        self.attempts.lock().is_ok_and(|m| m.contains_key(id))
    }

    pub fn len(&self) -> usize {
        self.attempts.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live attempts on a server (its channel count as far as we know).
    pub fn on_server(&self, server_id: i64) -> usize {
        self.attempts.lock().map_or(0, |m| {
            m.values().filter(|a| a.server_id == server_id).count()
        })
    }

    pub fn attempts_on_server(&self, server_id: i64) -> Vec<Uuid> {
        self.attempts.lock().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|(_, a)| a.server_id == server_id)
                    .map(|(id, _)| *id)
                    .collect()
            },
        )
    }

    /// The transition an AMI event gives, if it belongs to an attempt we follow.
    pub fn on_event(&self, server_id: i64, event: &Event) -> Option<Transition> {
        let id = route(event)?;
        let mut map = self.attempts.lock().ok()?;
        let attempt = map.get_mut(&id)?;
        if attempt.server_id != server_id {
            return None;
        }
        let signal = attempt.tracker.on_event(event)?;
        let at = Utc::now();
        if signal == Signal::Started
            && let Ok(mut tries) = self.not_placed.lock()
        {
            tries.remove(&attempt.call_pk);
        }
        Some(match signal {
            Signal::Started => Transition::Started { attempt: id, at },
            Signal::Answered => {
                attempt.answered = Some(Instant::now());
                Transition::Answered { attempt: id, at }
            }
            Signal::Amd { answered_by, cause } => Transition::Amd {
                attempt: id,
                answered_by,
                cause,
                at,
            },
            Signal::Input { digits } => Transition::Input {
                attempt: id,
                digits,
                at,
            },
            Signal::Ended(outcome) => {
                let cut = attempt.hangup_requested && attempt.tracker.is_answered();
                map.remove(&id);
                Transition::Ended {
                    attempt: id,
                    outcome,
                    cut_by_platform: cut,
                    at,
                }
            }
        })
    }

    /// Ends an attempt we can no longer follow (`unknown`).
    pub fn lose(&self, id: &Uuid, why: &str) -> Option<Transition> {
        let mut map = self.attempts.lock().ok()?;
        let mut attempt = map.remove(id)?;
        let Signal::Ended(outcome) = attempt.tracker.lost(why)? else {
            return None;
        };
        Some(Transition::Ended {
            attempt: *id,
            outcome,
            cut_by_platform: false,
            at: Utc::now(),
        })
    }

    /// After a reconnect: attempts on the server sent before the connection was lost
    /// (`lost_at`) whose channel is gone ended unseen. Those not sent yet have no channel to
    /// lose, and those sent since went out on the new connection, whose events we get.
    pub fn reconcile(
        &self,
        server_id: i64,
        live_channels: &HashSet<Uuid>,
        lost_at: Instant,
    ) -> Vec<Transition> {
        let gone: Vec<Uuid> = self.attempts.lock().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|(id, a)| {
                        a.server_id == server_id
                            && a.sent.is_some_and(|t| t <= lost_at)
                            && !live_channels.contains(id)
                    })
                    .map(|(id, _)| *id)
                    .collect()
            },
        );
        gone.into_iter()
            .filter_map(|id| {
                self.lose(
                    &id,
                    "the connection to the PBX was lost during the call; its outcome is unknown",
                )
            })
            .collect()
    }

    /// Attempts the PBX said nothing conclusive about in time. One still waiting for its
    /// pacing slot is not overdue: the PBX has not been asked yet.
    pub fn overdue(&self, now: Instant) -> Vec<Uuid> {
        self.attempts.lock().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|(_, a)| a.sent.is_some())
                    .filter(|(_, a)| {
                        let limit = match a.answered {
                            Some(t) => t + a.max_call + GUARD,
                            None => a.originated + a.ring_timeout + GUARD,
                        };
                        now > limit
                    })
                    .map(|(id, _)| *id)
                    .collect()
            },
        )
    }

    /// Whether a guard time or a maximum call length has run out for some attempt: what
    /// [`Registry::overdue`] or [`Registry::take_too_long`] would act on.
    pub fn awaits_judgement(&self, now: Instant) -> bool {
        let too_long = self.attempts.lock().is_ok_and(|m| {
            m.values().any(|a| {
                a.answered
                    .is_some_and(|t| !a.hangup_requested && now > t + a.max_call)
            })
        });
        too_long || !self.overdue(now).is_empty()
    }

    /// Answered calls past their maximum length that have not been hung up yet; marks them.
    pub fn take_too_long(&self, now: Instant) -> Vec<(Uuid, i64)> {
        let Ok(mut m) = self.attempts.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (id, a) in m.iter_mut() {
            if let Some(t) = a.answered
                && !a.hangup_requested
                && now > t + a.max_call
            {
                a.hangup_requested = true;
                out.push((*id, a.server_id));
            }
        }
        out
    }

    /// An attempt whose Originate never reached a running PBX (see [`crate::placement`]): no
    /// longer followed; its call is to be dialed again after a delay that grows with each time
    /// in a row.
    pub fn not_placed(&self, id: &Uuid) -> Option<Transition> {
        let attempt = self.attempts.lock().ok()?.remove(id)?;
        let tries = self.not_placed.lock().map_or(1, |mut m| {
            let n = m.entry(attempt.call_pk).or_insert(0);
            *n = n.saturating_add(1);
            *n
        });
        let delay = crate::placement::retry_delay(tries, crate::placement::jitter());
        let due = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        Some(Transition::NotPlaced { attempt: *id, due })
    }

    /// The end of an attempt whose Originate the PBX refused outright (no events will come).
    pub fn refused(&self, id: &Uuid, why: String) -> Option<Transition> {
        let mut map = self.attempts.lock().ok()?;
        map.remove(id)?;
        Some(Transition::Ended {
            attempt: *id,
            outcome: crate::outcome::Outcome {
                disposition: dialer_core::domain::Disposition::Failed,
                cause: None,
                error_message: Some(why),
            },
            cut_by_platform: false,
            at: Utc::now(),
        })
    }
}

/// The attempt an event is about: its Uniqueid (the attempt's ChannelId), else its Linkedid.
fn route(event: &Event) -> Option<Uuid> {
    let m = event.message();
    [event.uniqueid(), m.get("Linkedid"), m.get("DestLinkedid")]
        .into_iter()
        .flatten()
        .find_map(|v| Uuid::parse_str(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(server_id: i64) -> LiveAttempt {
        LiveAttempt::new(1, 1, server_id, AttemptTracker::new(), 2, 60)
    }

    #[test]
    fn an_attempt_waiting_for_its_slot_is_neither_overdue_nor_lost() {
        let r = Registry::default();
        let (waiting, sent) = (Uuid::new_v4(), Uuid::new_v4());
        r.insert(waiting, attempt(1));
        r.insert(sent, attempt(1));
        assert!(r.mark_sent(&sent));
        let later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(r.overdue(later), [sent]);
        let ended = r.reconcile(1, &HashSet::new(), later);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].attempt(), sent);
        // Still followed, and still sendable.
        assert!(r.contains(&waiting));
        assert!(r.mark_sent(&waiting));
    }

    #[test]
    fn an_attempt_sent_after_the_connection_was_lost_is_not_reconciled() {
        let r = Registry::default();
        let id = Uuid::new_v4();
        r.insert(id, attempt(1));
        let lost_at = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(r.mark_sent(&id));
        assert!(r.reconcile(1, &HashSet::new(), lost_at).is_empty());
    }

    #[test]
    fn only_an_attempt_not_sent_yet_is_withdrawn() {
        let r = Registry::default();
        let (waiting, sent) = (Uuid::new_v4(), Uuid::new_v4());
        r.insert(waiting, attempt(1));
        r.insert(sent, attempt(1));
        assert!(r.mark_sent(&sent));
        r.withdraw(&waiting);
        r.withdraw(&sent);
        assert!(!r.contains(&waiting));
        assert!(!r.mark_sent(&waiting), "a withdrawn attempt is never sent");
        assert!(r.contains(&sent), "a sent attempt is followed to its end");
        assert_eq!(r.on_server(1), 1);
    }

    #[test]
    fn judgement_is_awaited_once_a_guard_or_a_maximum_length_ran_out() {
        let r = Registry::default();
        let talking = Uuid::new_v4();
        r.insert(talking, attempt(1));
        assert!(r.mark_sent(&talking));
        let now = Instant::now();
        if let Ok(mut m) = r.attempts.lock()
            && let Some(a) = m.get_mut(&talking)
        {
            a.answered = Some(now);
        }
        assert!(!r.awaits_judgement(now));
        // Past its maximum length (60 s), not yet its guard after it.
        let later = now + Duration::from_secs(61);
        assert!(r.awaits_judgement(later));
        assert_eq!(r.take_too_long(later), [(talking, 1)]);
        assert!(!r.awaits_judgement(later));

        let r = Registry::default();
        let ringing = Uuid::new_v4();
        r.insert(ringing, attempt(1));
        assert!(r.mark_sent(&ringing));
        // Past its ring timeout (2 s) and the guard.
        let overdue = Instant::now() + Duration::from_secs(3) + GUARD;
        assert!(r.awaits_judgement(overdue));
    }

    #[test]
    fn a_call_not_placed_again_and_again_waits_longer_each_time() {
        let r = Registry::default();
        let due = |r: &Registry| {
            let id = Uuid::new_v4();
            r.insert(id, attempt(1));
            assert!(r.mark_sent(&id));
            let before = Utc::now();
            let Some(Transition::NotPlaced { attempt, due }) = r.not_placed(&id) else {
                panic!("not placed")
            };
            assert_eq!(attempt, id);
            assert!(!r.contains(&id), "no longer followed");
            (due - before).to_std().unwrap_or_default()
        };
        let first = due(&r);
        let second = due(&r);
        let third = due(&r);
        assert!(first >= Duration::from_millis(1500) && first <= Duration::from_millis(2500));
        assert!(
            second > first && third > second,
            "{first:?} {second:?} {third:?}"
        );
    }

    #[test]
    fn channel_creation_time_is_known_whichever_stamp_comes_second() {
        let r = Registry::default();
        let t0 = Instant::now();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        r.insert(a, attempt(1));
        r.insert(b, attempt(1));
        assert_eq!(r.originate_written(&a, t0), None);
        assert_eq!(
            r.channel_read(&a, t0 + Duration::from_millis(30)),
            Some(Duration::from_millis(30))
        );
        // The Originate's task learnt of its write after the pump saw the channel.
        assert_eq!(r.channel_read(&b, t0 + Duration::from_millis(12)), None);
        assert_eq!(r.originate_written(&b, t0), Some(Duration::from_millis(12)));
        // An attempt no longer followed gives nothing.
        assert_eq!(r.channel_read(&Uuid::new_v4(), t0), None);
    }

    #[test]
    fn an_attempt_ended_before_its_slot_is_not_sent() {
        let r = Registry::default();
        let id = Uuid::new_v4();
        r.insert(id, attempt(1));
        assert!(r.refused(&id, "gone".into()).is_some());
        assert!(!r.mark_sent(&id));
    }
}
