//! The callback worker: delivers every call event to its account's callback URL, signed with
//! both schemes of the contract, in order per call, retried on a schedule, recorded per try.
//!
//! The library also offers what the API and the CLI need: listing deliveries, redelivery and
//! secret rotation ([`listing`], [`replay`], [`rotation`]).

pub mod circuit;
pub mod claim;
pub mod config;
pub mod delivery;
pub mod endpoints;
pub mod engine;
pub mod error;
pub mod listing;
pub mod prompts;
pub mod record;
pub mod replay;
pub mod rotation;
pub mod schedule;
pub mod signing;
pub mod url_policy;

pub use config::WorkerConfig;
pub use engine::Engine;
pub use error::WorkerError;
