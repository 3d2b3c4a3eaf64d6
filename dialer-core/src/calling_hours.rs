//! Calling hours as the contract writes them: `{"start": "09:00", "end": "21:00", "days":
//! ["mon", ...]}` (days optional: every day). Stored as JSONB on accounts and batches.

use chrono::{NaiveTime, Weekday};
use serde::Serialize;

use crate::client_text::{first_unknown, quoted};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub days: Vec<Weekday>,
}

const DAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

impl CallingHours {
    /// Validates the JSON form; the error names what is wrong.
    pub fn from_json(value: &serde_json::Value) -> Result<CallingHours, String> {
        let obj = value.as_object().ok_or("calling_hours must be an object")?;
        // A misspelt key would otherwise do nothing (and its value would be stored).
        if let Some(k) = first_unknown(obj.keys().map(String::as_str), &["start", "end", "days"]) {
            return Err(format!(
                "calling_hours: unknown field `{}` (known fields: start, end, days)",
                quoted(k)
            ));
        }
        let time = |key: &str| -> Result<NaiveTime, String> {
            let text = obj.get(key).and_then(|v| v.as_str()).ok_or(format!(
                "calling_hours.{key} must be a time such as \"09:00\""
            ))?;
            NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| {
                format!("calling_hours.{key} must be a time such as \"09:00\", not `{text}`")
            })
        };
        let start = time("start")?;
        let end = time("end")?;
        if start == end {
            return Err("calling_hours.start and calling_hours.end must differ".into());
        }
        let days = match obj.get("days") {
            None | Some(serde_json::Value::Null) => DAY_NAMES.iter().map(|(_, d)| *d).collect(),
            Some(serde_json::Value::Array(items)) if !items.is_empty() => {
                let mut days = Vec::new();
                for item in items {
                    let name = item.as_str().unwrap_or("").to_ascii_lowercase();
                    let day = DAY_NAMES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, d)| *d)
                        .ok_or(format!(
                            "calling_hours.days: `{item}` is not one of mon..sun"
                        ))?;
                    if !days.contains(&day) {
                        days.push(day);
                    }
                }
                days
            }
            Some(_) => {
                return Err(
                    "calling_hours.days must be a non-empty list such as [\"mon\", \"tue\"]".into(),
                );
            }
        };
        Ok(CallingHours { start, end, days })
    }

    /// The normalised JSON form, the only one stored: `{"start": "HH:MM", "end": "HH:MM",
    /// "days": [...]}` with every day listed, in week order.
    pub fn to_json(&self) -> serde_json::Value {
        let days: Vec<&str> = DAY_NAMES
            .iter()
            .filter(|(_, d)| self.days.contains(d))
            .map(|(n, _)| *n)
            .collect();
        serde_json::json!({
            "start": self.start.format("%H:%M").to_string(),
            "end": self.end.format("%H:%M").to_string(),
            "days": days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_rejects() {
        let ok = CallingHours::from_json(
            &json!({"start": "09:00", "end": "21:00", "days": ["mon", "Fri"]}),
        )
        .expect("valid");
        assert_eq!(ok.days, vec![Weekday::Mon, Weekday::Fri]);
        assert_eq!(
            CallingHours::from_json(&json!({"start": "09:00", "end": "21:00"}))
                .map(|c| c.days.len()),
            Ok(7)
        );
        assert!(CallingHours::from_json(&json!({"start": "9am", "end": "21:00"})).is_err());
        assert!(
            CallingHours::from_json(
                &json!({"start": "09:00", "end": "21:00", "days": ["someday"]})
            )
            .is_err()
        );
        assert!(CallingHours::from_json(&json!([1])).is_err());
        let unknown = CallingHours::from_json(
            &json!({"start": "09:00", "end": "21:00", "note\u{0}": "x\u{0}"}),
        );
        assert_eq!(
            unknown,
            Err(
                "calling_hours: unknown field `note\\u{0}` (known fields: start, end, days)".into()
            )
        );
    }

    #[test]
    fn normalised_form_lists_days_in_week_order() {
        let h = CallingHours::from_json(
            &json!({"start": "09:00", "end": "21:30", "days": ["FRI", "mon", "fri"]}),
        )
        .expect("valid");
        assert_eq!(
            h.to_json(),
            json!({"start": "09:00", "end": "21:30", "days": ["mon", "fri"]})
        );
        let every =
            CallingHours::from_json(&json!({"start": "22:00", "end": "06:00"})).expect("valid");
        assert_eq!(every.to_json()["days"].as_array().map(Vec::len), Some(7));
    }
}

impl CallingHours {
    /// Whether a local time on a local weekday is inside the hours. Hours that cross midnight
    /// (`22:00`-`06:00`) belong to the day they start on.
    pub fn allows(&self, day: Weekday, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.days.contains(&day) && self.start <= time && time < self.end
        } else {
            (self.days.contains(&day) && time >= self.start)
                || (self.days.contains(&day.pred()) && time < self.end)
        }
    }

    /// The next opening after a local moment outside the hours: the day it falls on (None:
    /// today) and its start time.
    pub fn next_opening(&self, day: Weekday, time: NaiveTime) -> (Option<Weekday>, NaiveTime) {
        if self.days.contains(&day) && time < self.start {
            return (None, self.start);
        }
        let mut d = day.succ();
        for _ in 0..7 {
            if self.days.contains(&d) {
                return (Some(d), self.start);
            }
            d = d.succ();
        }
        (None, self.start)
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap_or_default()
    }

    #[test]
    fn allows_and_next_opening() {
        let h = CallingHours::from_json(
            &json!({"start": "09:00", "end": "21:00", "days": ["mon", "tue"]}),
        )
        .expect("valid");
        assert!(h.allows(Weekday::Mon, t("09:00")));
        assert!(!h.allows(Weekday::Mon, t("21:00")));
        assert!(!h.allows(Weekday::Wed, t("10:00")));
        assert_eq!(h.next_opening(Weekday::Mon, t("08:00")), (None, t("09:00")));
        assert_eq!(
            h.next_opening(Weekday::Tue, t("22:00")),
            (Some(Weekday::Mon), t("09:00"))
        );
        let night =
            CallingHours::from_json(&json!({"start": "22:00", "end": "06:00", "days": ["fri"]}))
                .expect("valid");
        assert!(night.allows(Weekday::Fri, t("23:00")));
        assert!(night.allows(Weekday::Sat, t("05:00")));
        assert!(!night.allows(Weekday::Sat, t("23:00")));
    }
}
