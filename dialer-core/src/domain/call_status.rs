//! The state of one call (the `calls.status` column, the `call_status` of callbacks and of the
//! batch-status counts) and how each state counts into the batch totals.

crate::text_enum! {
    /// Lifecycle of a call. The in-progress states and the final ones of the contract's event
    /// table, plus the platform's own waiting states (`queued`, `scheduled`, `dialing`, `retry_wait`).
    ///
    /// | state | meaning |
    /// |---|---|
    /// | `queued` | accepted, not dispatched yet |
    /// | `scheduled` | dispatched: a dial job exists; waiting for capacity, calling hours or its due time |
    /// | `dialing` | Originate sent, no channel yet |
    /// | `started` | the attempt's channel exists (`call_started`) |
    /// | `answered` | the callee answered (`call_answered`) |
    /// | `retry_wait` | an attempt ended without an answer and another one is scheduled |
    /// | `completed` ... `expired` | the final outcomes |
    pub enum CallStatus("call status") {
        Queued = "queued", Scheduled = "scheduled", Dialing = "dialing",
        Started = "started", Answered = "answered", RetryWait = "retry_wait",
        Completed = "completed", Busy = "busy", NoAnswer = "no_answer", Failed = "failed",
        Timeout = "timeout", Cancelled = "cancelled", Skipped = "skipped", Expired = "expired",
    }
}

/// Where a call counts in `completed_calls` / `failed_calls` / `pending_calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Completed,
    Failed,
    Pending,
}

impl CallStatus {
    /// A final state: nothing more happens to the call.
    pub const fn is_final(self) -> bool {
        !matches!(self.bucket(), Bucket::Pending)
    }

    /// The contract: completed = final outcome answered; failed = ended without an answer after
    /// the last attempt (busy, no answer, failed, timeout, cancelled, skipped, expired); pending =
    /// everything else. Every state falls in exactly one bucket, so the three always add up.
    pub const fn bucket(self) -> Bucket {
        match self {
            CallStatus::Completed => Bucket::Completed,
            CallStatus::Busy
            | CallStatus::NoAnswer
            | CallStatus::Failed
            | CallStatus::Timeout
            | CallStatus::Cancelled
            | CallStatus::Skipped
            | CallStatus::Expired => Bucket::Failed,
            CallStatus::Queued
            | CallStatus::Scheduled
            | CallStatus::Dialing
            | CallStatus::Started
            | CallStatus::Answered
            | CallStatus::RetryWait => Bucket::Pending,
        }
    }

    /// Never dialed yet in this batch's life: what `cancel` ends with `call_cancelled`.
    pub const fn is_undialed(self) -> bool {
        matches!(
            self,
            CallStatus::Queued | CallStatus::Scheduled | CallStatus::RetryWait
        )
    }

    /// SQL list literal of the names of the states for which `pred` holds, for queries that
    /// must agree with this module (e.g. `status IN ('queued','scheduled')`).
    pub fn sql_list(pred: impl Fn(CallStatus) -> bool) -> String {
        let names: Vec<String> = CallStatus::ALL
            .iter()
            .filter(|s| pred(**s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        names.join(",")
    }

    /// SQL condition for calls in the states for which `pred` holds, every one of them not
    /// final: `finished_at IS NULL`, the predicate of the indexes of unfinished calls (which a
    /// query must state for the planner to use them; the database holds `finished_at` null
    /// exactly while the status is not final), then the states themselves unless they are all
    /// the unfinished ones. `alias` prefixes the columns (`"c."`, or `""`).
    pub fn sql_unfinished(alias: &str, pred: impl Fn(CallStatus) -> bool) -> String {
        let chosen = |s: CallStatus| !s.is_final() && pred(s);
        let all_unfinished = CallStatus::ALL.iter().all(|s| s.is_final() || chosen(*s));
        if all_unfinished {
            format!("{alias}finished_at IS NULL")
        } else {
            format!(
                "{alias}finished_at IS NULL AND {alias}status IN ({})",
                CallStatus::sql_list(chosen)
            )
        }
    }
}

/// Totals of a batch, computed from per-state counts with the one bucket mapping above.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub total_calls: i64,
    pub completed_calls: i64,
    pub failed_calls: i64,
    pub pending_calls: i64,
}

impl Totals {
    /// `answered_timeouts`: calls ended `timeout` after an answer (cut at their maximum length).
    /// The person was reached, so the contract counts them in `completed_calls`.
    pub fn from_counts(
        counts: impl IntoIterator<Item = (CallStatus, i64)>,
        answered_timeouts: i64,
    ) -> Totals {
        let mut t = Totals::default();
        for (status, n) in counts {
            t.total_calls += n;
            match status.bucket() {
                Bucket::Completed => t.completed_calls += n,
                Bucket::Failed => t.failed_calls += n,
                Bucket::Pending => t.pending_calls += n,
            }
        }
        t.completed_calls += answered_timeouts;
        t.failed_calls -= answered_timeouts;
        t
    }
}

/// A batch's calls per state, and how many of its `timeout` calls had been answered: all that
/// `counts` and the totals are made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// The states present (others are zero).
    pub by_status: Vec<(CallStatus, i64)>,
    pub answered_timeouts: i64,
    /// After the answer: calls a person answered, calls a machine answered (as the PBX's
    /// detection said, latest attempt), calls that opted out.
    pub answered_human: i64,
    pub answered_machine: i64,
    pub opted_out: i64,
}

/// The keys `counts` has beside the call states (contract, "After the answer").
pub const ANSWER_COUNT_KEYS: [&str; 3] = ["answered_human", "answered_machine", "opted_out"];

impl StateCounts {
    pub fn get(&self, status: CallStatus) -> i64 {
        self.by_status
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn totals(&self) -> Totals {
        Totals::from_counts(self.by_status.iter().copied(), self.answered_timeouts)
    }

    /// The contract's `counts`: every call state, zeros included, then the counts of after the
    /// answer. Batch status and `batch_completed` both show this, so they agree.
    pub fn count_map(&self) -> Vec<(&'static str, i64)> {
        CallStatus::ALL
            .iter()
            .map(|s| (s.as_str(), self.get(*s)))
            .chain(ANSWER_COUNT_KEYS.into_iter().zip([
                self.answered_human,
                self.answered_machine,
                self.opted_out,
            ]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in CallStatus::ALL {
            assert_eq!(s.as_str().parse::<CallStatus>(), Ok(*s));
            assert!(seen.insert(s.as_str()));
        }
        assert!("dialling".parse::<CallStatus>().is_err());
    }

    #[test]
    fn final_states_are_the_contracts() {
        let finals: Vec<&str> = CallStatus::ALL
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            finals,
            [
                "completed",
                "busy",
                "no_answer",
                "failed",
                "timeout",
                "cancelled",
                "skipped",
                "expired"
            ]
        );
    }

    #[test]
    fn unfinished_conditions_state_the_index_predicate_and_only_unfinished_states() {
        assert_eq!(
            CallStatus::sql_unfinished("c.", |_| true),
            "c.finished_at IS NULL"
        );
        assert_eq!(
            CallStatus::sql_unfinished("", CallStatus::is_undialed),
            "finished_at IS NULL AND status IN ('queued','scheduled','retry_wait')"
        );
        // A final state asked for is left out: no finished call is unfinished.
        assert_eq!(
            CallStatus::sql_unfinished("", |s| matches!(
                s,
                CallStatus::Dialing | CallStatus::Completed
            )),
            "finished_at IS NULL AND status IN ('dialing')"
        );
    }

    #[test]
    fn totals_add_up() {
        let counts = CallStatus::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as i64 + 1));
        let t = Totals::from_counts(counts, 0);
        assert_eq!(t.completed_calls, 7);
        let reached = StateCounts {
            by_status: vec![(CallStatus::Timeout, 3), (CallStatus::Completed, 1)],
            answered_timeouts: 2,
            ..StateCounts::default()
        }
        .totals();
        assert_eq!(
            (
                reached.completed_calls,
                reached.failed_calls,
                reached.total_calls
            ),
            (3, 1, 4),
            "answered timeouts count as completed"
        );
        assert_eq!(
            t.total_calls,
            t.completed_calls + t.failed_calls + t.pending_calls
        );
        assert_eq!(
            t.total_calls,
            (1..=CallStatus::ALL.len() as i64).sum::<i64>()
        );
    }

    #[test]
    fn serde_uses_the_contract_names() {
        assert_eq!(
            serde_json::to_string(&CallStatus::NoAnswer).ok().as_deref(),
            Some("\"no_answer\"")
        );
        assert!(serde_json::from_str::<CallStatus>("\"NoAnswer\"").is_err());
    }
}
