//! Phone numbers: the E.164 newtype the platform dials, and the masked form logs show.
//!
//! A number is read as libphonenumber reads it (the reference implementation, checked against
//! its Python port by `tests/it/phone_agreement.rs`), on the `phonenumber` crate's copy of its
//! metadata, after the contract's grammar (`written`) has refused anything that is not plainly
//! a number.

mod metadata;
mod reading;
mod written;

use std::fmt;

use phonenumber::country;

/// Why a submitted number is not a dialable E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("not a phone number")]
    NotANumber,
    #[error("not a valid number for its country")]
    Invalid,
    #[error("unknown country code `{0}`")]
    UnknownCountry(String),
    #[error("phone metadata does not compile: {0}")]
    Metadata(String),
}

/// A validated number in E.164 form (`+919876543210`), with its region when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E164 {
    number: String,
    region: Option<country::Id>,
}

/// Parses an ISO 3166 alpha-2 region code such as `IN`.
pub fn parse_country(code: &str) -> Result<country::Id, PhoneError> {
    code.trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| PhoneError::UnknownCountry(code.to_owned()))
}

impl E164 {
    /// Normalises `raw` as the client stored it: the contract's grammar (digits, spaces, dashes,
    /// dots, parentheses, one leading `+`), then libphonenumber's reading with `default_country`
    /// for numbers without `+` or that country's international prefix (IDD), then validity.
    pub fn parse(raw: &str, default_country: country::Id) -> Result<E164, PhoneError> {
        let written = written::written(raw).ok_or(PhoneError::NotANumber)?;
        let default = metadata::region(default_country.as_ref())?;
        let read = reading::read(&written, &default)?;
        let region = metadata::region_of_number(read.country_code, &read.nsn)?
            .filter(|r| r.is_valid(&read.nsn))
            .ok_or(PhoneError::Invalid)?;
        let region = match region.id.as_str() {
            metadata::NON_GEOGRAPHIC => None,
            id => Some(parse_country(id)?),
        };
        Ok(E164 {
            number: format!("+{}{}", read.country_code, read.nsn),
            region,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// The region (ISO code) the number belongs to, e.g. `IN`.
    pub fn region(&self) -> Option<&str> {
        self.region.as_ref().map(|r| r.as_ref())
    }

    /// The number masked for logs.
    pub fn masked(&self) -> Masked<'_> {
        Masked(&self.number)
    }

    pub fn into_string(self) -> String {
        self.number
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.number)
    }
}

/// Displays a phone number with all but its first three and last two characters replaced by `*`
/// (`+91******10`): enough to tell calls apart in logs, not enough to call the person.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: Vec<char> = self.0.chars().collect();
        let n = chars.len();
        if n <= 5 {
            return f.write_str(&"*".repeat(n));
        }
        for (i, c) in chars.iter().enumerate() {
            if i < 3 || i >= n - 2 {
                write!(f, "{c}")?;
            } else {
                f.write_str("*")?;
            }
        }
        Ok(())
    }
}

/// Masks any phone number text for logs.
pub fn mask(number: &str) -> String {
    Masked(number).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn india() -> country::Id {
        parse_country("IN").expect("IN is a country")
    }

    #[test]
    fn national_number_takes_the_default_country() {
        let n = E164::parse("9876543210", india()).expect("valid");
        assert_eq!(n.as_str(), "+919876543210");
        assert_eq!(n.region(), Some("IN"));
    }

    fn e164(raw: &str, region: &str) -> Result<String, PhoneError> {
        E164::parse(raw, parse_country(region).expect("region")).map(E164::into_string)
    }

    #[test]
    fn international_forms_agree() {
        for raw in [
            "+91 98765 43210",
            "+919876543210",
            "011 91 98765 43210",
            "+(91) 98765-43210",
        ] {
            assert_eq!(e164(raw, "US"), Ok("+919876543210".to_owned()), "{raw}");
        }
    }

    #[test]
    fn national_numbers_that_start_with_the_country_code() {
        // The crate's own parser reads these as +91 80334018 (its issue 68).
        for raw in [
            "9180334018",
            "91803 34018",
            "(918) 033-4018",
            "09180334018",
            "919180334018",
            "+919180334018",
        ] {
            assert_eq!(e164(raw, "IN"), Ok("+919180334018".to_owned()), "{raw}");
        }
        let n = E164::parse("9180334018", india()).expect("valid");
        assert_eq!(n.region(), Some("IN"));
        assert_eq!(e164("1 415 555 0123", "US"), Ok("+14155550123".to_owned()));
    }

    #[test]
    fn idd_is_the_default_regions_own() {
        let ok = |s: &str| Ok(s.to_owned());
        assert_eq!(e164("0091 98765 43210", "IN"), ok("+919876543210"));
        assert_eq!(e164("011 91 98765 43210", "US"), ok("+919876543210"));
        assert_eq!(e164("0011 91 98765 43210", "AU"), ok("+919876543210"));
        assert_eq!(e164("001 415 555 0123", "GB"), ok("+14155550123"));
        // 00 is not an international prefix in the US or Australia: a national number there.
        assert_eq!(e164("0091 98765 43210", "US"), Err(PhoneError::Invalid));
        assert_eq!(e164("00 91 98765 43210", "AU"), Err(PhoneError::Invalid));
        // `+` then the IDD: libphonenumber reads it without the `+`.
        assert_eq!(e164("+0091 98765 43210", "IN"), ok("+919876543210"));
        assert_eq!(e164("+0091 98765 43210", "US"), Err(PhoneError::NotANumber));
    }

    #[test]
    fn only_the_contract_grammar_is_read() {
        assert_eq!(
            e164("+91 (98765) 43-210", "IN"),
            Ok("+919876543210".to_owned())
        );
        assert_eq!(e164(" 98765.43210 ", "IN"), Ok("+919876543210".to_owned()));
        // libphonenumber would dial +919876522233, +919870200011 and +919876511135.
        for raw in [
            "98765ABCDE",
            "call me at 9870200011",
            "9876511135 ext. 7",
            "9876511135 x7",
            "++919876543210",
            "91+9876543210",
            "#",
            "*",
            "x",
            "*9876543210#",
            "٩٨٧٦٥٤٣٢١٠",
            "９８７６５４３２１０",
            "98765\u{0}43210",
        ] {
            assert_eq!(e164(raw, "IN"), Err(PhoneError::NotANumber), "{raw:?}");
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(E164::parse("98765x", india()).is_err());
        assert!(E164::parse("", india()).is_err());
        assert!(E164::parse("12", india()).is_err());
        assert!(E164::parse(&"9".repeat(100), india()).is_err());
        assert_eq!(e164("98765", "IN"), Err(PhoneError::Invalid));
        assert_eq!(
            parse_country("XX"),
            Err(PhoneError::UnknownCountry("XX".into()))
        );
    }

    #[test]
    fn masking_hides_the_middle() {
        assert_eq!(mask("+919876543210"), "+91********10");
        assert_eq!(mask("1234"), "****");
    }
}
