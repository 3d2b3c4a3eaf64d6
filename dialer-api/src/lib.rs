//! The client REST API of the contract (actix-web) and the operations dialerctl shares with it.

pub mod account_slots;
pub mod api_error;
pub mod api_schema;
pub mod auth;
pub mod auth_failures;
pub mod body_timeout;
pub mod broker;
pub mod client_address;
pub mod csv_download;
pub mod data_schema;
pub mod error_json;
pub mod ingest;
pub mod json_body;
pub mod key_use;
pub mod metrics;
pub mod ops;
pub mod outbox_sweeper;
pub mod phone_param;
pub mod prompt_audio;
pub mod rate_limit;
pub mod recording_store;
pub mod request_log;
mod routes;
pub mod speech;
pub use routes::openapi::document as openapi_document;
pub mod startup;
pub mod state;
