//! `dialerctl migrate`: applies pending database migrations (no schema check first: this is
//! how an unmigrated database becomes usable).

use serde_json::json;

use dialer_core::Config;
use dialer_core::migrations;

use crate::output::Output;

pub async fn run(config: &Config) -> anyhow::Result<Output> {
    let applied = migrations::run_pending(&config.database_url).await?;
    let text = if applied.is_empty() {
        "schema is up to date".to_owned()
    } else {
        format!(
            "applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        )
    };
    Output::success(json!({ "applied": applied }), text)
}
