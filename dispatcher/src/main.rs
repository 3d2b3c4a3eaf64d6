//! `dispatcher`: runs until SIGTERM or Ctrl-C, then stops gracefully.

use anyhow::Context;
use dispatcher::{Dispatcher, DispatcherConfig};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = DispatcherConfig::from_env().context("configuration")?;
    let dispatcher = Dispatcher::start(config).await.context("starting")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    dispatcher.shutdown().await;
    Ok(())
}
