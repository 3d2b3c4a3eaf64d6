//! Reading JSON request bodies with messages that name the offending field (serde's own errors
//! do not always), and the content-type rule.

use std::collections::HashMap;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use dialer_core::client_text::{first_unknown, quoted};

use crate::api_error::{ApiError, ApiResult};

/// The request's media type, lower case without parameters (`text/csv; charset=utf-8` is
/// `text/csv`), and the header as sent.
pub fn media_type(req: &HttpRequest) -> (String, &str) {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (mime, content_type)
}

/// `415 unsupported_media_type` naming what is accepted and what was sent.
pub fn unsupported(accepted: &str, content_type: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "Content-Type must be {accepted}, not `{}`",
            quoted(content_type)
        ),
    )
}

/// A body must be declared as JSON.
pub fn require_json(req: &HttpRequest) -> ApiResult<()> {
    match media_type(req) {
        (mime, _) if mime == "application/json" => Ok(()),
        (_, content_type) => Err(unsupported("application/json", content_type)),
    }
}

/// A whole body that must be declared as JSON: read first (its size limit answers before the
/// content type), then the content-type rule.
pub struct JsonBody(pub web::Bytes);

impl FromRequest for JsonBody {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let bytes = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = bytes.await?;
            require_json(&req)?;
            Ok(JsonBody(body))
        })
    }
}

/// An optional body: `None` when empty (whitespace only, whatever its content type), else a
/// JSON object declared as such with no field outside `known`.
pub fn optional_object<'b>(
    req: &HttpRequest,
    body: &'b [u8],
    known: &[&str],
) -> ApiResult<Option<TopLevel<'b>>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    require_json(req)?;
    let top = parse_object(body)?;
    top.only(known)?;
    Ok(Some(top))
}

/// The top-level object, each field kept as raw JSON for [`field`].
pub struct TopLevel<'a>(HashMap<String, &'a RawValue>);

pub fn parse_object(body: &[u8]) -> ApiResult<TopLevel<'_>> {
    serde_json::from_slice::<HashMap<String, &RawValue>>(body)
        .map(TopLevel)
        .map_err(|e| {
            if e.is_data() {
                ApiError::invalid_request("the body must be a JSON object")
            } else {
                ApiError::invalid_request(format!("malformed JSON: {e}"))
            }
        })
}

impl<'a> TopLevel<'a> {
    /// A field; `null` counts as absent. `expected` describes the type for the message.
    pub fn get<T: DeserializeOwned>(&self, name: &str, expected: &str) -> ApiResult<Option<T>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|_| ApiError::invalid_request(format!("`{name}` must be {expected}"))),
        }
    }

    pub fn require<T: DeserializeOwned>(&self, name: &str, expected: &str) -> ApiResult<T> {
        self.get(name, expected)?
            .ok_or_else(|| ApiError::invalid_request(format!("`{name}` is required ({expected})")))
    }

    pub fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name).copied()
    }

    /// Refuses a field outside `known`: a typo must not silently do nothing (contract).
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        refuse_unknown(self.0.keys().map(String::as_str), known, "")
    }
}

/// Refuses the first name outside `known`; `within` prefixes the field in the message (`data[3].`).
pub fn refuse_unknown<'k>(
    names: impl IntoIterator<Item = &'k str>,
    known: &[&str],
    within: &str,
) -> ApiResult<()> {
    match first_unknown(names, known) {
        None => Ok(()),
        Some(name) => Err(ApiError::invalid_request(format!(
            "unknown field `{within}{}` (known fields: {})",
            quoted(name),
            known.join(", ")
        ))),
    }
}

/// A `batch_id` as the contract defines it: a positive integer up to 2^63-1.
pub fn parse_batch_id(raw: &str) -> ApiResult<i64> {
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ApiError::invalid_request(
            "`batch_id` must be a positive integer up to 2^63-1",
        )),
    }
}

pub fn batch_id_field(top: &TopLevel<'_>) -> ApiResult<Option<i64>> {
    match top.raw("batch_id") {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => parse_batch_id(raw.get()).map(Some),
    }
}
