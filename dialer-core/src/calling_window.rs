//! When a call may be originated under its calling hours: in the callee's local time where the
//! number's country has a single time zone, else in the account's time zone. The dispatcher's
//! claim, the dry run and `waiting_reason` all read the hours through this module.
//!
//! Hours (see [`crate::calling_hours`]) allow the listed days from `start` (inclusive) to `end`
//! (exclusive), local time. An `end` at or before `start` is a window across midnight that
//! belongs to the day it starts on. A call due outside the hours waits for the next allowed
//! instant (it is never failed for it). Local times that do not exist (spring-forward gap) move
//! to the first instant after the gap; ambiguous ones (fall-back) take the earlier instant.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::calling_hours::CallingHours;
use crate::country_timezones::SINGLE_ZONE_COUNTRIES;

impl CallingHours {
    /// `now` if a call may go now, else the next instant it may; `None` when no day is allowed.
    pub fn next_allowed(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&tz).date_naive();
        let mut best: Option<DateTime<Utc>> = None;
        // Yesterday too: its window may run past midnight into today.
        for offset in -1..=8 {
            let date = today + Duration::days(offset);
            if !self.days.contains(&date.weekday()) {
                continue;
            }
            let (open, close) = self.window(date, tz);
            if open <= now && now < close {
                return Some(now);
            }
            if open > now && best.is_none_or(|b| open < b) {
                best = Some(open);
            }
        }
        best
    }

    fn window(&self, date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let open = to_utc(date.and_time(self.start), tz);
        let end_date = if self.end <= self.start {
            date + Duration::days(1)
        } else {
            date
        };
        (open, to_utc(end_date.and_time(self.end), tz))
    }
}

fn to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let mut t = local;
    // A gap is at most a few hours; step past it.
    for _ in 0..48 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => return x.with_timezone(&Utc),
            LocalResult::None => t += Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&local)
}

/// The zone calling hours are read in: the callee's country's when it has exactly one, else the
/// account's (an unknown account zone is UTC).
pub fn zone_for(region: Option<&str>, account_zone: &str) -> Tz {
    if let Some(region) = region
        && let Ok(i) = SINGLE_ZONE_COUNTRIES.binary_search_by(|(c, _)| c.cmp(&region))
        && let Ok(tz) = SINGLE_ZONE_COUNTRIES[i].1.parse::<Tz>()
    {
        return tz;
    }
    account_zone.parse::<Tz>().unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("rfc3339")
    }

    fn hours(v: Value) -> CallingHours {
        CallingHours::from_json(&v).expect("valid")
    }

    #[test]
    fn inside_is_now_outside_waits_for_the_next_opening() {
        let h = hours(
            json!({"start": "09:00", "end": "21:00", "days": ["mon","tue","wed","thu","fri"]}),
        );
        let kolkata: Tz = "Asia/Kolkata".parse().expect("tz");
        // Wed 2024-01-03 10:00 IST = 04:30 UTC: allowed.
        let now = utc("2024-01-03T04:30:00Z");
        assert_eq!(h.next_allowed(now, kolkata), Some(now));
        // Wed 21:00 IST exactly: closed; next is Thu 09:00 IST = 03:30 UTC.
        assert_eq!(
            h.next_allowed(utc("2024-01-03T15:30:00Z"), kolkata),
            Some(utc("2024-01-04T03:30:00Z"))
        );
        // Fri 22:00 IST: the weekend is skipped, Mon 09:00 IST.
        assert_eq!(
            h.next_allowed(utc("2024-01-05T16:30:00Z"), kolkata),
            Some(utc("2024-01-08T03:30:00Z"))
        );
    }

    #[test]
    fn window_across_midnight_belongs_to_its_start_day() {
        let h = hours(json!({"start": "22:00", "end": "02:00", "days": ["fri"]}));
        // Sat 01:00 UTC is inside Friday's window.
        let now = utc("2024-01-06T01:00:00Z");
        assert_eq!(h.next_allowed(now, Tz::UTC), Some(now));
        // Sat 03:00: next Friday 22:00.
        assert_eq!(
            h.next_allowed(utc("2024-01-06T03:00:00Z"), Tz::UTC),
            Some(utc("2024-01-12T22:00:00Z"))
        );
    }

    #[test]
    fn dst_gap_and_overlap() {
        let ny: Tz = "America/New_York".parse().expect("tz");
        // 2024-03-10 02:30 does not exist in New York: the window opens at 03:00 EDT (07:00 UTC).
        let h = hours(json!({"start": "02:30", "end": "05:00"}));
        assert_eq!(
            h.next_allowed(utc("2024-03-10T05:00:00Z"), ny),
            Some(utc("2024-03-10T07:00:00Z"))
        );
        // 2024-11-03 01:30 happens twice: the earlier one (EDT, 05:30 UTC).
        let h = hours(json!({"start": "01:30", "end": "04:00"}));
        assert_eq!(
            h.next_allowed(utc("2024-11-03T04:00:00Z"), ny),
            Some(utc("2024-11-03T05:30:00Z"))
        );
    }

    #[test]
    fn zone_is_the_callees_when_the_country_has_one() {
        assert_eq!(zone_for(Some("IN"), "Europe/Paris").name(), "Asia/Kolkata");
        assert_eq!(zone_for(Some("GB"), "UTC").name(), "Europe/London");
        // Several zones: the account's.
        assert_eq!(
            zone_for(Some("US"), "America/Chicago").name(),
            "America/Chicago"
        );
        assert_eq!(zone_for(None, "Asia/Tokyo").name(), "Asia/Tokyo");
        assert_eq!(zone_for(None, "Not/AZone"), Tz::UTC);
    }

    #[test]
    fn no_allowed_day_is_none() {
        let none = CallingHours {
            days: Vec::new(),
            ..hours(json!({"start": "09:00", "end": "21:00"}))
        };
        assert_eq!(
            none.next_allowed(utc("2024-01-03T04:30:00Z"), Tz::UTC),
            None
        );
    }
}
