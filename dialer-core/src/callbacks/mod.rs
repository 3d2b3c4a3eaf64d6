//! What the API and the CLI do with callback events besides delivering them (the callback
//! worker's job): list deliveries, redeliver, rotate the signing secret.

pub mod listing;
pub mod replay;
pub mod rotation;

use crate::credentials::RandomError;
use crate::db::DbError;

/// The error of a secret rotation: the database, or the random source of the new secret
/// (listing and redelivery only touch the database and return [`DbError`]).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("generating a callback secret: {0}")]
    Random(#[from] RandomError),
}
