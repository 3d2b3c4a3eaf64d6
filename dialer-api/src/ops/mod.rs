//! The operations the API and dialerctl share: domain code over the database (and the broker's
//! hand-off), knowing nothing of HTTP. Each returns [`OpsError`]; the API maps it to its answer
//! in one place.

pub mod accounts;
pub mod api_keys;
pub mod audit_log;
pub mod batch_control;
pub mod batches;
pub mod call_flow;
pub mod call_listing;
pub mod call_search;
pub mod callback_endpoint;
pub mod callbacks;
pub mod calls;
pub mod dial_capacity;
pub mod dispatch;
pub mod dnc;
pub mod dry_run;
pub mod erasure;
pub mod error;
pub mod handoff;
pub mod operators;
pub mod paging;
pub mod prompts;
pub mod recordings;
pub mod servers;
pub mod test_mode;

pub use error::{OpsError, OpsResult};
