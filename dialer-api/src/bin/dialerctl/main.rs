//! dialerctl: the operators' command line. Every command takes `--json`; failures exit non-zero
//! with a one-line reason on stderr. One module per command group; `demo` and `bench` run the
//! developer kit's binary.

mod account;
mod batch;
mod callbacks;
mod devkit;
mod dispatch;
mod dnc;
mod migrate;
mod operator;
mod output;
mod server;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use serde_json::json;

use dialer_api::broker::Broker;
use dialer_api::ops::accounts;
use dialer_core::Config;
use dialer_core::db::{self, DbPool};
use dialer_core::migrations;
use dialer_core::models::Account;
use dialer_core::topology::Topology;

#[derive(Parser)]
#[command(
    name = "dialerctl",
    version,
    about = "Operate the dialer: schema, accounts, servers, batches, callbacks"
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
    /// Run the whole platform on this machine (API, dispatcher, callback worker, two simulated
    /// Asterisk servers, a callback receiver that verifies signatures) and dial a batch to its
    /// end with live progress. Uses its own database and queue prefix; Ctrl-C stops it all.
    #[command(disable_help_flag = true)]
    Demo(devkit::Forwarded),
    /// Benchmark the whole platform on this machine (simulated servers answering at once, every
    /// limit off): call lifecycles per second, ingestion beside COPY, callback deliveries beside
    /// plain POSTs, hang-up to callback latency. Prints a table.
    #[command(disable_help_flag = true)]
    Bench(devkit::Forwarded),
    /// Apply pending database migrations.
    Migrate,
    /// Client accounts.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Asterisk servers.
    #[command(subcommand)]
    Server(server::ServerCmd),
    /// Start dialing an account's queued calls (all its batches but paused ones, or one);
    /// `--dry-run` says what would dial now and why the rest would not (every account unless
    /// `--account`), changing nothing.
    Dispatch {
        #[arg(long)]
        account: Option<String>,
        #[arg(long, requires = "account")]
        batch: Option<i64>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Batch status and control.
    #[command(subcommand)]
    Batch(batch::BatchCmd),
    /// Do-not-call lists: global, or an account's with `--account`.
    #[command(subcommand)]
    Dnc(dnc::DncCmd),
    /// Callback deliveries: list, show, replay.
    #[command(subcommand)]
    Callbacks(callbacks::CallbacksCmd),
    /// Operators of the web console: create (prints their token), revoke, list.
    #[command(subcommand)]
    Operator(operator::OperatorCmd),
}

/// What the commands working on the database share.
pub struct Ctx {
    pub config: Config,
    pub pool: DbPool,
}

impl Ctx {
    /// Connects with the environment's configuration; refuses an unmigrated database.
    async fn connect() -> anyhow::Result<Ctx> {
        let config = configuration()?;
        let pool = db::build_pool(&config, "dialerctl")?;
        let mut conn = pool
            .get()
            .await
            .map_err(|e| anyhow!("cannot connect to the database: {e}"))?;
        migrations::check_schema(&mut conn).await?;
        drop(conn);
        Ok(Ctx { config, pool })
    }

    /// The broker, connected on first use.
    pub fn broker(&self) -> Arc<Broker> {
        Arc::new(Broker::new(
            self.config.amqp_url.clone(),
            Topology::new(&self.config.queue_prefix),
        ))
    }

    pub async fn account(&self, code: &str) -> anyhow::Result<Account> {
        Ok(accounts::find(&self.pool, code).await?)
    }
}

fn configuration() -> anyhow::Result<Config> {
    Config::from_env().context("configuration")
}

async fn run(command: Command, as_json: bool) -> anyhow::Result<ExitCode> {
    let output = match command {
        Command::Demo(args) => return devkit::run("demo", args, as_json),
        Command::Bench(args) => return devkit::run("bench", args, as_json),
        Command::Migrate => migrate::run(&configuration()?).await?,
        Command::Account(cmd) => account::run(&Ctx::connect().await?, cmd).await?,
        Command::Server(cmd) => server::run(&Ctx::connect().await?, cmd).await?,
        Command::Dispatch {
            account,
            batch,
            dry_run,
        } => dispatch::run(&Ctx::connect().await?, account.as_deref(), batch, dry_run).await?,
        Command::Batch(cmd) => batch::run(&Ctx::connect().await?, cmd, as_json).await?,
        Command::Dnc(cmd) => dnc::run(&Ctx::connect().await?, cmd).await?,
        Command::Callbacks(cmd) => callbacks::run(&Ctx::connect().await?, cmd).await?,
        Command::Operator(cmd) => operator::run(&Ctx::connect().await?, cmd).await?,
    };
    output.print(as_json);
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    dialer_core::telemetry::init_with_default("dialerctl", "warn");
    let as_json = cli.json;
    match run(cli.command, as_json).await {
        Ok(code) => code,
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
