//! Whether a call may be dialed now and, when not, why: the one set of per-call rules. The
//! dispatcher's claim applies them to each job; the dry run and `waiting_reason` report them, so
//! what an operator is told is what the dispatcher does. The limits shared by many calls (rates,
//! channels, connected PBXs) are the dispatcher's pacing and the dry run's `capacity`; these rules
//! are what holds a call whatever the capacity.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::calling_hours::CallingHours;
use crate::domain::{BatchStatus, Disposition, EventType};

crate::text_enum! {
    /// Why a call that has not been dialed is not dialed now (the dry run's counts and
    /// `waiting_reason`). Per call: `not_dispatched` (its batch was never dispatched),
    /// `paused`, `cancelled` (ended by the cancel), `account_suspended`, `expired`, `do_not_call`, `destination_not_allowed`,
    /// `calling_hours` (closed in the callee's zone), `redial_window` (the account dialed the
    /// number within its re-dial window), `retry_not_due` (waiting for its retry delay or a
    /// placement back-off). Shared by many calls: `no_connected_server`, `account_channels`,
    /// `server_channels`, `account_rate`, `server_rate`, `platform_rate` (the calls beyond what
    /// the limit lets go in the next second).
    pub enum HoldReason("hold reason") {
        NotDispatched = "not_dispatched", Paused = "paused", Cancelled = "cancelled",
        AccountSuspended = "account_suspended", Expired = "expired", DoNotCall = "do_not_call",
        DestinationNotAllowed = "destination_not_allowed", CallingHours = "calling_hours",
        RedialWindow = "redial_window", RetryNotDue = "retry_not_due",
        NoConnectedServer = "no_connected_server", AccountChannels = "account_channels",
        ServerChannels = "server_channels", AccountRate = "account_rate",
        ServerRate = "server_rate", PlatformRate = "platform_rate",
    }
}

/// What is known of one call when it is judged.
#[derive(Debug, Clone)]
pub struct CallFacts<'a> {
    pub batch_status: BatchStatus,
    pub account_active: bool,
    pub expired: bool,
    pub dnc: bool,
    pub destination_allowed: bool,
    /// The batch's hours, else the account's; none: any time.
    pub calling_hours: Option<&'a CallingHours>,
    /// The zone the hours are read in ([`crate::calling_window::zone_for`]).
    pub zone: Tz,
    /// The last time another call of the account to this number was dialed, plus the account's
    /// re-dial window: the number may be dialed again from then. None: no window, or no such call.
    pub redial_until: Option<DateTime<Utc>>,
}

/// What the rules say of a call now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing holds it: it dials when capacity allows.
    Dial,
    /// It waits in PostgreSQL until [`Hold::until`]; it is never failed for it.
    Wait(Hold),
    /// It ends undialed with this event.
    End {
        event: EventType,
        disposition: Option<Disposition>,
    },
    /// Its batch is not dialing (paused, never dispatched, completed): the dispatcher leaves the
    /// job alone (resume or dispatch re-arms it).
    Closed(BatchStatus),
}

/// Why a call waits, and until when.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    AccountSuspended,
    CallingHours {
        opens: DateTime<Utc>,
        zone: Tz,
    },
    /// The hours allow no day at all: looked at again a day later.
    NoCallingDay,
    RedialWindow {
        until: DateTime<Utc>,
    },
}

/// How long a suspended account's calls wait before they are looked at again.
const SUSPENDED_RECHECK: Duration = Duration::minutes(1);

impl Hold {
    /// When the dispatcher looks at the call again.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Hold::AccountSuspended => now + SUSPENDED_RECHECK,
            Hold::CallingHours { opens, .. } => *opens,
            Hold::NoCallingDay => now + Duration::days(1),
            Hold::RedialWindow { until } => *until,
        }
    }

    pub fn reason(&self) -> HoldReason {
        match self {
            Hold::AccountSuspended => HoldReason::AccountSuspended,
            Hold::CallingHours { .. } | Hold::NoCallingDay => HoldReason::CallingHours,
            Hold::RedialWindow { .. } => HoldReason::RedialWindow,
        }
    }

    /// In words an operator can act on.
    pub fn text(&self) -> String {
        match self {
            Hold::AccountSuspended => "account suspended".to_owned(),
            Hold::CallingHours { opens, zone } => {
                let local = opens.with_timezone(zone);
                format!(
                    "outside calling hours until {} {}",
                    local.format("%H:%M"),
                    zone.name()
                )
            }
            Hold::NoCallingDay => "calling hours allow no day".to_owned(),
            Hold::RedialWindow { until } => format!(
                "re-dial window: the number was dialed recently; next at {} UTC",
                until.format("%Y-%m-%d %H:%M")
            ),
        }
    }
}

impl Verdict {
    /// The reason a call with this verdict is not dialing, if it is not.
    pub fn reason(&self) -> Option<HoldReason> {
        match self {
            Verdict::Dial => None,
            Verdict::Wait(hold) => Some(hold.reason()),
            Verdict::End { event, disposition } => Some(match (event, disposition) {
                (EventType::CallExpired, _) => HoldReason::Expired,
                (_, Some(Disposition::DoNotCall)) => HoldReason::DoNotCall,
                (EventType::CallCancelled, _) => HoldReason::Cancelled,
                _ => HoldReason::DestinationNotAllowed,
            }),
            Verdict::Closed(BatchStatus::Pending) => Some(HoldReason::NotDispatched),
            Verdict::Closed(_) => Some(HoldReason::Paused),
        }
    }

    /// Why the call is not dialing, in words an operator can act on (empty for `Dial`).
    pub fn text(&self) -> String {
        let fixed = match self {
            Verdict::Dial => "",
            Verdict::Wait(hold) => return hold.text(),
            Verdict::Closed(BatchStatus::Pending) => "not dispatched yet; call dispatch-calls",
            Verdict::Closed(_) => "batch is paused; resume it to continue",
            Verdict::End { .. } => match self.reason() {
                Some(HoldReason::Expired) => "the batch expired: ends as call_expired",
                Some(HoldReason::DoNotCall) => "on a do-not-call list: ends skipped (do_not_call)",
                Some(HoldReason::Cancelled) => "the batch is cancelled: ends as call_cancelled",
                _ => "destination no longer allowed: ends skipped (destination_not_allowed)",
            },
        };
        fixed.to_owned()
    }

    /// When a waiting call is looked at again; none for the others.
    pub fn until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Verdict::Wait(hold) => Some(hold.until(now)),
            _ => None,
        }
    }
}

/// The rules, in order: a cancelled batch ends the call, a batch not dialing leaves it; a
/// suspended account holds it; expiry, do-not-call and destination rules end it undialed; the
/// calling hours, then the re-dial window, hold it.
pub fn judge(facts: &CallFacts<'_>, now: DateTime<Utc>) -> Verdict {
    match facts.batch_status {
        // A call scheduled after the cancel ran (a retry released meanwhile) ends as the cancel
        // ends every undialed call; else it would stay `scheduled` for ever.
        BatchStatus::Cancelled => {
            return Verdict::End {
                event: EventType::CallCancelled,
                disposition: None,
            };
        }
        BatchStatus::Dispatching => {}
        other => return Verdict::Closed(other),
    }
    if !facts.account_active {
        // Suspended: the calls wait in PostgreSQL and are looked at again every minute.
        return Verdict::Wait(Hold::AccountSuspended);
    }
    let skip = |event, disposition| Verdict::End { event, disposition };
    if facts.expired {
        return skip(EventType::CallExpired, None);
    }
    if facts.dnc {
        return skip(EventType::CallSkipped, Some(Disposition::DoNotCall));
    }
    if !facts.destination_allowed {
        return skip(
            EventType::CallSkipped,
            Some(Disposition::DestinationNotAllowed),
        );
    }
    if let Some(hours) = facts.calling_hours {
        match hours.next_allowed(now, facts.zone) {
            Some(t) if t <= now => {}
            Some(opens) => {
                return Verdict::Wait(Hold::CallingHours {
                    opens,
                    zone: facts.zone,
                });
            }
            // No allowed day at all: look again tomorrow rather than dial or fail.
            None => return Verdict::Wait(Hold::NoCallingDay),
        }
    }
    if let Some(until) = facts.redial_until
        && until > now
    {
        return Verdict::Wait(Hold::RedialWindow { until });
    }
    Verdict::Dial
}

/// The account's allowed countries and prefixes, when it restricts them: the number's country
/// is listed, or the number (E.164) starts with a listed prefix. Checked at submission and again
/// at dial time (the account's rules may have changed since); the dry run's statement reads the
/// same rule in SQL.
pub fn destination_allowed(
    allowed_countries: &[String],
    allowed_prefixes: &[String],
    e164: &str,
    region: Option<&str>,
) -> bool {
    if allowed_countries.is_empty() && allowed_prefixes.is_empty() {
        return true;
    }
    let by_country =
        region.is_some_and(|r| allowed_countries.iter().any(|c| c.eq_ignore_ascii_case(r)));
    by_country
        || allowed_prefixes
            .iter()
            .any(|p| e164.starts_with(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("rfc3339")
    }

    fn facts(hours: Option<&CallingHours>) -> CallFacts<'_> {
        CallFacts {
            batch_status: BatchStatus::Dispatching,
            account_active: true,
            expired: false,
            dnc: false,
            destination_allowed: true,
            calling_hours: hours,
            zone: Tz::UTC,
            redial_until: None,
        }
    }

    #[test]
    fn each_rule_in_its_order() {
        let now = utc("2024-01-03T10:00:00Z");
        assert_eq!(judge(&facts(None), now), Verdict::Dial);
        let cancelled = CallFacts {
            batch_status: BatchStatus::Cancelled,
            dnc: true,
            ..facts(None)
        };
        assert_eq!(
            judge(&cancelled, now).reason(),
            Some(HoldReason::Cancelled),
            "a cancelled batch's call ends cancelled whatever else holds it"
        );
        for (status, reason) in [
            (BatchStatus::Paused, HoldReason::Paused),
            (BatchStatus::Pending, HoldReason::NotDispatched),
        ] {
            let v = judge(
                &CallFacts {
                    batch_status: status,
                    ..facts(None)
                },
                now,
            );
            assert_eq!(v, Verdict::Closed(status));
            assert_eq!(v.reason(), Some(reason));
        }
        let expired_and_dnc = CallFacts {
            expired: true,
            dnc: true,
            ..facts(None)
        };
        assert_eq!(
            judge(&expired_and_dnc, now).reason(),
            Some(HoldReason::Expired)
        );
        let dnc = CallFacts {
            dnc: true,
            destination_allowed: false,
            ..facts(None)
        };
        assert_eq!(judge(&dnc, now).reason(), Some(HoldReason::DoNotCall));
        let abroad = CallFacts {
            destination_allowed: false,
            ..facts(None)
        };
        assert_eq!(
            judge(&abroad, now).reason(),
            Some(HoldReason::DestinationNotAllowed)
        );
        let suspended = CallFacts {
            account_active: false,
            dnc: true,
            ..facts(None)
        };
        assert_eq!(
            judge(&suspended, now),
            Verdict::Wait(Hold::AccountSuspended)
        );
    }

    #[test]
    fn hours_in_the_callee_s_zone_then_the_redial_window() {
        let hours =
            CallingHours::from_json(&json!({"start": "09:00", "end": "21:00"})).expect("valid");
        let kolkata: Tz = "Asia/Kolkata".parse().expect("tz");
        // 22:00 in Kolkata (16:30 UTC): closed until 09:00 there (03:30 UTC next day).
        let now = utc("2024-01-03T16:30:00Z");
        let closed = CallFacts {
            zone: kolkata,
            redial_until: Some(now + Duration::hours(1)),
            ..facts(Some(&hours))
        };
        let v = judge(&closed, now);
        let Verdict::Wait(hold) = &v else {
            panic!("waits: {v:?}")
        };
        assert_eq!(hold.until(now), utc("2024-01-04T03:30:00Z"));
        assert_eq!(
            hold.text(),
            "outside calling hours until 09:00 Asia/Kolkata"
        );
        // Open in UTC (16:30): the re-dial window holds it, until its end.
        let open = CallFacts {
            redial_until: Some(now + Duration::hours(1)),
            ..facts(Some(&hours))
        };
        assert_eq!(
            judge(&open, now),
            Verdict::Wait(Hold::RedialWindow {
                until: now + Duration::hours(1)
            })
        );
        let window_over = CallFacts {
            redial_until: Some(now - Duration::seconds(1)),
            ..facts(Some(&hours))
        };
        assert_eq!(judge(&window_over, now), Verdict::Dial);
    }

    #[test]
    fn destinations() {
        let gb = vec!["GB".to_owned()];
        let plus33 = vec!["+331".to_owned()];
        assert!(destination_allowed(&[], &[], "+33123456789", None));
        assert!(destination_allowed(&gb, &[], "+447911123456", Some("GB")));
        assert!(!destination_allowed(&gb, &[], "+33123456789", Some("FR")));
        assert!(destination_allowed(
            &gb,
            &plus33,
            "+33123456789",
            Some("FR")
        ));
        assert!(!destination_allowed(
            &[],
            &plus33,
            "+33923456789",
            Some("FR")
        ));
    }
}
