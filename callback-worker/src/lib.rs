//! The callback worker: delivers every call event to its account's callback URL, signed with
//! both schemes of the contract, in order per call, retried on a schedule, recorded per try.
//!
//! Listing deliveries, redelivery, secret rotation and the URL policy are dialer-core's
//! (`dialer_core::callbacks`, `dialer_core::url_policy`): the API uses them without this crate.

pub mod circuit;
pub mod claim;
pub mod config;
pub mod endpoints;
pub mod engine;
pub mod metrics;
pub mod prompts;
pub mod record;
pub mod schedule;
pub mod vacuum;

// Shared with the API's test events; kept under their old paths.
pub use dialer_core::callbacks::{delivery, resolver, signing};

pub use config::WorkerConfig;
pub use engine::Engine;
/// The worker fails in the database or in the broker.
pub type WorkerError = dialer_core::ServiceError;
