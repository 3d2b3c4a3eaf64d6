//! The client API server.

use anyhow::Context;
use dialer_api::startup::Application;
use dialer_core::Config;

// Multi-threaded tokio, not actix's current-thread runtime: the migration harness and
// blocking sections need it (see STACK.md); actix's HttpServer runs fine inside it.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dialer_core::telemetry::init("dialer-api");
    let config = Config::from_env().context("configuration")?;
    tracing::info!(?config, "starting dialer-api");
    let app = Application::build(config)
        .await
        .context("dialer-api cannot start")?;
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped().await.context("server")?;
    Ok(())
}
