//! `dispatcher`: runs until SIGTERM or Ctrl-C, then stops gracefully.

use anyhow::Context;
use dispatcher::{Dispatcher, DispatcherConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dialer_core::telemetry::init("dispatcher");
    let config = DispatcherConfig::from_env().context("configuration")?;
    // DIALER_DISPATCHER_METRICS_ADDR: where `GET /metrics` is served; empty turns it off.
    let metrics_addr =
        std::env::var("DIALER_DISPATCHER_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9102".into());
    if !metrics_addr.is_empty()
        && let Some(handle) = dispatcher::metrics_http::install()
    {
        let addr = metrics_addr
            .parse()
            .with_context(|| format!("DIALER_DISPATCHER_METRICS_ADDR `{metrics_addr}`"))?;
        let bound = dispatcher::metrics_http::serve(addr, handle)
            .await
            .with_context(|| format!("metrics listener on {addr}"))?;
        tracing::info!(%bound, "metrics at /metrics");
    }
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
