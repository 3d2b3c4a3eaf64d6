//! dialerctl: the operators' command line. Every command takes `--json`; failures exit non-zero
//! with a one-line reason on stderr.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use dialer_api::accounts::{self, CreateAccount};
use dialer_api::broker::Broker;
use dialer_api::{batches, dispatch, servers};
use dialer_core::Config;
use dialer_core::db::{self, DbPool};
use dialer_core::migrations;
use dialer_core::models::NewAsteriskServer;
use dialer_core::topology::Topology;

#[derive(Parser)]
#[command(
    name = "dialerctl",
    version,
    about = "Operate the dialer: schema, accounts, servers, batches"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations.
    Migrate,
    /// Client accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Asterisk servers.
    #[command(subcommand)]
    Server(ServerCmd),
    /// Start dialing an account's queued calls (all its batches but paused ones, or one).
    Dispatch {
        #[arg(long)]
        account: String,
        #[arg(long)]
        batch: Option<i64>,
    },
    /// Batch status and control.
    #[command(subcommand)]
    Batch(BatchCmd),
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Create an account; prints its API key and callback secret once.
    Create {
        /// The accountcode, e.g. ACME.
        code: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Default country of submitted numbers (ISO code).
        #[arg(long, default_value = "IN")]
        country: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long)]
        callback_url: Option<String>,
        #[arg(long)]
        caller_id: Option<String>,
    },
    List,
    Show {
        code: String,
    },
}

#[derive(Subcommand)]
enum ServerCmd {
    /// Register an Asterisk server (AMI).
    Add(ServerAdd),
    List,
}

#[derive(Args)]
struct ServerAdd {
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
}

#[derive(Args)]
struct BatchRef {
    #[arg(long)]
    account: String,
    #[arg(long)]
    batch: i64,
}

#[derive(Subcommand)]
enum BatchCmd {
    Status(BatchRef),
    Pause(BatchRef),
    Resume(BatchRef),
    Cancel(BatchRef),
}

struct Ctx {
    config: Config,
    pool: DbPool,
}

async fn connect(config: Config) -> anyhow::Result<Ctx> {
    let pool = db::build_pool(&config, "dialerctl")?;
    let mut conn = pool
        .get()
        .await
        .map_err(|e| anyhow!("cannot connect to the database: {e}"))?;
    migrations::check_schema(&mut conn).await?;
    drop(conn);
    Ok(Ctx { config, pool })
}

fn broker(config: &Config) -> Broker {
    Broker::new(config.amqp_url.clone(), Topology::new(&config.queue_prefix))
}

/// The result of a command: JSON for `--json`, text otherwise.
struct Output {
    json: Value,
    text: String,
}

fn account_json(a: &dialer_core::models::Account) -> Value {
    serde_json::to_value(a.settings()).unwrap_or(Value::Null)
}

async fn run(cli: Cli) -> anyhow::Result<Output> {
    let config = Config::from_env().context("configuration")?;
    match cli.command {
        Command::Migrate => {
            let applied = migrations::run_pending(&config.database_url).await?;
            let text = if applied.is_empty() {
                "schema is up to date".to_owned()
            } else {
                format!(
                    "applied {} migration(s): {}",
                    applied.len(),
                    applied.join(", ")
                )
            };
            Ok(Output {
                json: json!({"status": "success", "applied": applied}),
                text,
            })
        }
        Command::Account(cmd) => {
            let ctx = connect(config).await?;
            match cmd {
                AccountCmd::Create {
                    code,
                    name,
                    country,
                    timezone,
                    callback_url,
                    caller_id,
                } => {
                    let created = accounts::create(
                        &ctx.pool,
                        CreateAccount {
                            accountcode: code,
                            name,
                            default_country: country,
                            timezone,
                            callback_url,
                            caller_id,
                        },
                        ctx.config.allow_http_loopback_callbacks,
                    )
                    .await
                    .map_err(|e| anyhow!(e.message))?;
                    let text = format!(
                        "account {} created\napi key:         {}\ncallback secret: {}\n(shown once: store them now)",
                        created.account.accountcode, created.api_key, created.callback_secret
                    );
                    Ok(Output {
                        json: json!({
                            "status": "success",
                            "account": account_json(&created.account),
                            "api_key": created.api_key,
                            "callback_secret": created.callback_secret,
                        }),
                        text,
                    })
                }
                AccountCmd::List => {
                    let list = accounts::list(&ctx.pool)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let mut text = format!(
                        "{:<20} {:<10} {:<8} {}",
                        "ACCOUNTCODE", "STATUS", "COUNTRY", "CALLBACK URL"
                    );
                    for a in &list {
                        text.push_str(&format!(
                            "\n{:<20} {:<10} {:<8} {}",
                            a.accountcode,
                            a.status,
                            a.default_country,
                            a.callback_url.as_deref().unwrap_or("-")
                        ));
                    }
                    let json = json!({"status": "success", "accounts": list.iter().map(account_json).collect::<Vec<_>>()});
                    Ok(Output { json, text })
                }
                AccountCmd::Show { code } => {
                    let a = accounts::find(&ctx.pool, &code)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let settings = account_json(&a);
                    let text = serde_json::to_string_pretty(&settings)?;
                    Ok(Output {
                        json: json!({"status": "success", "account": settings}),
                        text,
                    })
                }
            }
        }
        Command::Server(cmd) => {
            let ctx = connect(config).await?;
            match cmd {
                ServerCmd::Add(s) => {
                    let server = servers::add(
                        &ctx.pool,
                        NewAsteriskServer {
                            code: s.code,
                            host: s.host,
                            port: s.port,
                            username: s.username,
                            secret: s.secret,
                            max_channels: s.max_channels,
                            max_cps: s.max_cps,
                            channel_template: s.channel_template,
                            enabled: !s.disabled,
                        },
                    )
                    .await
                    .map_err(|e| anyhow!(e.message))?;
                    let text = format!(
                        "server {} added ({}:{})",
                        server.code, server.host, server.port
                    );
                    Ok(Output {
                        json: json!({"status": "success", "server": server}),
                        text,
                    })
                }
                ServerCmd::List => {
                    let list = servers::list(&ctx.pool)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let mut text = format!(
                        "{:<12} {:<24} {:>8} {:>6} {:<8} {}",
                        "CODE", "ADDRESS", "CHANNELS", "CPS", "ENABLED", "TEMPLATE"
                    );
                    for s in &list {
                        text.push_str(&format!(
                            "\n{:<12} {:<24} {:>8} {:>6} {:<8} {}",
                            s.code,
                            format!("{}:{}", s.host, s.port),
                            s.max_channels,
                            s.max_cps,
                            s.enabled,
                            s.channel_template
                        ));
                    }
                    Ok(Output {
                        json: json!({"status": "success", "servers": list}),
                        text,
                    })
                }
            }
        }
        Command::Dispatch { account, batch } => {
            let ctx = connect(config).await?;
            let acc = accounts::find(&ctx.pool, &account)
                .await
                .map_err(|e| anyhow!(e.message))?;
            let broker = broker(&ctx.config);
            let outcome = dispatch::dispatch(&ctx.pool, &broker, acc.id, batch)
                .await
                .map_err(|e| anyhow!(e.message))?;
            broker.close().await;
            let text = format!(
                "dispatched {} call(s) in batches {:?}",
                outcome.dispatched, outcome.batches
            );
            Ok(Output {
                json: json!({"status": "success", "dispatched": outcome.dispatched, "batches": outcome.batches}),
                text,
            })
        }
        Command::Batch(cmd) => {
            let ctx = connect(config).await?;
            let (action, r) = match &cmd {
                BatchCmd::Status(r) => ("status", r),
                BatchCmd::Pause(r) => ("pause", r),
                BatchCmd::Resume(r) => ("resume", r),
                BatchCmd::Cancel(r) => ("cancel", r),
            };
            let acc = accounts::find(&ctx.pool, &r.account)
                .await
                .map_err(|e| anyhow!(e.message))?;
            let broker = broker(&ctx.config);
            let summary = match action {
                "pause" => batches::pause(&ctx.pool, acc.id, r.batch).await,
                "resume" => batches::resume(&ctx.pool, &broker, acc.id, r.batch).await,
                "cancel" => {
                    batches::cancel(&ctx.pool, &broker, acc.id, &acc.accountcode, r.batch).await
                }
                _ => {
                    async {
                        let mut conn = ctx.pool.get().await?;
                        let b = batches::find_batch(&mut conn, acc.id, r.batch).await?;
                        batches::summary(&mut conn, &b).await
                    }
                    .await
                }
            }
            .map_err(|e| anyhow!(e.message))?;
            broker.close().await;
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
            let mut json = serde_json::to_value(&summary)?;
            if let Value::Object(map) = &mut json {
                map.insert("status".into(), "success".into());
            }
            Ok(Output { json, text })
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    dialer_api::telemetry::init("warn");
    let as_json = cli.json;
    match run(cli).await {
        Ok(out) => {
            if as_json {
                println!("{}", out.json);
            } else {
                println!("{}", out.text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line, whatever the cause chain.
            let reason = format!("{e:#}").replace('\n', " ");
            if as_json {
                println!("{}", json!({"status": "error", "message": reason}));
            }
            eprintln!("dialerctl: {reason}");
            ExitCode::FAILURE
        }
    }
}
