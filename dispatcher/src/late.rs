//! What becomes of a claimed call that reaches its moment late.
//!
//! Every call is given a departure at least the send gate's `LEAD` after its claim, so it can
//! always be confirmed before its moment: one that is late was held up (a commit waiting on a
//! slow disk, a busy or stopped process). Sent at once, the calls held up together would reach
//! the PBX together, past the account's rate, the server's `max_cps` and the platform's rate.
//! A little late, a call leaves (spaced out by this process's pacers if no shared limit set
//! its moment); later, if a limit shared with other dispatchers set its moment, it is put back
//! and claimed again (see [`LateCalls::judge`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Up to this late, a call no shared limit held back leaves as planned (a timer's ordinary
/// lag); later, it takes its account's and its server's next free moments in this process, so
/// calls confirmed late together do not leave together.
pub const LATE: Duration = Duration::from_millis(10);

/// Up to this late, a call a shared limit held back leaves at once: moved by so little, it
/// adds at most itself to any second of its limits. (Given the next free moments of this
/// process's pacers instead, it would land after the calls already booked there, between two
/// of another dispatcher's slots.) Later than that, it is put back and claimed again: its
/// slots in the account's and the platform's pacing are shared with other dispatchers, whose
/// calls now hold the moments after it; its confirmation is old (a pause answered since would
/// not stop it). Put back, it gets fresh slots and a fresh confirmation; nobody was dialed, so
/// no event is written.
pub const PUT_BACK: Duration = Duration::from_millis(25);

/// A call is put back for lateness by this process at most [`PUT_BACKS`] times in this long: on a
/// host whose timers or database are slow all the time, every call would be put back forever
/// and nothing dialed. After that it takes this process's next free moments instead. A few
/// rather than one: a call claimed again after a stall can meet the next one.
pub const PUT_BACK_WINDOW: Duration = Duration::from_secs(60);
/// Put backs of one call in [`PUT_BACK_WINDOW`] at most.
pub const PUT_BACKS: u32 = 3;

/// Later than this after its confirmation came back, the process was stopped (`kill -STOP`, a
/// frozen VM) between the two: the call is always put back, well before the 2 s at least after
/// which another dispatcher adopts a silent one's attempts and may settle it. (A confirmation
/// that itself comes back late is the database's delay, judged by the rules above.)
pub const STOPPED: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// On time, or late by so little that it leaves now.
    OnTime,
    /// Takes this process's next free moments of its account and server.
    Respace,
    /// Not sent: undone and claimed again.
    PutBack,
}

/// The calls this process put back for lateness lately.
#[derive(Default)]
pub struct LateCalls {
    put_back: Mutex<PutBack>,
}

#[derive(Default)]
struct PutBack {
    /// By call: when it was first put back in the window, and how many times since.
    at: HashMap<i64, (Instant, u32)>,
    pruned: Option<Instant>,
}

impl LateCalls {
    /// What call `call_pk`, `late` after its moment at `now`, does; `stalled`: how late it is
    /// counted from its moment or from its confirmation, whichever came last (this process's
    /// own delay). `paced`: its moment was set by a limit shared with other dispatchers (the
    /// platform's rate, or an account's that held it back at least [`PUT_BACK`]): sent late,
    /// it would take moments their calls hold. A call no shared limit held back (a burst under
    /// generous limits) is only spaced out.
    pub fn judge(
        &self,
        call_pk: i64,
        late: Duration,
        stalled: Duration,
        now: Instant,
        paced: bool,
    ) -> Late {
        if stalled > STOPPED {
            return Late::PutBack;
        }
        if !paced {
            return match late <= LATE {
                true => Late::OnTime,
                false => Late::Respace,
            };
        }
        if late <= PUT_BACK {
            return Late::OnTime;
        }
        // Without its count (a poisoned lock) a call is not put back: it could be forever.
        let Ok(mut put_back) = self.put_back.lock() else {
            return Late::Respace;
        };
        // Pruned once a second at most: under steady lateness this runs for every call.
        if put_back
            .pruned
            .is_none_or(|p| now.saturating_duration_since(p) >= Duration::from_secs(1))
        {
            put_back
                .at
                .retain(|_, (first, _)| now.saturating_duration_since(*first) < PUT_BACK_WINDOW);
            put_back.pruned = Some(now);
        }
        let entry = put_back.at.entry(call_pk).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= PUT_BACK_WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= PUT_BACKS {
            return Late::Respace;
        }
        entry.1 += 1;
        Late::PutBack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn late_calls_respaced_then_put_back_three_times_a_minute() {
        let calls = LateCalls::default();
        let now = Instant::now();
        // Late by the database: the confirmation came back after the moment.
        let judge = |call, late, at| calls.judge(call, late, ms(0), at, true);
        assert_eq!(judge(1, ms(0), now), Late::OnTime);
        assert_eq!(judge(1, ms(10), now), Late::OnTime);
        assert_eq!(judge(1, ms(11), now), Late::OnTime);
        assert_eq!(judge(1, ms(25), now), Late::OnTime);
        assert_eq!(judge(1, ms(26), now), Late::PutBack);
        // Late again each time it is claimed again: twice more put back, then it goes, spaced,
        // however late (a database slow all the time).
        assert_eq!(judge(1, ms(400), now + ms(3_000)), Late::PutBack);
        assert_eq!(judge(1, ms(400), now + ms(6_000)), Late::PutBack);
        assert_eq!(judge(1, ms(3_000), now + ms(9_000)), Late::Respace);
        assert_eq!(judge(2, ms(400), now + ms(9_000)), Late::PutBack);
        // A minute on, lateness is news again.
        let later = now + PUT_BACK_WINDOW + ms(1);
        assert_eq!(judge(1, ms(400), later), Late::PutBack);
    }

    #[test]
    fn calls_no_shared_limit_held_are_spaced_unless_the_process_stopped() {
        let calls = LateCalls::default();
        let now = Instant::now();
        assert_eq!(calls.judge(3, ms(5), ms(5), now, false), Late::OnTime);
        assert_eq!(calls.judge(3, ms(10), ms(0), now, false), Late::OnTime);
        assert_eq!(calls.judge(3, ms(11), ms(0), now, false), Late::Respace);
        assert_eq!(calls.judge(3, ms(400), ms(0), now, false), Late::Respace);
        assert_eq!(
            calls.judge(3, ms(5_000), ms(1_000), now, false),
            Late::Respace
        );
        // Stopped after its confirmation: put back whatever came before.
        assert_eq!(
            calls.judge(3, ms(1_001), ms(1_001), now, false),
            Late::PutBack
        );
        for _ in 0..5 {
            assert_eq!(
                calls.judge(4, ms(1_500), ms(1_500), now, true),
                Late::PutBack
            );
        }
    }
}
