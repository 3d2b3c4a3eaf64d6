//! `dialerctl server ...`: register, list, change and disable Asterisk servers.

use clap::{Args, Subcommand};
use serde_json::json;

use dialer_api::ops::servers::{self, ServerUpdate};
use dialer_core::models::{AsteriskServer, NewAsteriskServer};

use crate::Ctx;
use crate::output::{Col, Output, Table};

#[derive(Subcommand)]
pub enum ServerCmd {
    /// Register an Asterisk server (AMI).
    Add(ServerAdd),
    List,
    /// Change a server's settings.
    Update(ServerUpdateArgs),
    /// Stop sending new calls to a server.
    Disable {
        code: String,
    },
}

#[derive(Args)]
pub struct ServerUpdateArgs {
    code: String,
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    port: Option<i32>,
    #[arg(long)]
    username: Option<String>,
    #[arg(long, env = "DIALER_AMI_SECRET_NEW", hide_env_values = true)]
    secret: Option<String>,
    #[arg(long)]
    max_channels: Option<i32>,
    #[arg(long)]
    max_cps: Option<i32>,
    #[arg(long)]
    channel_template: Option<String>,
    #[arg(long)]
    enabled: Option<bool>,
}

#[derive(Args)]
pub struct ServerAdd {
    #[arg(long)]
    code: String,
    #[arg(long)]
    host: String,
    #[arg(long, default_value_t = 5038)]
    port: i32,
    #[arg(long)]
    username: String,
    /// AMI secret; better given through the environment than on the command line.
    #[arg(long, env = "DIALER_AMI_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long)]
    max_channels: i32,
    #[arg(long)]
    max_cps: i32,
    /// e.g. `PJSIP/{number}@trunk` or `Local/{number}@dialout`.
    #[arg(long)]
    channel_template: String,
    /// Register it disabled.
    #[arg(long)]
    disabled: bool,
    /// A PBX simulator (ami-sim): it takes test-mode accounts' calls, and only those. Never
    /// mark a real Asterisk so: test calls would reach real numbers.
    #[arg(long)]
    simulated: bool,
}

pub async fn run(ctx: &Ctx, cmd: ServerCmd) -> anyhow::Result<Output> {
    match cmd {
        ServerCmd::Add(s) => {
            let new = NewAsteriskServer {
                code: s.code,
                host: s.host,
                port: s.port,
                username: s.username,
                secret: s.secret,
                max_channels: s.max_channels,
                max_cps: s.max_cps,
                channel_template: s.channel_template,
                enabled: !s.disabled,
                simulated: s.simulated,
            };
            let server = servers::add(&ctx.pool, new).await?;
            let text = format!(
                "server {} added ({}:{})",
                server.code, server.host, server.port
            );
            one_server(server, text)
        }
        ServerCmd::Update(u) => {
            let change = ServerUpdate {
                host: u.host,
                port: u.port,
                username: u.username,
                secret: u.secret,
                max_channels: u.max_channels,
                max_cps: u.max_cps,
                channel_template: u.channel_template,
                enabled: u.enabled,
            };
            let server = update(ctx, &u.code, change).await?;
            let text = format!("server {} updated", server.code);
            one_server(server, text)
        }
        ServerCmd::Disable { code } => {
            let change = ServerUpdate {
                enabled: Some(false),
                ..Default::default()
            };
            let server = update(ctx, &code, change).await?;
            let text = format!("server {} disabled", server.code);
            one_server(server, text)
        }
        ServerCmd::List => {
            let list = servers::list(&ctx.pool).await?;
            let live = {
                let mut conn = ctx.pool.get().await?;
                servers::states(&mut conn).await?
            };
            const COLS: &[Col] = &[
                Col::Left(12),
                Col::Left(24),
                Col::Right(8),
                Col::Right(6),
                Col::Left(8),
                Col::Left(13),
                Col::Right(6),
                Col::Rest,
            ];
            let header = [
                "CODE", "ADDRESS", "CHANNELS", "CPS", "ENABLED", "STATE", "LIVE", "TEMPLATE",
            ];
            let mut table = Table::new(COLS, &header);
            let mut rows = Vec::new();
            for s in &list {
                let address = format!("{}:{}", s.host, s.port);
                let state = live.iter().find(|l| l.code == s.code);
                let state_text = state.map_or("-".to_owned(), |l| l.state.to_string());
                let live_calls = state
                    .and_then(|l| l.live_calls)
                    .map_or("-".to_owned(), |n| n.to_string());
                let template = match s.simulated {
                    true => format!("{} (simulated: test mode only)", s.channel_template),
                    false => s.channel_template.clone(),
                };
                table.row(&[
                    &s.code,
                    &address,
                    &s.max_channels,
                    &s.max_cps,
                    &s.enabled,
                    &state_text,
                    &live_calls,
                    &template,
                ]);
                let mut row = serde_json::to_value(s)?;
                if let (Some(obj), Some(l)) = (row.as_object_mut(), state) {
                    obj.insert("state".into(), json!(l.state));
                    obj.insert("holder".into(), json!(l.holder));
                    obj.insert("capacity_factor".into(), json!(l.capacity_factor));
                    obj.insert("live_calls".into(), json!(l.live_calls));
                }
                rows.push(row);
            }
            Output::success(json!({ "servers": rows }), table.into_text())
        }
    }
}

async fn update(ctx: &Ctx, code: &str, change: ServerUpdate) -> anyhow::Result<AsteriskServer> {
    Ok(servers::update(&ctx.pool, code, change).await?)
}

fn one_server(server: AsteriskServer, text: String) -> anyhow::Result<Output> {
    Output::success(json!({ "server": server }), text)
}
