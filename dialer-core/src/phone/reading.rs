//! Reading the digits of a written number as libphonenumber's `parse` does, step for step, on
//! the crate's metadata: the crate's own parser reads national numbers that start with the
//! country code as international ones (its issue 68), strips an IDD after a `+`, and strips
//! the national prefix twice; the reference implementation does none of these.

use std::sync::Arc;

use super::PhoneError;
use super::metadata::{self, Length, Region};
use super::written::Written;

/// libphonenumber's bounds of a national significant number.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;
const MAX_CALLING_CODE: usize = 3;

/// A number read: its calling code and national significant number, not yet validated.
pub(super) struct Read {
    pub country_code: u16,
    pub nsn: String,
}

/// libphonenumber's `extractCountryCode`: the calling code at the start of `digits` (1 to 3
/// digits, never starting with 0) and what follows it.
fn split_calling_code(digits: &str) -> Option<(u16, &str)> {
    if digits.starts_with('0') {
        return None;
    }
    (1..=MAX_CALLING_CODE.min(digits.len()))
        .filter_map(|len| Some((digits[..len].parse::<u16>().ok()?, &digits[len..])))
        .find(|(code, _)| metadata::is_calling_code(*code))
}

/// A number without `+` or IDD that starts with the default region's calling code is read as
/// international only when it does not fit the region's pattern but does without the code, or
/// is too long for the region (libphonenumber's `maybeExtractCountryCode`).
fn strip_own_calling_code(digits: &str, default: &Region) -> Option<String> {
    let rest = digits.strip_prefix(&default.country_code.to_string())?;
    let potential = default
        .strip_national_prefix(rest)
        .unwrap_or_else(|| rest.to_owned());
    let better = !default.general_matches(digits) && default.general_matches(&potential);
    (better || default.length(digits) == Length::TooLong).then_some(potential)
}

/// libphonenumber's `maybeExtractCountryCode`: the calling code and the rest when the number
/// carries one (after `+`, after the default region's IDD, or its own code by the rule above).
fn extract(
    digits: &str,
    plus: bool,
    default: &Region,
) -> Result<Option<(u16, String)>, PhoneError> {
    let international = if plus {
        Some(digits)
    } else {
        default.strip_idd(digits)
    };
    if let Some(after) = international {
        if after.len() <= MIN_NSN {
            return Err(PhoneError::NotANumber);
        }
        let (code, rest) = split_calling_code(after).ok_or(PhoneError::NotANumber)?;
        return Ok(Some((code, rest.to_owned())));
    }
    Ok(strip_own_calling_code(digits, default).map(|n| (default.country_code, n)))
}

/// Reads `written` as entered in the `default` region.
pub(super) fn read(written: &Written, default: &Arc<Region>) -> Result<Read, PhoneError> {
    let digits = written.digits.as_str();
    let extracted =
        if written.plus && digits.len() > MIN_NSN && split_calling_code(digits).is_none() {
            // libphonenumber reads a `+` number without a known calling code once more without the
            // `+` (`+0091…` as `0091…`); then it must carry a calling code.
            Some(extract(digits, false, default)?.ok_or(PhoneError::NotANumber)?)
        } else {
            extract(digits, written.plus, default)?
        };
    // Where the calling code came from the number, the rules are those of its main region
    // (libphonenumber: `getRegionCodeForCountryCode`), unless that is the default region.
    let (country_code, national, rules) = match extracted {
        Some((code, national)) => {
            let main = metadata::main_region(code)?;
            let rules = if main.id == default.id {
                default.clone()
            } else {
                main
            };
            (code, national, rules)
        }
        None => (default.country_code, digits.to_owned(), default.clone()),
    };
    if national.len() < MIN_NSN {
        return Err(PhoneError::NotANumber);
    }
    // The national (trunk) prefix goes, unless what is left is too short to be a number.
    let nsn = match rules.strip_national_prefix(&national) {
        Some(stripped)
            if !matches!(
                rules.length(&stripped),
                Length::TooShort | Length::LocalOnly | Length::Invalid
            ) =>
        {
            stripped
        }
        _ => national,
    };
    if nsn.len() < MIN_NSN || nsn.len() > MAX_NSN {
        return Err(PhoneError::NotANumber);
    }
    Ok(Read { country_code, nsn })
}
