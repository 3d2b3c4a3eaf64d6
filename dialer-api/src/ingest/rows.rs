//! Per-row checks of a submission that need no database: the number (E.164 with the account's
//! country), the destination rules, and `custom_data`. Rows that pass are candidates; the
//! database checks (do-not-call, re-dial window, duplicates) come after.

use std::collections::HashSet;

use dialer_core::dial_rules;
use dialer_core::phone::E164;
use phonenumber::country;
use serde::Deserialize;
use serde_json::value::RawValue;

dialer_core::text_enum! {
    /// Why a row was not added (the contract's reasons).
    pub enum RejectReason("rejection reason") {
        InvalidPhoneNumber = "invalid_phone_number",
        DoNotCall = "do_not_call",
        DestinationNotAllowed = "destination_not_allowed",
        RecentlyCalled = "recently_called",
        CustomDataNotObject = "custom_data_not_object",
        CustomDataTooLarge = "custom_data_too_large",
        CustomDataTooDeep = "custom_data_too_deep",
    }
}

/// How deep `custom_data` may nest (contract): deeper objects could not be read back by JSON
/// parsers with a recursion limit, ours included.
pub const MAX_CUSTOM_DATA_DEPTH: usize = 32;

/// The fields a row may have; any other refuses the request (see `ingest`).
pub const ROW_FIELDS: [&str; 2] = ["phone_number", "custom_data"];

/// The nesting depth of a JSON text (`{}` is 1), counting brackets outside strings.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

pub struct Rules<'a> {
    pub country: country::Id,
    pub allowed_countries: &'a [String],
    pub allowed_prefixes: &'a [String],
    pub max_custom_data_bytes: usize,
}

/// A row that may be stored.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub index: usize,
    /// As submitted (a JSON number's digits).
    pub raw: String,
    /// The `phone_number` JSON exactly as submitted, for rejections found later.
    pub raw_json: Box<RawValue>,
    /// The number in E.164 form, with its region.
    pub number: E164,
    /// The exact JSON text submitted.
    pub custom_data: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Rejection {
    pub index: usize,
    /// The row's `phone_number` JSON exactly as submitted (None when missing: shown as null).
    pub phone_number: Option<Box<RawValue>>,
    pub reason: RejectReason,
}

#[derive(Default)]
pub struct Checked {
    pub candidates: Vec<Candidate>,
    pub rejected: Vec<Rejection>,
    /// Rows repeating a number earlier in the same request.
    pub duplicates: usize,
}

#[derive(Deserialize)]
struct RowFields<'a> {
    #[serde(borrow)]
    phone_number: Option<&'a RawValue>,
    #[serde(borrow)]
    custom_data: Option<&'a RawValue>,
}

/// The number text of a `phone_number` value: a string's content or an integer's digits.
fn phone_text(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Some(text.to_owned())
    } else {
        None
    }
}

pub fn check(rows: &[&RawValue], rules: &Rules<'_>) -> Checked {
    let mut out = Checked::default();
    let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let fields = serde_json::from_str::<RowFields<'_>>(row.get()).ok();
        let phone_raw = fields.as_ref().and_then(|f| f.phone_number);
        let reject = |reason| Rejection {
            index,
            phone_number: phone_raw.map(|p| p.to_owned()),
            reason,
        };
        let Some(text) = phone_raw.and_then(phone_text) else {
            out.rejected.push(reject(RejectReason::InvalidPhoneNumber));
            continue;
        };
        let Ok(number) = E164::parse(&text, rules.country) else {
            out.rejected.push(reject(RejectReason::InvalidPhoneNumber));
            continue;
        };
        let custom_data = match fields.as_ref().and_then(|f| f.custom_data) {
            None => None,
            Some(cd) if cd.get() == "null" => None,
            Some(cd) if !cd.get().starts_with('{') => {
                out.rejected.push(reject(RejectReason::CustomDataNotObject));
                continue;
            }
            Some(cd) if cd.get().len() > rules.max_custom_data_bytes => {
                out.rejected.push(reject(RejectReason::CustomDataTooLarge));
                continue;
            }
            Some(cd) if json_depth(cd.get()) > MAX_CUSTOM_DATA_DEPTH => {
                out.rejected.push(reject(RejectReason::CustomDataTooDeep));
                continue;
            }
            Some(cd) => Some(cd.get().to_owned()),
        };
        if !dial_rules::destination_allowed(
            rules.allowed_countries,
            rules.allowed_prefixes,
            number.as_str(),
            number.region(),
        ) {
            out.rejected
                .push(reject(RejectReason::DestinationNotAllowed));
            continue;
        }
        if !seen.insert(number.as_str().to_owned()) {
            out.duplicates += 1;
            continue;
        }
        out.candidates.push(Candidate {
            index,
            raw_json: phone_raw.map(|p| p.to_owned()).unwrap_or_default(),
            raw: text,
            number,
            custom_data,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(json: &str) -> Vec<Box<RawValue>> {
        serde_json::from_str(json).expect("test rows")
    }

    fn run(json: &str, countries: &[&str], prefixes: &[&str]) -> Checked {
        run_with(json, countries, prefixes, 40)
    }

    fn run_with(json: &str, countries: &[&str], prefixes: &[&str], max_bytes: usize) -> Checked {
        let countries: Vec<String> = countries.iter().map(|s| s.to_string()).collect();
        let prefixes: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
        let rules = Rules {
            country: dialer_core::phone::parse_country("IN").expect("IN"),
            allowed_countries: &countries,
            allowed_prefixes: &prefixes,
            max_custom_data_bytes: max_bytes,
        };
        let owned = rows(json);
        let refs: Vec<&RawValue> = owned.iter().map(|r| r.as_ref()).collect();
        check(&refs, &rules)
    }

    #[test]
    fn reasons_per_row() {
        let c = run(
            r#"[{"phone_number": "9876543210", "custom_data": {"a": 1}},
                {"phone_number": 9876543211},
                {"phone_number": "98765x"},
                {"custom_data": {}},
                {"phone_number": "9876543212", "custom_data": [1]},
                {"phone_number": "9876543213", "custom_data": {"long": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}},
                {"phone_number": "+14155550123"},
                {"phone_number": "+91 98765 43210"},
                7,
                {"phone_number": 98765.5}]"#,
            &["IN"],
            &[],
        );
        let reasons: Vec<(usize, &str)> = c
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (2, "invalid_phone_number"),
                (3, "invalid_phone_number"),
                (4, "custom_data_not_object"),
                (5, "custom_data_too_large"),
                (6, "destination_not_allowed"),
                (8, "invalid_phone_number"),
                (9, "invalid_phone_number"),
            ]
        );
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.candidates.len(), 2);
        assert_eq!(c.candidates[0].custom_data.as_deref(), Some(r#"{"a": 1}"#));
        assert_eq!(c.candidates[1].raw, "9876543211");
        assert_eq!(
            c.rejected[0].phone_number.as_ref().map(|p| p.get()),
            Some(r#""98765x""#)
        );
        assert!(c.rejected[1].phone_number.is_none());
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(r#"{}"#), 1);
        assert_eq!(json_depth(r#"{"a": [1, {"b": "}}}"}]}"#), 3);
        assert_eq!(json_depth(r#"{"a": "\"[[[[", "b": {"c": []}}"#), 3);
        let deep = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        assert_eq!(json_depth(&deep(32)), 32);
        let c = run_with(
            &format!(
                r#"[{{"phone_number": "9876543210", "custom_data": {}}},
                    {{"phone_number": "9876543211", "custom_data": {}}}]"#,
                deep(32),
                deep(33)
            ),
            &[],
            &[],
            10_000,
        );
        assert_eq!(c.candidates.len(), 1);
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.rejected[0].reason.as_str(), "custom_data_too_deep");
    }

    #[test]
    fn prefixes_allow_too() {
        let c = run(
            r#"[{"phone_number": "+14155550123"}, {"phone_number": "+442071838750"}]"#,
            &["IN"],
            &["+1415"],
        );
        assert_eq!(c.candidates.len(), 1);
        assert_eq!(c.rejected.len(), 1);
        let open = run(r#"[{"phone_number": "+442071838750"}]"#, &[], &[]);
        assert_eq!(open.candidates.len(), 1);
    }
}
