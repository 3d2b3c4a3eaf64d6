//! `dialerctl callbacks ...`: an account's callback events, one event's deliveries, replays.

use anyhow::anyhow;
use clap::{Args, Subcommand};

use dialer_api::ops::{callbacks, paging};
use dialer_core::callbacks::listing::EventFilter;
use dialer_core::callbacks::replay::ReplaySelection;

use crate::Ctx;
use crate::output::{Col, Output, Table, or_dash};

#[derive(Subcommand)]
pub enum CallbacksCmd {
    /// An account's callback events with their delivery state, newest first.
    List {
        #[arg(long)]
        account: String,
        #[arg(long, value_parser = ["pending", "delivered", "failed", "skipped"])]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// The `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One event with its body and every delivery try.
    Show {
        #[arg(long)]
        account: String,
        event_id: String,
    },
    /// Send events again: the given ones (failed, skipped or delivered), or every failed one.
    Replay(ReplayArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["event", "failed"])))]
pub struct ReplayArgs {
    #[arg(long)]
    account: String,
    /// Event ids (repeat the flag or give several).
    #[arg(long, value_name = "EVENT_ID", num_args = 1..)]
    event: Vec<String>,
    /// Every failed event of the account.
    #[arg(long)]
    failed: bool,
}

pub async fn run(ctx: &Ctx, cmd: CallbacksCmd) -> anyhow::Result<Output> {
    match cmd {
        CallbacksCmd::List {
            account,
            status,
            limit,
            cursor,
        } => {
            let acc = ctx.account(&account).await?;
            let filter = EventFilter {
                status: status.as_deref().map(callbacks::parse_status).transpose()?,
                limit: Some(
                    paging::parse_limit(Some(&limit.to_string()))
                        .map_err(|e| anyhow!("--limit: {e}"))?,
                ),
                cursor: dialer_api::ops::paging::parse_cursor(cursor.as_deref())
                    .map_err(|e| anyhow!("--cursor: {e}"))?,
            };
            let page = callbacks::list(&ctx.pool, acc.id, &filter).await?;
            const COLS: &[Col] = &[
                Col::Left(36),
                Col::Left(15),
                Col::Right(8),
                Col::Right(4),
                Col::Left(9),
                Col::Right(5),
                Col::Left(20),
                Col::Rest,
            ];
            let header = [
                "EVENT ID",
                "TYPE",
                "BATCH",
                "SEQ",
                "STATUS",
                "TRIES",
                "NEXT TRY",
                "LAST ERROR",
            ];
            let mut table = Table::new(COLS, &header);
            for e in &page.events {
                table.row(&[
                    &e.event_id,
                    &e.event_type,
                    &e.batch_id,
                    &or_dash(e.sequence),
                    &e.delivery_status,
                    &e.delivery_attempts,
                    &e.next_attempt_at.as_deref().unwrap_or("-"),
                    &e.last_error.as_deref().unwrap_or("-"),
                ]);
            }
            let mut text = table.into_text();
            if let Some(c) = &page.next_cursor {
                text.push_str(&format!("\nmore: --cursor {c}"));
            }
            Output::success(&page, text)
        }
        CallbacksCmd::Show { account, event_id } => {
            let acc = ctx.account(&account).await?;
            let detail = callbacks::show(&ctx.pool, acc.id, &event_id).await?;
            let e = &detail.event;
            let tries = match e.delivery_attempts {
                1 => "1 try".to_owned(),
                n => format!("{n} tries"),
            };
            let mut text = format!(
                "{} {} (batch {}, sequence {}): {} after {tries}",
                e.event_id,
                e.event_type,
                e.batch_id,
                or_dash(e.sequence),
                e.delivery_status,
            );
            for a in &detail.deliveries {
                let outcome = match (a.status_code, &a.error) {
                    (Some(code), _) => format!("HTTP {code}"),
                    (None, Some(err)) => err.clone(),
                    (None, None) => "-".into(),
                };
                text.push_str(&format!(
                    "\n  #{} {} {} {} ms",
                    a.attempt,
                    a.attempted_at,
                    outcome,
                    or_dash(a.latency_ms)
                ));
            }
            Output::success(&detail, text)
        }
        CallbacksCmd::Replay(r) => {
            let acc = ctx.account(&r.account).await?;
            let selection = if r.failed {
                ReplaySelection::AllFailed
            } else {
                ReplaySelection::EventIds(
                    callbacks::check_ids(r.event).map_err(|e| anyhow!("--event: {e}"))?,
                )
            };
            let o = callbacks::redeliver(&ctx.pool, acc.id, &selection).await?;
            let mut text = format!("{} event(s) will be sent again", o.redelivered);
            if !o.already_pending.is_empty() {
                text.push_str(&format!(
                    "\nalready pending (left alone): {}",
                    o.already_pending.join(" ")
                ));
            }
            if !o.not_found.is_empty() {
                text.push_str(&format!(
                    "\nnot found for {}: {}",
                    acc.accountcode,
                    o.not_found.join(" ")
                ));
            }
            Output::success(&o, text)
        }
    }
}
