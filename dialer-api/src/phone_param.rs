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
