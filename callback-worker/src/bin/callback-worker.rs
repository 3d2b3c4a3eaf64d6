//! `callback-worker`: delivers call events to clients' callback URLs until SIGTERM or Ctrl-C;
//! then it stops taking work and lets requests in flight finish up to a deadline.

use anyhow::Context;
use callback_worker::{Engine, WorkerConfig, metrics, prompts};
use dialer_core::topology::{self, Topology};
use dialer_core::{db, migrations};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dialer_core::telemetry::init("callback-worker");
    let config = WorkerConfig::from_env().context("configuration")?;
    tracing::info!(core = ?config.core, "starting callback-worker");
    // Where `GET /metrics` is served; empty turns it off.
    dialer_core::metrics_http::start_from_env(
        "DIALER_CALLBACK_METRICS_ADDR",
        "127.0.0.1:9103",
        &[("dialer_callback_attempt_seconds", metrics::ATTEMPT_BUCKETS)],
    )
    .await
    .context("metrics listener")?;

    let pool = db::build_pool(&config.core, "callback-worker").context("database pool")?;
    {
        let mut conn = pool.get().await.context("connecting to PostgreSQL")?;
        migrations::check_schema(&mut conn)
            .await
            .context("checking the database schema")?;
    }
    tracing::info!("connecting to RabbitMQ (waits until it answers)");
    let amqp = topology::connect(&config.core.amqp_url, "callback-worker")
        .await
        .context("connecting to RabbitMQ")?;
    let topology = Topology::new(&config.core.queue_prefix);

    let (stop_tx, stop_rx) = watch::channel(false);
    let backlog_task = tokio::spawn(metrics::backlog_loop(pool.clone(), stop_rx.clone()));
    let engine = Engine::new(config.clone(), pool);
    let shared = engine.shared();
    let engine_task = tokio::spawn(engine.run(stop_rx.clone()));
    let prompt_task = tokio::spawn({
        let stop = stop_rx.clone();
        let prefetch = config.prefetch;
        async move {
            if let Err(e) = prompts::consume(&amqp, &topology, prefetch, shared, stop).await {
                // The database poll still finds every event; prompts only make it sooner.
                tracing::error!(error = %e, "RabbitMQ prompts stopped; polling the database only");
            }
            let _ = amqp.close(200, "shutdown".into()).await;
        }
    });

    shutdown_signal()
        .await
        .context("installing signal handlers")?;
    tracing::info!("shutting down: no new work, finishing requests in flight");
    let _ = stop_tx.send(true);
    engine_task.await.context("engine task")?;
    let _ = prompt_task.await;
    let _ = backlog_task.await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}
