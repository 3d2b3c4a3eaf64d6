//! Calling hours: when a call may be originated, in the callee's local time where the number's
//! country has a single time zone, else in the account's time zone.
//!
//! `{"start": "09:00", "end": "21:00", "days": ["mon", ..., "sun"]}`: allowed on the listed days
//! from `start` (inclusive) to `end` (exclusive), local time. An `end` at or before `start` is a
//! window across midnight that belongs to the day it starts on. A call due outside the hours waits
//! for the next allowed instant (it is never failed for it). Local times that do not exist
//! (spring-forward gap) move to the first instant after the gap; ambiguous ones (fall-back) take
//! the earlier instant.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde_json::Value;

use crate::country_timezones::SINGLE_ZONE_COUNTRIES;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("calling_hours must be an object with start, end and days")]
    NotAnObject,
    #[error("calling_hours.{field}: {reason}")]
    Field { field: &'static str, reason: String },
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingHours {
    start: NaiveTime,
    end: NaiveTime,
    /// Monday first.
    days: [bool; 7],
}

impl CallingHours {
    pub fn parse(value: &Value) -> Result<CallingHours, HoursError> {
        let obj = value.as_object().ok_or(HoursError::NotAnObject)?;
        let time = |field: &'static str| -> Result<NaiveTime, HoursError> {
            let text = obj
                .get(field)
                .and_then(Value::as_str)
                .ok_or(HoursError::Field {
                    field,
                    reason: "missing or not a string \"HH:MM\"".into(),
                })?;
            NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| HoursError::Field {
                field,
                reason: format!("`{text}` is not HH:MM"),
            })
        };
        let start = time("start")?;
        let end = time("end")?;
        let mut days = [false; 7];
        match obj.get("days") {
            // No days listed: every day.
            None | Some(Value::Null) => days = [true; 7],
            Some(Value::Array(list)) => {
                for d in list {
                    let name = d.as_str().unwrap_or_default().to_ascii_lowercase();
                    let i = DAYS
                        .iter()
                        .position(|x| *x == name)
                        .ok_or(HoursError::Field {
                            field: "days",
                            reason: format!("`{d}` is not one of {}", DAYS.join(", ")),
                        })?;
                    days[i] = true;
                }
            }
            Some(other) => {
                return Err(HoursError::Field {
                    field: "days",
                    reason: format!("`{other}` is not a list of days"),
                });
            }
        }
        if start == end {
            return Err(HoursError::Field {
                field: "end",
                reason: "equals start: an empty window".into(),
            });
        }
        Ok(CallingHours { start, end, days })
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// `now` if a call may go now, else the next instant it may; `None` when no day is allowed.
    pub fn next_allowed(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&tz).date_naive();
        let mut best: Option<DateTime<Utc>> = None;
        // Yesterday too: its window may run past midnight into today.
        for offset in -1..=8 {
            let date = today + Duration::days(offset);
            if !self.days[date.weekday().num_days_from_monday() as usize] {
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

/// `outside calling hours until 09:00 Asia/Kolkata`, for `waiting_reason`.
pub fn waiting_reason(next: DateTime<Utc>, tz: Tz) -> String {
    let local = next.with_timezone(&tz);
    format!(
        "outside calling hours until {} {}",
        local.format("%H:%M"),
        tz.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("rfc3339")
    }

    fn hours(v: Value) -> CallingHours {
        CallingHours::parse(&v).expect("valid")
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
        assert_eq!(
            waiting_reason(utc("2024-01-08T03:30:00Z"), kolkata),
            "outside calling hours until 09:00 Asia/Kolkata"
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
    fn bad_input_is_a_clear_error() {
        assert!(CallingHours::parse(&json!("9-5")).is_err());
        assert!(CallingHours::parse(&json!({"start": "9am", "end": "21:00"})).is_err());
        assert!(
            CallingHours::parse(&json!({"start": "09:00", "end": "21:00", "days": ["funday"]}))
                .is_err()
        );
        assert!(CallingHours::parse(&json!({"start": "09:00", "end": "09:00"})).is_err());
        let none = hours(json!({"start": "09:00", "end": "21:00", "days": []}));
        assert_eq!(
            none.next_allowed(utc("2024-01-03T04:30:00Z"), Tz::UTC),
            None
        );
    }
}
