//! `dialerctl dnc ...`: the global do-not-call list, or an account's with `--account`.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use dialer_api::ops::dnc;
use dialer_core::domain::DncSource;
use dialer_core::phone;

use crate::Ctx;
use crate::output::Output;

#[derive(Args)]
pub struct DncScope {
    /// The account's list; without it, the global list.
    #[arg(long)]
    account: Option<String>,
    /// Country for numbers written without `+`.
    #[arg(long, default_value = "IN")]
    country: String,
}

#[derive(Subcommand)]
pub enum DncCmd {
    Add {
        numbers: Vec<String>,
        #[command(flatten)]
        scope: DncScope,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Remove {
        number: String,
        #[command(flatten)]
        scope: DncScope,
    },
    /// One number per line (`#` comments and blank lines skipped).
    Import {
        file: PathBuf,
        #[command(flatten)]
        scope: DncScope,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: DncCmd) -> anyhow::Result<Output> {
    match cmd {
        DncCmd::Add {
            numbers,
            scope,
            reason,
        } => {
            let id = account_id(ctx, &scope).await?;
            // All or nothing: check every number before adding any.
            let country = phone::parse_country(&scope.country)?;
            if let Some(bad) = numbers
                .iter()
                .find(|n| phone::E164::parse(n, country).is_err())
            {
                return Err(anyhow!("`{bad}` is not a phone number; nothing was added"));
            }
            let o = dnc::add_many(
                &ctx.pool,
                id,
                &scope.country,
                &numbers,
                &reason,
                DncSource::Operator,
            )
            .await?;
            let text = format!("{} added, {} already listed", o.added, o.already_listed);
            let json = json!({"added": o.added, "already_listed": o.already_listed});
            Output::success(json, text)
        }
        DncCmd::Import {
            file,
            scope,
            reason,
        } => {
            let id = account_id(ctx, &scope).await?;
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("read {}", file.display()))?;
            // Line numbers (from 1) of the lines that are not blank or comments.
            let (line_numbers, lines): (Vec<usize>, Vec<String>) = content
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty() && !l.trim().starts_with('#'))
                .map(|(i, l)| (i + 1, l.to_owned()))
                .unzip();
            let o = dnc::add_many(
                &ctx.pool,
                id,
                &scope.country,
                &lines,
                &reason,
                DncSource::Operator,
            )
            .await?;
            let bad: Vec<(usize, &str)> = o
                .invalid
                .iter()
                .map(|(i, text)| (line_numbers.get(*i).copied().unwrap_or(0), text.as_str()))
                .collect();
            let invalid: Vec<Value> = bad
                .iter()
                .map(|(line, text)| json!({"line": line, "text": text}))
                .collect();
            let mut text = format!(
                "{} added, {} already listed, {} invalid",
                o.added,
                o.already_listed,
                invalid.len()
            );
            for (line, bad) in bad.iter().take(10) {
                text.push_str(&format!("\nline {line}: `{bad}` is not a phone number"));
            }
            let json =
                json!({"added": o.added, "already_listed": o.already_listed, "invalid": invalid});
            Output::success(json, text)
        }
        DncCmd::Remove { number, scope } => {
            let id = account_id(ctx, &scope).await?;
            let removed = dnc::remove(&ctx.pool, id, &scope.country, &number).await?;
            if !removed {
                return Err(anyhow!("{} is not on that list", phone::mask(&number)));
            }
            Output::success(json!({"removed": true}), "removed".into())
        }
    }
}

/// The id of the scope's account; `None` for the global list.
async fn account_id(ctx: &Ctx, scope: &DncScope) -> anyhow::Result<Option<i64>> {
    let Some(code) = scope.account.as_deref() else {
        return Ok(None);
    };
    Ok(Some(ctx.account(code).await?.id))
}
