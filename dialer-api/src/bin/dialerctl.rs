//! dialerctl: the operators' command line. Every command takes `--json`; failures exit non-zero
//! with a one-line reason on stderr.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use dialer_api::accounts::{self, CreateAccount};
use dialer_api::broker::Broker;
use dialer_api::local::{bench, demo};
use dialer_api::{batches, callbacks, dispatch, servers};
use dialer_core::Config;
use dialer_core::callbacks::listing::EventFilter;
use dialer_core::callbacks::replay::ReplaySelection;
use dialer_core::db::{self, DbPool};
use dialer_core::event_body::rfc3339;
use dialer_core::migrations;
use dialer_core::models::NewAsteriskServer;
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
    Demo(DemoArgs),
    /// Benchmark the whole platform on this machine (simulated servers answering at once, every
    /// limit off): call lifecycles per second, ingestion beside COPY, callback deliveries beside
    /// plain POSTs, hang-up to callback latency. Prints a table.
    Bench(BenchArgs),
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
    /// Do-not-call lists: global, or an account's with `--account`.
    #[command(subcommand)]
    Dnc(DncCmd),
    /// Callback deliveries: list, show, replay.
    #[command(subcommand)]
    Callbacks(CallbacksCmd),
}

#[derive(Args)]
struct DemoArgs {
    /// The batch to submit [default: examples/batch.json]
    #[arg(long)]
    batch: Option<std::path::PathBuf>,
    /// ami-sim configuration of both servers [default: examples/ami-sim/demo.toml]
    #[arg(long)]
    sim_config: Option<std::path::PathBuf>,
    /// The demo's database, dropped and recreated beside DATABASE_URL's.
    #[arg(long, default_value = "dialer_demo")]
    database: String,
    #[arg(long, default_value = "dialer_demo")]
    queue_prefix: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Args)]
struct BenchArgs {
    /// Calls to dial end to end.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Submission requests the calls are split into (50,000 rows each at most).
    #[arg(long, default_value_t = 4)]
    requests: usize,
    #[arg(long, default_value = "dialer_bench")]
    database: String,
    #[arg(long, default_value = "dialer_bench")]
    queue_prefix: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Subcommand)]
enum CallbacksCmd {
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
struct ReplayArgs {
    #[arg(long)]
    account: String,
    /// Event ids (repeat the flag or give several).
    #[arg(long, value_name = "EVENT_ID", num_args = 1..)]
    event: Vec<String>,
    /// Every failed event of the account.
    #[arg(long)]
    failed: bool,
}

#[derive(Args)]
struct DncScope {
    /// The account's list; without it, the global list.
    #[arg(long)]
    account: Option<String>,
    /// Country for numbers written without `+`.
    #[arg(long, default_value = "IN")]
    country: String,
}

#[derive(Subcommand)]
enum DncCmd {
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
        file: std::path::PathBuf,
        #[command(flatten)]
        scope: DncScope,
        #[arg(long, default_value = "")]
        reason: String,
    },
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
    /// Change settings, limits and quotas.
    Update(Box<AccountUpdateArgs>),
    /// Add a new API key (printed once); `--revoke-previous` stops the older keys now.
    RotateKey {
        code: String,
        #[arg(long)]
        revoke_previous: bool,
    },
    /// A new callback secret, printed once; the old one keeps signing beside it for the grace
    /// period (and alone in X-Signature until it ends), so the client can switch.
    RotateSecret {
        #[arg(long)]
        account: String,
        /// Hours the old secret keeps signing (0: it stops at once; at most 720).
        #[arg(long, default_value_t = 24)]
        grace_hours: u32,
    },
    /// Refuse the account's requests (403) until `activate`.
    Suspend {
        code: String,
    },
    Activate {
        code: String,
    },
}

#[derive(Args)]
struct AccountUpdateArgs {
    code: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    country: Option<String>,
    #[arg(long)]
    timezone: Option<String>,
    /// JSON such as {"start":"09:00","end":"21:00","days":["mon","tue"]}; `none` clears it.
    #[arg(long)]
    calling_hours: Option<String>,
    /// `none` clears it.
    #[arg(long)]
    caller_id: Option<String>,
    #[arg(long)]
    dial_context: Option<String>,
    #[arg(long)]
    dial_exten: Option<String>,
    #[arg(long)]
    ring_timeout: Option<i32>,
    #[arg(long)]
    max_attempts: Option<i32>,
    #[arg(long)]
    retry_delay: Option<i32>,
    /// Comma-separated dispositions, e.g. busy,no_answer.
    #[arg(long)]
    retry_on: Option<String>,
    #[arg(long)]
    max_call_seconds: Option<i32>,
    /// Comma-separated ISO codes; empty string: every country.
    #[arg(long)]
    allowed_countries: Option<String>,
    /// Comma-separated E.164 prefixes such as +9198; empty string: none.
    #[arg(long)]
    allowed_prefixes: Option<String>,
    #[arg(long)]
    redial_window_hours: Option<i32>,
    #[arg(long)]
    max_rows_per_request: Option<i32>,
    #[arg(long)]
    max_queued_calls: Option<i64>,
    #[arg(long)]
    max_calls_per_day: Option<i64>,
    #[arg(long)]
    calls_per_second: Option<i32>,
    #[arg(long)]
    max_concurrent_calls: Option<i32>,
    #[arg(long)]
    api_requests_per_second: Option<i32>,
    /// `none` clears it.
    #[arg(long)]
    callback_url: Option<String>,
    #[arg(long)]
    batch_events: Option<bool>,
}

#[derive(Subcommand)]
enum ServerCmd {
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
struct ServerUpdateArgs {
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

fn broker(config: &Config) -> std::sync::Arc<Broker> {
    std::sync::Arc::new(Broker::new(
        config.amqp_url.clone(),
        Topology::new(&config.queue_prefix),
    ))
}

/// The result of a command: JSON for `--json`, text otherwise.
struct Output {
    json: Value,
    text: String,
}

fn list_arg(v: Option<String>) -> Option<Vec<String>> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// `none` (or empty) clears an optional setting.
fn clearable(v: Option<String>) -> Option<Option<String>> {
    v.map(|s| {
        if s.is_empty() || s == "none" {
            None
        } else {
            Some(s)
        }
    })
}

async fn account_id(ctx: &Ctx, code: Option<&str>) -> anyhow::Result<Option<i64>> {
    match code {
        None => Ok(None),
        Some(c) => Ok(Some(
            accounts::find(&ctx.pool, c)
                .await
                .map_err(|e| anyhow!(e.message))?
                .id,
        )),
    }
}

fn account_json(a: &dialer_core::models::Account) -> Value {
    serde_json::to_value(a.settings()).unwrap_or(Value::Null)
}

async fn run(cli: Cli) -> anyhow::Result<Output> {
    let config = Config::from_env().context("configuration")?;
    match cli.command {
        Command::Demo(args) => {
            let sim_config = args
                .sim_config
                .unwrap_or_else(|| demo::example_file("examples/ami-sim/demo.toml"));
            demo::run(
                &config,
                demo::DemoOptions {
                    batch_file: args
                        .batch
                        .unwrap_or_else(|| demo::example_file("examples/batch.json")),
                    sim_config: sim_config.exists().then_some(sim_config),
                    database: args.database,
                    queue_prefix: args.queue_prefix,
                    timeout: std::time::Duration::from_secs(args.timeout),
                },
            )
            .await?;
            Ok(Output {
                json: Value::Null,
                text: String::new(),
            })
        }
        Command::Bench(args) => {
            bench::run(
                &config,
                bench::BenchOptions {
                    calls: args.calls,
                    requests: args.requests,
                    database: args.database,
                    queue_prefix: args.queue_prefix,
                    timeout: std::time::Duration::from_secs(args.timeout),
                },
            )
            .await?;
            Ok(Output {
                json: Value::Null,
                text: String::new(),
            })
        }
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
            let cmd_kind = match &cmd {
                AccountCmd::Suspend { .. } => "suspend",
                _ => "other",
            };
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
                AccountCmd::Update(u) => {
                    let calling_hours = match u.calling_hours.as_deref() {
                        None => None,
                        Some("" | "none") => Some(None),
                        Some(text) => Some(Some(
                            serde_json::from_str::<Value>(text)
                                .context("--calling-hours is not JSON")?,
                        )),
                    };
                    let change = accounts::AccountUpdate {
                        name: u.name,
                        default_country: u.country,
                        timezone: u.timezone,
                        calling_hours,
                        caller_id: clearable(u.caller_id),
                        dial_context: u.dial_context,
                        dial_exten: u.dial_exten,
                        ring_timeout_seconds: u.ring_timeout,
                        max_attempts: u.max_attempts,
                        retry_delay_seconds: u.retry_delay,
                        retry_on: list_arg(u.retry_on),
                        max_call_seconds: u.max_call_seconds,
                        allowed_countries: list_arg(u.allowed_countries),
                        allowed_prefixes: list_arg(u.allowed_prefixes),
                        redial_window_hours: u.redial_window_hours,
                        max_rows_per_request: u.max_rows_per_request,
                        max_queued_calls: u.max_queued_calls,
                        max_calls_per_day: u.max_calls_per_day,
                        calls_per_second: u.calls_per_second,
                        max_concurrent_calls: u.max_concurrent_calls,
                        api_requests_per_second: u.api_requests_per_second,
                        callback_url: clearable(u.callback_url),
                        callback_batch_events: u.batch_events,
                    };
                    let a = accounts::update(
                        &ctx.pool,
                        &u.code,
                        change,
                        ctx.config.allow_http_loopback_callbacks,
                    )
                    .await
                    .map_err(|e| anyhow!(e.message))?;
                    let settings = account_json(&a);
                    let text = format!("account {} updated", a.accountcode);
                    Ok(Output {
                        json: json!({"status": "success", "account": settings}),
                        text,
                    })
                }
                AccountCmd::RotateKey {
                    code,
                    revoke_previous,
                } => {
                    let (key, revoked) = accounts::rotate_key(&ctx.pool, &code, revoke_previous)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let text = format!(
                        "new api key for {code}: {key}\n(shown once; {revoked} previous key(s) revoked)"
                    );
                    Ok(Output {
                        json: json!({"status": "success", "api_key": key, "revoked": revoked}),
                        text,
                    })
                }
                AccountCmd::RotateSecret {
                    account,
                    grace_hours,
                } => {
                    let grace =
                        callbacks::grace_from_hours(grace_hours).map_err(|e| anyhow!(e.message))?;
                    let rotated = callbacks::rotate_secret(&ctx.pool, &account, grace)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let until = rotated.previous_valid_until.map(rfc3339);
                    let previous = match &until {
                        Some(t) => format!("the previous secret keeps signing until {t}"),
                        None => "the previous secret no longer signs".to_owned(),
                    };
                    let text = format!(
                        "new callback secret for {account}: {}\n({previous}; shown once: store it now)",
                        rotated.secret
                    );
                    Ok(Output {
                        json: json!({
                            "status": "success",
                            "accountcode": account,
                            "callback_secret": rotated.secret,
                            "previous_valid_until": until,
                        }),
                        text,
                    })
                }
                AccountCmd::Suspend { code } | AccountCmd::Activate { code } => {
                    let status = if matches!(cmd_kind, "suspend") {
                        "suspended"
                    } else {
                        "active"
                    };
                    let a = accounts::set_status(&ctx.pool, &code, status)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let text = format!("account {} is {}", a.accountcode, a.status);
                    Ok(Output {
                        json: json!({"status": "success", "account": account_json(&a)}),
                        text,
                    })
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
                ServerCmd::Update(u) => {
                    let change = servers::ServerUpdate {
                        host: u.host,
                        port: u.port,
                        username: u.username,
                        secret: u.secret,
                        max_channels: u.max_channels,
                        max_cps: u.max_cps,
                        channel_template: u.channel_template,
                        enabled: u.enabled,
                    };
                    let server = servers::update(&ctx.pool, &u.code, change)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let text = format!("server {} updated", server.code);
                    Ok(Output {
                        json: json!({"status": "success", "server": server}),
                        text,
                    })
                }
                ServerCmd::Disable { code } => {
                    let change = servers::ServerUpdate {
                        enabled: Some(false),
                        ..Default::default()
                    };
                    let server = servers::update(&ctx.pool, &code, change)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    let text = format!("server {} disabled", server.code);
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
            let outcome =
                dispatch::dispatch(&ctx.pool, &broker, acc.id, batch, dispatch::Handoff::Wait)
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
        Command::Dnc(cmd) => {
            let ctx = connect(config).await?;
            match cmd {
                DncCmd::Add {
                    numbers,
                    scope,
                    reason,
                } => {
                    let id = account_id(&ctx, scope.account.as_deref()).await?;
                    // All or nothing: check every number before adding any.
                    let country = dialer_core::phone::parse_country(&scope.country)?;
                    if let Some(bad) = numbers
                        .iter()
                        .find(|n| dialer_core::phone::E164::parse(n, country).is_err())
                    {
                        return Err(anyhow!("`{bad}` is not a phone number; nothing was added"));
                    }
                    let o =
                        dialer_api::dnc::add_many(&ctx.pool, id, &scope.country, &numbers, &reason)
                            .await
                            .map_err(|e| anyhow!(e.message))?;
                    let text = format!("{} added, {} already listed", o.added, o.already_listed);
                    Ok(Output {
                        json: json!({"status": "success", "added": o.added, "already_listed": o.already_listed}),
                        text,
                    })
                }
                DncCmd::Import {
                    file,
                    scope,
                    reason,
                } => {
                    let id = account_id(&ctx, scope.account.as_deref()).await?;
                    let content = std::fs::read_to_string(&file)
                        .with_context(|| format!("read {}", file.display()))?;
                    let lines: Vec<String> = content.lines().map(str::to_owned).collect();
                    let o =
                        dialer_api::dnc::add_many(&ctx.pool, id, &scope.country, &lines, &reason)
                            .await
                            .map_err(|e| anyhow!(e.message))?;
                    let invalid: Vec<Value> = o
                        .invalid
                        .iter()
                        .map(|(line, text)| json!({"line": line, "text": text}))
                        .collect();
                    let mut text = format!(
                        "{} added, {} already listed, {} invalid",
                        o.added,
                        o.already_listed,
                        invalid.len()
                    );
                    for (line, bad) in o.invalid.iter().take(10) {
                        text.push_str(&format!("\nline {line}: `{bad}` is not a phone number"));
                    }
                    Ok(Output {
                        json: json!({"status": "success", "added": o.added, "already_listed": o.already_listed, "invalid": invalid}),
                        text,
                    })
                }
                DncCmd::Remove { number, scope } => {
                    let id = account_id(&ctx, scope.account.as_deref()).await?;
                    let removed = dialer_api::dnc::remove(&ctx.pool, id, &scope.country, &number)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    if !removed {
                        return Err(anyhow!(
                            "{} is not on that list",
                            dialer_core::phone::mask(&number)
                        ));
                    }
                    Ok(Output {
                        json: json!({"status": "success", "removed": true}),
                        text: "removed".into(),
                    })
                }
            }
        }
        Command::Callbacks(cmd) => {
            let ctx = connect(config).await?;
            callbacks_command(&ctx, cmd).await
        }
        Command::Batch(cmd) => {
            let ctx = connect(config).await?;
            let (action, r) = match &cmd {
                BatchCmd::Status {
                    batch: r,
                    watch: true,
                } => {
                    let acc = accounts::find(&ctx.pool, &r.account)
                        .await
                        .map_err(|e| anyhow!(e.message))?;
                    return watch(&ctx, acc.id, r.batch, cli.json).await;
                }
                BatchCmd::Status { batch: r, .. } => ("status", r),
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
                "cancel" => batches::cancel(&ctx.pool, &broker, &acc, r.batch).await,
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

async fn callbacks_command(ctx: &Ctx, cmd: CallbacksCmd) -> anyhow::Result<Output> {
    let find = async |code: &str| {
        accounts::find(&ctx.pool, code)
            .await
            .map_err(|e| anyhow!(e.message))
    };
    match cmd {
        CallbacksCmd::List {
            account,
            status,
            limit,
            cursor,
        } => {
            let acc = find(&account).await?;
            let filter = EventFilter {
                status: status
                    .as_deref()
                    .map(callbacks::parse_status)
                    .transpose()
                    .map_err(|e| anyhow!(e.message))?,
                limit: Some(
                    callbacks::parse_limit(Some(&limit.to_string()))
                        .map_err(|e| anyhow!("--limit: {}", e.message))?,
                ),
                cursor: callbacks::parse_cursor(cursor.as_deref())
                    .map_err(|e| anyhow!("--cursor: {}", e.message))?,
            };
            let page = callbacks::list(&ctx.pool, acc.id, &filter)
                .await
                .map_err(|e| anyhow!(e.message))?;
            let mut text = format!(
                "{:<36} {:<15} {:>8} {:>4} {:<9} {:>5} {:<20} {}",
                "EVENT ID", "TYPE", "BATCH", "SEQ", "STATUS", "TRIES", "NEXT TRY", "LAST ERROR"
            );
            for e in &page.events {
                text.push_str(&format!(
                    "\n{:<36} {:<15} {:>8} {:>4} {:<9} {:>5} {:<20} {}",
                    e.event_id,
                    e.event_type,
                    e.batch_id,
                    e.sequence
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.delivery_status,
                    e.delivery_attempts,
                    e.next_attempt_at.as_deref().unwrap_or("-"),
                    e.last_error.as_deref().unwrap_or("-"),
                ));
            }
            if let Some(c) = &page.next_cursor {
                text.push_str(&format!("\nmore: --cursor {c}"));
            }
            let mut json = serde_json::to_value(&page)?;
            if let Value::Object(map) = &mut json {
                map.insert("status".into(), "success".into());
            }
            Ok(Output { json, text })
        }
        CallbacksCmd::Show { account, event_id } => {
            let acc = find(&account).await?;
            let detail = callbacks::show(&ctx.pool, acc.id, &event_id)
                .await
                .map_err(|e| anyhow!(e.message))?;
            let e = &detail.event;
            let mut text = format!(
                "{} {} (batch {}, sequence {}): {} after {} tr{}",
                e.event_id,
                e.event_type,
                e.batch_id,
                e.sequence
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                e.delivery_status,
                e.delivery_attempts,
                if e.delivery_attempts == 1 { "y" } else { "ies" },
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
                    a.latency_ms
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "-".into())
                ));
            }
            let mut json = serde_json::to_value(&detail)?;
            if let Value::Object(map) = &mut json {
                map.insert("status".into(), "success".into());
            }
            Ok(Output { json, text })
        }
        CallbacksCmd::Replay(r) => {
            let acc = find(&r.account).await?;
            let selection = if r.failed {
                ReplaySelection::AllFailed
            } else {
                ReplaySelection::EventIds(
                    callbacks::check_ids(r.event).map_err(|e| anyhow!("--event: {}", e.message))?,
                )
            };
            let o = callbacks::redeliver(&ctx.pool, acc.id, &selection)
                .await
                .map_err(|e| anyhow!("{}", e.message))?;
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
            let mut json = serde_json::to_value(&o)?;
            if let Value::Object(map) = &mut json {
                map.insert("status".into(), "success".into());
            }
            Ok(Output { json, text })
        }
    }
}

async fn batch_summary(
    ctx: &Ctx,
    account_id: i64,
    batch_id: i64,
) -> anyhow::Result<batches::BatchSummary> {
    let result = async {
        let mut conn = ctx.pool.get().await?;
        let b = batches::find_batch(&mut conn, account_id, batch_id).await?;
        batches::summary(&mut conn, &b).await
    }
    .await;
    result.map_err(|e| anyhow!(e.message))
}

/// Follows a batch until nothing is pending: a progress bar on a terminal, or one JSON line
/// per second with `--json`.
async fn watch(ctx: &Ctx, account_id: i64, batch_id: i64, as_json: bool) -> anyhow::Result<Output> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} done  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let s = batch_summary(ctx, account_id, batch_id).await?;
        let t = &s.totals;
        let done = t.pending_calls == 0;
        if as_json {
            let mut line = serde_json::to_value(&s)?;
            if let Value::Object(map) = &mut line {
                map.insert("status".into(), "success".into());
            }
            println!("{line}");
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
            let text = format!("batch {} {}: nothing pending", s.batch_id, s.batch_status);
            // With --json every state was already printed as it came.
            return Ok(Output {
                json: Value::Null,
                text: if as_json { String::new() } else { text },
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.abandon();
                return Ok(Output { json: Value::Null, text: String::new() });
            }
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
            if as_json && !out.json.is_null() {
                println!("{}", out.json);
            } else if !as_json && !out.text.is_empty() {
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
