//! Phone numbers: the E.164 newtype the platform dials, and the masked form logs show.

use std::fmt;

use phonenumber::{Mode, country};

/// Why a submitted number is not a dialable E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("not a phone number")]
    NotANumber,
    #[error("not a valid number for its country")]
    Invalid,
    #[error("unknown country code `{0}`")]
    UnknownCountry(String),
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
    /// Normalises `raw` as the client stored it; numbers without `+` are read as national
    /// numbers of `default_country`.
    pub fn parse(raw: &str, default_country: country::Id) -> Result<E164, PhoneError> {
        let trimmed = raw.trim();
        // Guard against pathological inputs before handing them to the parser.
        if trimmed.is_empty() || trimmed.len() > 40 {
            return Err(PhoneError::NotANumber);
        }
        // `00` international prefix is common in client data; the parser does not know it for
        // every country.
        let owned;
        let input = if let Some(rest) = trimmed.strip_prefix("00") {
            owned = format!("+{rest}");
            owned.as_str()
        } else {
            trimmed
        };
        let parsed =
            phonenumber::parse(Some(default_country), input).map_err(|_| PhoneError::NotANumber)?;
        if !parsed.is_valid() {
            return Err(PhoneError::Invalid);
        }
        Ok(E164 {
            number: parsed.format().mode(Mode::E164).to_string(),
            region: parsed.country().id(),
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

    #[test]
    fn international_forms_agree() {
        let us = parse_country("us").expect("US");
        for raw in ["+91 98765 43210", "0091-9876543210", "+919876543210"] {
            assert_eq!(
                E164::parse(raw, us).map(E164::into_string),
                Ok("+919876543210".to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(E164::parse("98765x", india()).is_err());
        assert!(E164::parse("", india()).is_err());
        assert!(E164::parse("12", india()).is_err());
        assert!(E164::parse(&"9".repeat(100), india()).is_err());
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
