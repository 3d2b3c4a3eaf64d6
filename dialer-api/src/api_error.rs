//! The contract's error body, `{"status":"error","code":...,"message":...}`, for every error the
//! API answers.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::ops::error::OpsError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for `429 rate_limited`.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The contract's error body.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorResponse {
    #[schema(schema_with = crate::data_schema::error_status)]
    pub status: &'static str,
    /// Machine-readable code, e.g. `invalid_request`, `unauthorized`, `not_found`,
    /// `batch_closed`, `payload_too_large`, `quota_exceeded`, `rate_limited`.
    pub code: String,
    /// Human text naming the field or limit.
    pub message: String,
}

/// The JSON text of an error body.
pub fn error_json(code: &str, message: &str) -> String {
    serde_json::to_string(&ErrorResponse {
        status: "error",
        code: code.to_owned(),
        message: message.to_owned(),
    })
    .unwrap_or_else(|_| {
        r#"{"status":"error","code":"internal_error","message":"internal error"}"#.to_owned()
    })
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }
    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
    pub fn quota_exceeded(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", message)
    }
    /// `429 rate_limited`, `Retry-After` the whole seconds of `wait` (at least 1).
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> ApiError {
        let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        err.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        err
    }
    /// `503 unavailable` with `Retry-After` (the database is unreachable or restarting: a
    /// client should try again shortly, as it would after a 429).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        err.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        err
    }
    /// Logs the cause; the client gets a generic message (causes may hold internals).
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; it has been logged",
        )
    }
}

/// `Retry-After` of a `503`: about how long a database restart or failover takes.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(error_json(self.code, &self.message))
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        OpsError::Db(e).into()
    }
}

// The database's errors read as the operations' do (503 when unreachable, else 500).
impl From<dialer_core::db::DbError> for ApiError {
    fn from(e: dialer_core::db::DbError) -> Self {
        OpsError::from(e).into()
    }
}

impl From<dialer_core::db::PoolError> for ApiError {
    fn from(e: dialer_core::db::PoolError) -> Self {
        OpsError::from(e).into()
    }
}

/// The one place an operation's error becomes an HTTP answer.
impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::NotFound(message) => ApiError::not_found(message),
            OpsError::Conflict { code, message } => ApiError::conflict(code, message),
            OpsError::Invalid(message) => ApiError::invalid_request(message),
            OpsError::Unavailable(message) => ApiError::unavailable(message),
            OpsError::Db(e) if dialer_core::db::connection_lost(&e) => {
                tracing::warn!(error = %e, "database connection lost");
                ApiError::unavailable("database unavailable; try again shortly")
            }
            e @ (OpsError::Db(_) | OpsError::Internal(_)) => ApiError::internal(e),
        }
    }
}
