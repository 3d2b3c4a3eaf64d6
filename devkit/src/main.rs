//! dialer-devkit: the whole platform on this machine, for people working on it. `dialerctl demo`
//! and `dialerctl bench` run this binary with the same arguments. Failures exit non-zero with a
//! one-line reason on stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser};

use dialer_core::Config;
use dialer_devkit::{bench, demo, memory, paced};

#[derive(Parser)]
#[command(
    name = "dialer-devkit",
    version,
    about = "The whole platform on this machine: a demo and a benchmark"
)]
enum Command {
    /// Run the whole platform on this machine (API, dispatcher, callback worker, two simulated
    /// Asterisk servers, a callback receiver that verifies signatures) and dial a batch to its
    /// end with live progress. Uses its own database and queue prefix; Ctrl-C stops it all.
    Demo(DemoArgs),
    /// Benchmark the whole platform on this machine (simulated servers answering at once, every
    /// limit off): call lifecycles per second, ingestion beside COPY, callback deliveries beside
    /// plain POSTs, hang-up to callback latency. Prints a table. With `--cps R`, a paced run
    /// instead: one server (ami-sim, or a real PBX with `--pbx`) at max_cps R, callees ringing
    /// and talking as set; prints answered calls per second held, capacity factor changes,
    /// PostgreSQL CPU per 1,000 calls and hang-up to callback latency.
    Bench(BenchArgs),
    /// Measure each process's resident memory under large work: a backlog of undelivered
    /// events (a cancelled batch, the callback worker stopped meanwhile) and a batch of as many
    /// calls dialing while the worker comes back to the backlog. Prints each process's memory
    /// idle, after submission, at the end and at its peak.
    Memory(MemoryArgs),
}

#[derive(Args)]
struct MemoryArgs {
    #[command(flatten)]
    failure: FailureFormat,
    /// Calls of the batch that dials.
    #[arg(long, default_value_t = 1_000_000)]
    calls: usize,
    /// Undelivered events waiting when the callback worker comes back.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: usize,
    /// Seconds of work once the worker is back (0: until everything is dialed and delivered).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    #[arg(long, default_value = "dialer_memory")]
    database: String,
    #[arg(long, default_value = "dialer_memory")]
    queue_prefix: String,
}

/// How a failure is told, besides the line on stderr.
#[derive(Args)]
struct FailureFormat {
    /// Print a failure as one line of JSON on stdout as well (as dialerctl does).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    failure: FailureFormat,
    /// The batch to submit [default: examples/batch.json]
    #[arg(long)]
    batch: Option<PathBuf>,
    /// ami-sim configuration of both servers [default: examples/ami-sim/flow-demo.toml]
    #[arg(long)]
    sim_config: Option<PathBuf>,
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
    #[command(flatten)]
    failure: FailureFormat,
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
    #[command(flatten)]
    paced: PacedArgs,
}

/// A paced run instead of the burst: one server with `max_cps` set to `--cps`.
#[derive(Args)]
struct PacedArgs {
    /// Pace the run: the server's max_cps. Without it the bench is a burst with limits off.
    #[arg(long)]
    cps: Option<u32>,
    /// Simulated callees ring this long before answering (paced runs).
    #[arg(long, default_value_t = 1000)]
    ring_ms: u64,
    /// ... and talk this long before the PBX hangs up (paced runs).
    #[arg(long, default_value_t = 2000)]
    talk_ms: u64,
    /// The simulated PBX's capacity: channel setups per second (a real Asterisk 20 on 2 cores
    /// held about 400-480); past it setup latency grows, then Originates fail with Reason 0.
    #[arg(long, default_value_t = 480)]
    sim_capacity_cps: u32,
    /// The account has no callback URL (its events are stored skipped).
    #[arg(long)]
    no_callbacks: bool,
    /// Delivered events written before the run, as a platform that has been running has.
    #[arg(long, default_value_t = 0)]
    history_events: usize,
    /// Seconds PostgreSQL's idle CPU is measured before dialing (the baseline taken off).
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Drive a real PBX at this AMI address (host:port) instead of a simulator.
    #[arg(long, requires = "cps")]
    pbx: Option<std::net::SocketAddr>,
    #[arg(long, default_value = "dialer")]
    pbx_user: String,
    #[arg(long, default_value = "dialer-secret")]
    pbx_secret: String,
    /// The PBX's channel template, e.g. `SIP/{number}@trunk-answer`.
    #[arg(long, default_value = "SIP/{number}@trunk")]
    pbx_channel: String,
}

async fn run(command: Command) -> anyhow::Result<()> {
    let config = Config::from_env().context("configuration")?;
    match command {
        Command::Demo(args) => {
            let sim_config = args
                .sim_config
                .unwrap_or_else(|| demo::example_file("examples/ami-sim/flow-demo.toml"));
            let options = demo::DemoOptions {
                batch_file: args
                    .batch
                    .unwrap_or_else(|| demo::example_file("examples/batch.json")),
                sim_config: sim_config.exists().then_some(sim_config),
                database: args.database,
                queue_prefix: args.queue_prefix,
                timeout: Duration::from_secs(args.timeout),
            };
            demo::run(&config, options).await
        }
        Command::Bench(args) if args.paced.cps.is_some() => {
            let p = args.paced;
            let options = paced::PacedOptions {
                cps: p.cps.unwrap_or(1),
                calls: args.calls,
                ring_ms: p.ring_ms,
                talk_ms: p.talk_ms,
                sim_capacity_cps: p.sim_capacity_cps,
                callbacks: !p.no_callbacks,
                history_events: p.history_events,
                idle: Duration::from_secs(p.idle_secs),
                pbx: p.pbx.map(|addr| paced::ExternalPbx {
                    addr,
                    username: p.pbx_user,
                    secret: p.pbx_secret,
                    channel_template: p.pbx_channel,
                }),
                database: args.database,
                queue_prefix: args.queue_prefix,
                timeout: Duration::from_secs(args.timeout),
            };
            paced::run(&config, options).await
        }
        Command::Memory(args) => {
            let options = memory::MemoryOptions {
                calls: args.calls,
                backlog: args.backlog,
                seconds: args.seconds,
                database: args.database,
                queue_prefix: args.queue_prefix,
            };
            memory::run(&config, options).await
        }
        Command::Bench(args) => {
            let options = bench::BenchOptions {
                calls: args.calls,
                requests: args.requests,
                database: args.database,
                queue_prefix: args.queue_prefix,
                timeout: Duration::from_secs(args.timeout),
            };
            bench::run(&config, options).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = Command::parse();
    let as_json = match &command {
        Command::Demo(a) => a.failure.json,
        Command::Bench(a) => a.failure.json,
        Command::Memory(a) => a.failure.json,
    };
    dialer_core::telemetry::init_with_default("dialer-devkit", "warn");
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the cause chain.
            let reason = format!("{e:#}").replace('\n', " ");
            if as_json {
                println!(
                    "{}",
                    serde_json::json!({"status": "error", "message": reason})
                );
            }
            eprintln!("dialer-devkit: {reason}");
            ExitCode::FAILURE
        }
    }
}
