//! Makes actix's own errors speak the contract: any error response that is not already JSON
//! (unknown route, wrong method, body too large, bad payload, ...) gets the contract's body,
//! with a code chosen by status.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use crate::api_error::{ApiError, error_json};

/// Fallback for paths no route matches.
pub async fn unknown_route(req: actix_web::HttpRequest) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {} {}", req.method(), req.path()))
}

fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        503 => "unavailable",
        s if s >= 500 => "internal_error",
        _ => "invalid_request",
    }
}

fn is_json(res: &HttpResponse<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

pub async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Handler and extractor errors arrive as responses (actix renders them inside the route);
    // only middleware errors come as Err, and there is no middleware inside this one.
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.response()) {
        return Ok(res);
    }
    let message = match (status.as_u16(), res.response().error()) {
        (405, _) => format!(
            "method {} is not allowed on {}",
            res.request().method(),
            res.request().path()
        ),
        (404, _) => format!(
            "no such endpoint: {} {}",
            res.request().method(),
            res.request().path()
        ),
        (413, _) => "request body is larger than the limit".to_owned(),
        // actix's own words ("payload reached EOF before completing: None") mean nothing to a
        // client.
        (_, Some(e)) if e.as_error::<PayloadError>().is_some() => {
            "the request body is incomplete or its encoding is malformed".to_owned()
        }
        (s, _) if s >= 500 => {
            tracing::error!(status = s, "unhandled server error");
            "internal error".to_owned()
        }
        (_, Some(e)) => e.to_string(),
        (_, None) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let (req, res) = res.into_parts();
    let mut new = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.append_header((name.clone(), value.clone()));
        }
    }
    new.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    let body = error_json(code_for(status), &message);
    Ok(ServiceResponse::new(req, new.body(body)))
}

/// ApiError as a handler's return value (used by `unknown_route`).
impl actix_web::Responder for ApiError {
    type Body = BoxBody;
    fn respond_to(self, _req: &actix_web::HttpRequest) -> HttpResponse<Self::Body> {
        self.error_response()
    }
}
