//! A phone number given in a path or a query (`DELETE /dnc/{phone_number}`, `GET
//! /calls?phone_number=`), read like a submitted one with the account's country.

use dialer_core::phone::{E164, parse_country};

use crate::api_error::{ApiError, ApiResult};

pub fn parse(raw: &str, country: &str) -> ApiResult<E164> {
    let country = parse_country(country).map_err(|e| ApiError::internal(e.to_string()))?;
    E164::parse(raw.trim(), country).map_err(|_| {
        ApiError::invalid_request("`phone_number` is not a phone number (write + as %2B)")
    })
}

/// Refuses a query parameter outside `known`: a typo must not silently widen a search.
pub fn refuse_unknown_params<'k>(
    names: impl IntoIterator<Item = &'k str>,
    known: &[&str],
) -> ApiResult<()> {
    match dialer_core::client_text::first_unknown(names, known) {
        None => Ok(()),
        Some(name) => Err(ApiError::invalid_request(format!(
            "unknown query parameter `{}` (known: {})",
            dialer_core::client_text::quoted(name),
            known.join(", ")
        ))),
    }
}
