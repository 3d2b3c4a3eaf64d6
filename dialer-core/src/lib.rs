//! Shared core of the dialer services: configuration ([`config::Env`]) and logging
//! ([`telemetry::init`]), the contract's domain vocabulary, the database (schema, models,
//! migrations, pool), the RabbitMQ topology and outboxes, and the callback data access the API and
//! the CLI share ([`callbacks`], [`url_policy`]); services meet only through these.

pub mod broker_connection;
pub mod ca_cert;
pub mod call_flow;
pub mod callbacks;
pub mod calling_hours;
pub mod calling_window;
pub mod client_text;
pub mod closing_sweep;
pub mod config;
mod country_timezones;
pub mod credentials;
pub mod db;
pub mod dial_outbox;
pub mod dial_rules;
pub mod domain;
pub mod event_body;
pub mod event_prompt;
pub mod failpoint;
pub mod gather;
pub mod lifecycle;
pub mod media_url;
pub mod metrics_http;
pub mod migrations;
pub mod models;
pub mod phone;
pub mod prepared;
pub mod schema;
pub mod service_error;
pub mod telemetry;
pub mod text_enum;
pub mod topology;
pub mod url_policy;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use config::Config;
pub use service_error::ServiceError;
