//! Callback events: listing deliveries, redelivery and secret rotation (the API and the CLI),
//! and the signing and HTTP sending that the callback worker's deliveries and the API's test
//! events share.

pub mod delivery;
pub mod listing;
pub mod replay;
pub mod resolver;
pub mod rotation;
pub mod signing;

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
