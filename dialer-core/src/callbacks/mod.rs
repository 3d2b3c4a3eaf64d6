//! What the API and the CLI do with callback events besides delivering them (the callback
//! worker's job): list deliveries, redeliver, rotate the signing secret.

pub mod listing;
pub mod replay;
pub mod rotation;

use crate::credentials::RandomError;
use crate::db::DbError;

/// The error of the callback operations: the database, or the random source of a new secret.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<diesel::result::Error> for CallbackError {
    fn from(e: diesel::result::Error) -> Self {
        CallbackError::Db(DbError::Query(e))
    }
}
