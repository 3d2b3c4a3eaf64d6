//! libphonenumber's metadata, as the `phonenumber` crate embeds it, compiled the way
//! libphonenumber uses it: number patterns match whole numbers (the crate matches them as
//! prefixes), prefixes match at the start, and the general description's lengths are the union of
//! its types' lengths (libphonenumber computes them when it builds its metadata; the crate does not).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use phonenumber::Metadata;
use phonenumber::metadata::{DATABASE, Descriptor};
use regex::{Regex, RegexBuilder};

use super::PhoneError;

/// Region id of the non-geographic calling codes (+800, +808, +870, ...).
pub(super) const NON_GEOGRAPHIC: &str = "001";

/// One type of number (fixed line, mobile, ...) or the general description.
struct Kind {
    whole: Regex,
    lengths: Vec<u16>,
}

impl Kind {
    /// libphonenumber's `isNumberMatchingDesc`: the length first, then the whole pattern.
    fn matches(&self, nsn: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&length_of(nsn)))
            && self.whole.is_match(nsn)
    }
}

/// What libphonenumber's `testNumberLength` says of a number's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// The rules of one metadata entry (a region, or a non-geographic calling code).
pub(super) struct Region {
    pub id: String,
    pub country_code: u16,
    idd: Option<Regex>,
    national_prefix: Option<Regex>,
    transform: Option<String>,
    leading_digits: Option<Regex>,
    general: Kind,
    local_only: Vec<u16>,
    /// The types that make a number valid (libphonenumber's `getNumberTypeHelper`).
    valid_kinds: Vec<Kind>,
}

fn length_of(digits: &str) -> u16 {
    u16::try_from(digits.len()).unwrap_or(u16::MAX)
}

fn compile(pattern: &str, whole: bool) -> Result<Regex, PhoneError> {
    let anchored = if whole {
        format!("^(?:{pattern})$")
    } else {
        format!("^(?:{pattern})")
    };
    // The metadata's patterns are written across lines in its XML.
    RegexBuilder::new(&anchored)
        .ignore_whitespace(true)
        .build()
        .map_err(|e| PhoneError::Metadata(e.to_string()))
}

/// `$1` in a transform rule is Java's group reference; the regex crate would read `$1abc` as
/// a group named `1abc`.
fn rust_replacement(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len() + 4);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('$', Some(d)) if d.is_ascii_digit() => {
                out.push_str("${");
                out.push(*d);
                out.push('}');
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

impl Region {
    fn build(meta: &Metadata) -> Result<Region, PhoneError> {
        let d = meta.descriptors();
        let typed: Vec<&Descriptor> = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut lengths: Vec<u16> = typed
            .iter()
            .flat_map(|k| k.possible_length())
            .copied()
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        let mut local_only: Vec<u16> = typed
            .iter()
            .flat_map(|k| k.possible_local_length())
            .copied()
            .filter(|l| !lengths.contains(l))
            .collect();
        local_only.sort_unstable();
        local_only.dedup();
        let kind = |k: &Descriptor| -> Result<Kind, PhoneError> {
            Ok(Kind {
                whole: compile(k.national_number().as_str(), true)?,
                lengths: k.possible_length().to_vec(),
            })
        };
        // Without its own pattern, the national prefix itself is what is stripped.
        let national_prefix = match (meta.national_prefix_for_parsing(), meta.national_prefix()) {
            (Some(re), _) => Some(compile(re.as_str(), false)?),
            (None, Some(p)) if !p.is_empty() => Some(compile(&regex::escape(p), false)?),
            (None, _) => None,
        };
        Ok(Region {
            id: meta.id().to_owned(),
            country_code: meta.country_code(),
            idd: meta
                .international_prefix()
                .map(|re| compile(re.as_str(), false))
                .transpose()?,
            national_prefix,
            transform: meta
                .national_prefix_transform_rule()
                .filter(|r| !r.is_empty())
                .map(rust_replacement),
            leading_digits: meta
                .leading_digits()
                .map(|re| compile(re.as_str(), false))
                .transpose()?,
            general: Kind {
                whole: compile(d.general().national_number().as_str(), true)?,
                lengths,
            },
            local_only,
            valid_kinds: typed.into_iter().map(kind).collect::<Result<_, _>>()?,
        })
    }

    /// libphonenumber's `parsePrefixAsIdd`: the digits after this region's international
    /// prefix, unless what follows starts with 0 (no calling code does).
    pub fn strip_idd<'a>(&self, digits: &'a str) -> Option<&'a str> {
        let end = self.idd.as_ref()?.find(digits)?.end();
        let rest = &digits[end..];
        (!rest.starts_with('0')).then_some(rest)
    }

    /// The general pattern matches the whole number (no length check, as libphonenumber's
    /// `matchNationalNumber`).
    pub fn general_matches(&self, digits: &str) -> bool {
        self.general.whole.is_match(digits)
    }

    /// libphonenumber's `maybeStripNationalPrefixAndCarrierCode`: the number without its national
    /// (trunk) prefix and carrier code, unless that would turn a number that fits the region's
    /// pattern into one that does not.
    pub fn strip_national_prefix(&self, number: &str) -> Option<String> {
        let re = self.national_prefix.as_ref()?;
        if number.is_empty() {
            return None;
        }
        let caps = re.captures(number)?;
        let end = caps.get(0)?.end();
        let viable = self.general_matches(number);
        let groups = re.captures_len() - 1;
        let last_group_matched = caps.get(groups).is_some();
        let stripped = match &self.transform {
            Some(rule) if last_group_matched => re.replace(number, rule.as_str()).into_owned(),
            _ => number[end..].to_owned(),
        };
        if viable && !self.general_matches(&stripped) {
            return None;
        }
        Some(stripped)
    }

    /// libphonenumber's `testNumberLength` for an unknown type.
    pub fn length(&self, digits: &str) -> Length {
        let n = length_of(digits);
        let (Some(&min), Some(&max)) = (self.general.lengths.first(), self.general.lengths.last())
        else {
            return Length::Invalid;
        };
        if self.local_only.contains(&n) {
            Length::LocalOnly
        } else if n < min {
            Length::TooShort
        } else if n > max {
            Length::TooLong
        } else if self.general.lengths.contains(&n) {
            Length::Possible
        } else {
            Length::Invalid
        }
    }

    /// Whether `nsn` (national significant number) is a valid number of this region: it fits the
    /// general description and one of the types (libphonenumber: its type is not UNKNOWN).
    pub fn is_valid(&self, nsn: &str) -> bool {
        self.general.matches(nsn) && self.valid_kinds.iter().any(|k| k.matches(nsn))
    }

    /// Whether this region claims `nsn` by its leading digits (regions sharing a calling code).
    fn claims(&self, nsn: &str) -> Option<bool> {
        self.leading_digits.as_ref().map(|re| re.is_match(nsn))
    }
}

type Cache = RwLock<HashMap<(u16, &'static str), Arc<Region>>>;

/// Compiled once per metadata entry, on first use.
static COMPILED: LazyLock<Cache> = LazyLock::new(Default::default);

fn compiled(meta: &'static Metadata) -> Result<Arc<Region>, PhoneError> {
    // Calling code and id: the non-geographic entries share the id 001.
    let key = (meta.country_code(), meta.id());
    if let Some(found) = COMPILED
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&key)
    {
        return Ok(found.clone());
    }
    let built = Arc::new(Region::build(meta)?);
    COMPILED
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(key, built.clone());
    Ok(built)
}

/// The rules of a region by its ISO code.
pub(super) fn region(id: &str) -> Result<Arc<Region>, PhoneError> {
    let meta = DATABASE
        .by_id(id)
        .ok_or_else(|| PhoneError::UnknownCountry(id.to_owned()))?;
    compiled(meta)
}

/// Whether `code` is a calling code the metadata knows.
pub(super) fn is_calling_code(code: u16) -> bool {
    DATABASE.region(&code).is_some()
}

/// libphonenumber's `getRegionCodeForCountryCode`: the main region of a calling code.
pub(super) fn main_region(code: u16) -> Result<Arc<Region>, PhoneError> {
    let metas = DATABASE.by_code(&code).unwrap_or_default();
    let main = metas.first().ok_or(PhoneError::NotANumber)?;
    compiled(main)
}

/// libphonenumber's `getRegionCodeForNumber`: which region of the calling code `nsn` belongs to
/// (the first that claims it by leading digits or finds it valid), None when none does.
pub(super) fn region_of_number(code: u16, nsn: &str) -> Result<Option<Arc<Region>>, PhoneError> {
    let metas = DATABASE.by_code(&code).unwrap_or_default();
    if let [only] = metas.as_slice() {
        return compiled(only).map(Some);
    }
    for meta in metas {
        let region = compiled(meta)?;
        let belongs = match region.claims(nsn) {
            Some(claimed) => claimed,
            None => region.is_valid(nsn),
        };
        if belongs {
            return Ok(Some(region));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_of_the_metadata_compiles() {
        for meta in DATABASE.iter() {
            if let Err(e) = Region::build(meta) {
                panic!("{} (+{}): {e}", meta.id(), meta.country_code());
            }
        }
    }

    #[test]
    fn transform_rules_become_rust_replacements() {
        assert_eq!(rust_replacement("9$1"), "9${1}");
        assert_eq!(rust_replacement("$2"), "${2}");
        assert_eq!(rust_replacement("$1$25"), "${1}${2}5");
    }

    #[test]
    fn general_lengths_are_the_union_of_the_types() {
        let india = region("IN").expect("IN");
        assert_eq!(india.general.lengths, [8, 9, 10, 11, 12, 13]);
        assert_eq!(india.local_only, [6, 7]);
    }
}
