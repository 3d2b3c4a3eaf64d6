//! Calling hours as the contract writes them: `{"start": "09:00", "end": "21:00", "days":
//! ["mon", ...]}` (days optional: every day). Stored as JSONB on accounts and batches.

use chrono::{NaiveTime, Weekday};
use serde::Serialize;

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
    }
}
