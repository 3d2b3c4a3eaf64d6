//! `dialerctl dispatch`: start dialing an account's queued calls, or with `--dry-run` say what
//! would dial now and why the rest would not, changing nothing.

use serde_json::json;

use dialer_api::ops::dispatch;
use dialer_api::ops::dry_run::{DryRun, Held};
use dialer_api::ops::handoff;

use crate::Ctx;
use crate::output::{Col, Output, Table, or_dash};

/// `dialerctl dispatch [--account A] [--batch N] [--dry-run]`.
pub async fn run(
    ctx: &Ctx,
    account: Option<&str>,
    batch: Option<i64>,
    dry: bool,
) -> anyhow::Result<Output> {
    let acc = match account {
        Some(code) => Some(ctx.account(code).await?),
        None => None,
    };
    if dry {
        let run = dispatch::dry_run(&ctx.pool, acc.as_ref().map(|a| a.id), batch).await?;
        let text = render(&run);
        return Output::success(run, text);
    }
    let Some(acc) = acc else {
        anyhow::bail!("--account is required (only --dry-run looks at every account)");
    };
    let broker = ctx.broker();
    let outcome =
        dispatch::dispatch(&ctx.pool, &broker, acc.id, batch, handoff::Handoff::Wait).await?;
    broker.close().await;
    let text = format!(
        "dispatched {} call(s) in batches {:?}",
        outcome.dispatched, outcome.batches
    );
    let json = json!({"dispatched": outcome.dispatched, "batches": outcome.batches});
    Output::success(json, text)
}

const HELD_COLS: &[Col] = &[
    Col::Left(2),
    Col::Left(24),
    Col::Right(8),
    Col::Left(21),
    Col::Rest,
];

fn held_table(held: &[Held]) -> String {
    let mut t = Table::new(HELD_COLS, &["", "REASON", "CALLS", "UNTIL", "DETAIL"]);
    for h in held {
        t.row(&[
            &"",
            &h.reason.as_str(),
            &h.count,
            &or_dash(h.until.as_ref()),
            &h.detail,
        ]);
    }
    t.into_text()
}

/// The dry run as an operator reads it: the totals, the reasons, then each batch.
fn render(run: &DryRun) -> String {
    let mut out = format!(
        "dry run at {} (nothing changed): {} undialed call(s) looked at; {} would dial in the \
         next second, {} held by nothing but capacity",
        run.evaluated_at, run.considered, run.would_dial, run.ready
    );
    if !run.held.is_empty() {
        out.push_str("\nnot dialing now, by reason:\n");
        out.push_str(&held_table(&run.held));
    }
    for b in &run.batches {
        out.push_str(&format!(
            "\n\nbatch {} of {}: would dial {}, ready {}",
            b.batch_id, b.accountcode, b.would_dial, b.ready
        ));
        if !b.held.is_empty() {
            out.push('\n');
            out.push_str(&held_table(&b.held));
        }
    }
    out
}
