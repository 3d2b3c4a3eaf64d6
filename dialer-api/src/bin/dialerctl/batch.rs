//! `dialerctl batch ...`: follow and control a batch (status, watch, pause, resume, cancel).

use std::time::Duration;

use clap::{Args, Subcommand};

use dialer_api::ops::batch_control::{self, Control};
use dialer_api::ops::batches::{self, BatchSummary};

use crate::Ctx;
use crate::output::{self, Output};

#[derive(Args)]
pub struct BatchRef {
    #[arg(long)]
    account: String,
    #[arg(long)]
    batch: i64,
}

#[derive(Subcommand)]
pub enum BatchCmd {
    /// Counts and totals; `--watch` follows them live until no call is pending.
    Status {
        #[command(flatten)]
        batch: BatchRef,
        #[arg(long)]
        watch: bool,
    },
    Pause(BatchRef),
    Resume(BatchRef),
    Cancel(BatchRef),
}

/// Pauses, resumes or cancels the batch with a broker of its own, closed whatever the outcome.
async fn control(ctx: &Ctx, r: &BatchRef, control: Control) -> anyhow::Result<BatchSummary> {
    let acc = ctx.account(&r.account).await?;
    let broker = ctx.broker();
    let summary = batch_control::control(&ctx.pool, &broker, &acc, r.batch, control).await;
    broker.close().await;
    Ok(summary?)
}

pub async fn run(ctx: &Ctx, cmd: BatchCmd, as_json: bool) -> anyhow::Result<Output> {
    let summary = match cmd {
        BatchCmd::Status { batch: r, watch } => {
            let acc = ctx.account(&r.account).await?;
            if watch {
                return follow(ctx, acc.id, r.batch, as_json).await;
            }
            summary(ctx, acc.id, r.batch).await?
        }
        BatchCmd::Pause(r) => control(ctx, &r, Control::Pause).await?,
        BatchCmd::Resume(r) => control(ctx, &r, Control::Resume).await?,
        BatchCmd::Cancel(r) => control(ctx, &r, Control::Cancel).await?,
    };
    let t = &summary.totals;
    let mut text = format!(
        "batch {} {}: {} calls, {} completed, {} failed, {} pending",
        summary.batch_id,
        summary.batch_status,
        t.total_calls,
        t.completed_calls,
        t.failed_calls,
        t.pending_calls
    );
    if let Some(w) = &summary.waiting_reason {
        text.push_str(&format!("\nwaiting: {w}"));
    }
    let nonzero: Vec<String> = summary
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    if !nonzero.is_empty() {
        text.push_str(&format!("\n{}", nonzero.join(" ")));
    }
    Output::success(&summary, text)
}

async fn summary(ctx: &Ctx, account_id: i64, batch_id: i64) -> anyhow::Result<BatchSummary> {
    let mut conn = ctx.pool.get().await?;
    let b = batches::find_batch(&mut conn, account_id, batch_id).await?;
    Ok(batches::summary(&mut conn, &b).await?)
}

/// Follows a batch until nothing is pending: a progress bar on a terminal, or one JSON line
/// per second with `--json`.
async fn follow(
    ctx: &Ctx,
    account_id: i64,
    batch_id: i64,
    as_json: bool,
) -> anyhow::Result<Output> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} done  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let s = summary(ctx, account_id, batch_id).await?;
        let t = &s.totals;
        let done = t.pending_calls == 0;
        if as_json {
            println!("{}", output::tagged(&s)?);
        } else {
            bar.set_length(t.total_calls.max(0) as u64);
            bar.set_position((t.completed_calls + t.failed_calls).max(0) as u64);
            bar.set_message(format!(
                "{}: {} completed, {} failed, {} pending{}",
                s.batch_status,
                t.completed_calls,
                t.failed_calls,
                t.pending_calls,
                s.waiting_reason
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
        }
        if done {
            bar.finish();
            // With --json every state was already printed as it came.
            let text = if as_json {
                String::new()
            } else {
                format!("batch {} {}: nothing pending", s.batch_id, s.batch_status)
            };
            return Ok(Output::text(text));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.abandon();
                return Ok(Output::text(String::new()));
            }
        }
    }
}
