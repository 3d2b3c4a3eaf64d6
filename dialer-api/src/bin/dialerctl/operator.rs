//! `dialerctl operator ...`: the console's operators. `create` prints the new token once (it is
//! stored hashed and cannot be shown again); `revoke` ends the operator's sessions at once. Both
//! are written to the audit log the console shows, as done by `dialerctl`.

use clap::Subcommand;

use dialer_api::ops::audit_log::{self, Entry, Outcome};
use dialer_api::ops::operators;

use crate::Ctx;
use crate::output::{Col, Output, Table, or_dash};

#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Create an operator and print their console token (shown this once).
    Create { name: String },
    /// Revoke an operator: their token stops working and their sessions end.
    Revoke { name: String },
    /// Every operator, active ones first.
    List,
}

pub async fn run(ctx: &Ctx, cmd: OperatorCmd) -> anyhow::Result<Output> {
    match cmd {
        OperatorCmd::Create { name } => {
            let created = operators::create(&ctx.pool, &name).await?;
            audit(ctx, "create_operator", &name).await?;
            let text = format!(
                "operator {name} created; their console token (shown once, keep it safe):\n{}",
                created.token
            );
            Output::success(&created, text)
        }
        OperatorCmd::Revoke { name } => {
            let revoked = operators::revoke(&ctx.pool, &name).await?;
            audit(ctx, "revoke_operator", &name).await?;
            let text = format!("operator {name} revoked; their sessions ended");
            Output::success(&revoked, text)
        }
        OperatorCmd::List => {
            let all = operators::list(&ctx.pool).await?;
            const COLS: &[Col] = &[
                Col::Left(20),
                Col::Left(12),
                Col::Left(21),
                Col::Left(21),
                Col::Rest,
            ];
            let header = ["NAME", "TOKEN", "CREATED", "LAST SIGN-IN", "REVOKED"];
            let mut table = Table::new(COLS, &header);
            for o in &all {
                table.row(&[
                    &o.name,
                    &format!("{}...", o.token_prefix),
                    &o.created_at,
                    &or_dash(o.last_sign_in_at.as_deref()),
                    &or_dash(o.revoked_at.as_deref()),
                ]);
            }
            Output::success(serde_json::json!({ "operators": all }), table.into_text())
        }
    }
}

async fn audit(ctx: &Ctx, action: &str, name: &str) -> anyhow::Result<()> {
    let entry = Entry {
        operator: "dialerctl",
        action,
        target: name,
        outcome: Outcome::Ok,
        detail: "",
        client_address: None,
    };
    Ok(audit_log::record(&ctx.pool, &entry).await?)
}
