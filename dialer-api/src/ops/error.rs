//! What an operation can fail with, in the operation's terms; the API maps it to its HTTP answer
//! in one place (`api_error`), dialerctl prints it as it is. The text is the message the client
//! or operator sees.

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No such thing for this account (another account's counts as none).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state; `code` names the conflict (`batch_closed`,
    /// `batch_paused`, `account_exists`, `server_exists`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The input is refused; the message names the field or the rule.
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    /// Anything else that is not the caller's doing.
    #[error("{0}")]
    Internal(String),
}

pub type OpsResult<T> = Result<T, OpsError>;

impl OpsError {
    pub fn not_found(message: impl Into<String>) -> OpsError {
        OpsError::NotFound(message.into())
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> OpsError {
        OpsError::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> OpsError {
        OpsError::Invalid(message.into())
    }
    pub fn internal(cause: impl Display) -> OpsError {
        OpsError::Internal(cause.to_string())
    }
}

/// How a write's refusals by the database read to the caller; each `None` leaves that error a
/// database error.
#[derive(Default)]
pub struct Refusals {
    /// No row matched (an update of a missing row).
    pub not_found: Option<String>,
    /// A unique key is taken: the conflict's code and message.
    pub exists: Option<(&'static str, String)>,
    /// A CHECK constraint refused a value: the message's prefix (the constraint's words follow).
    pub invalid: Option<&'static str>,
}

impl Refusals {
    /// A write of a row that may be missing: `not_found` with this message.
    pub fn missing(message: String) -> Self {
        Refusals {
            not_found: Some(message),
            ..Refusals::default()
        }
    }

    /// A write that may take a unique key already taken: a conflict with this code and message.
    pub fn taken(code: &'static str, message: String) -> Self {
        Refusals {
            exists: Some((code, message)),
            ..Refusals::default()
        }
    }

    /// And a CHECK constraint's refusal reads `prefix: <the constraint's words>`.
    pub fn or_invalid(self, prefix: &'static str) -> Self {
        Refusals {
            invalid: Some(prefix),
            ..self
        }
    }

    pub fn error(self, e: diesel::result::Error) -> OpsError {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match (e, self) {
            (
                Error::NotFound,
                Refusals {
                    not_found: Some(m), ..
                },
            ) => OpsError::NotFound(m),
            (
                Error::DatabaseError(Kind::UniqueViolation, _),
                Refusals {
                    exists: Some((code, message)),
                    ..
                },
            ) => OpsError::Conflict { code, message },
            (
                Error::DatabaseError(Kind::CheckViolation, info),
                Refusals {
                    invalid: Some(prefix),
                    ..
                },
            ) => OpsError::Invalid(format!("{prefix}: {}", info.message())),
            (other, _) => other.into(),
        }
    }
}

impl From<dialer_core::db::DbError> for OpsError {
    fn from(e: dialer_core::db::DbError) -> Self {
        match e {
            dialer_core::db::DbError::Pool(p) => {
                OpsError::Unavailable(format!("database unavailable: {p}"))
            }
            dialer_core::db::DbError::Connection(c) => {
                tracing::warn!(error = %c, "database connection");
                OpsError::Unavailable("database unavailable".to_owned())
            }
            dialer_core::db::DbError::Query(q) => q.into(),
        }
    }
}

impl From<dialer_core::db::PoolError> for OpsError {
    fn from(e: dialer_core::db::PoolError) -> Self {
        tracing::warn!(error = %e, "database pool");
        OpsError::Unavailable("database unavailable".to_owned())
    }
}

impl From<dialer_core::callbacks::CallbackError> for OpsError {
    fn from(e: dialer_core::callbacks::CallbackError) -> Self {
        match e {
            dialer_core::callbacks::CallbackError::Db(db) => db.into(),
            other => OpsError::internal(other),
        }
    }
}

impl From<dialer_core::lifecycle::LifecycleError> for OpsError {
    fn from(e: dialer_core::lifecycle::LifecycleError) -> Self {
        match e {
            dialer_core::lifecycle::LifecycleError::Db(db) => db.into(),
            other => OpsError::internal(other),
        }
    }
}
