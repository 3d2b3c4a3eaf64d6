//! `dispatcher`: runs until SIGTERM or Ctrl-C, then stops gracefully.

use anyhow::Context;
use dispatcher::{Dispatcher, DispatcherConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dialer_core::telemetry::init("dispatcher");
    let config = DispatcherConfig::from_env().context("configuration")?;
    // Where `GET /metrics` is served; empty turns it off.
    dialer_core::metrics_http::start_from_env(
        "DIALER_DISPATCHER_METRICS_ADDR",
        "127.0.0.1:9102",
        &[],
    )
    .await
    .context("metrics listener")?;
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
