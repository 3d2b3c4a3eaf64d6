//! Logging setup, the same for every binary: `RUST_LOG` filters (default `info`), and
//! `DIALER_LOG_FORMAT=json` writes one JSON object per line instead of text. Logs go to stderr.
//!
//! ```no_run
//! // first thing in `main`:
//! dialer_core::telemetry::init("callback-worker");
//! // a CLI that should stay quiet unless asked:
//! dialer_core::telemetry::init_with_default("dialerctl", "warn");
//! ```

use tracing_subscriber::EnvFilter;

/// The variable choosing the log format: `json`, or anything else (or unset) for text.
pub const FORMAT_VAR: &str = "DIALER_LOG_FORMAT";

/// Sets up logging for the process `service` with the default filter `info`.
pub fn init(service: &'static str) {
    init_with_default(service, "info");
}

/// Sets up logging with `default_filter` where `RUST_LOG` is unset or invalid. A second call
/// does nothing (tests may call it freely).
pub fn init_with_default(service: &'static str, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var(FORMAT_VAR).is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        tracing::debug!(service, json, "logging set up");
    }
}
