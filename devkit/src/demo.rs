//! `dialer-devkit demo` (also `dialerctl demo`): the whole platform on this machine (API,
//! dispatcher, callback worker, two simulated Asterisk servers, a callback receiver that
//! verifies signatures), one batch of mixed outcomes dialed to its end, live progress, and a
//! summary.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use dialer_core::Config;
use dialer_core::domain::CallStatus;

use dialer_api::ops::accounts::AccountUpdate;

use crate::api_client::ApiClient;
use crate::platform::{self, Binaries, Processes, ServiceEnv, SimSpec};
use crate::{report, seed};

pub struct DemoOptions {
    /// The batch to submit (the contract's submission body).
    pub batch_file: PathBuf,
    /// Configuration of both simulated servers (`None`: the simulator's last-digit plan).
    pub sim_config: Option<PathBuf>,
    /// The demo's own database, dropped and recreated beside `DATABASE_URL`'s.
    pub database: String,
    pub queue_prefix: String,
    /// Give up after this long.
    pub timeout: Duration,
}

/// Where the demo's files are by default: `examples/` of the working directory, else of the
/// source tree the binary was built in.
pub fn example_file(relative: &str) -> PathBuf {
    let here = Path::new(relative);
    if here.exists() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

const DEMO_ACCOUNT: &str = "DEMO";

/// Runs the demo; Ctrl-C stops everything cleanly.
/// Logs of every process go to `demo-logs/` beside the binaries.
pub async fn run(config: &Config, opts: DemoOptions) -> anyhow::Result<()> {
    platform::run_interruptible("demo-logs", async |bins, processes| {
        demo(config, &opts, bins, processes).await
    })
    .await
}

fn step(text: impl AsRef<str>) {
    println!("▸ {}", text.as_ref());
}

async fn demo(
    config: &Config,
    opts: &DemoOptions,
    bins: &Binaries,
    processes: &mut Processes,
) -> anyhow::Result<()> {
    let batch: Value = serde_json::from_str(
        &std::fs::read_to_string(&opts.batch_file)
            .with_context(|| format!("reading {}", opts.batch_file.display()))?,
    )
    .with_context(|| format!("{} is not JSON", opts.batch_file.display()))?;
    let batch_id = batch
        .get("batch_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow!("{}: no batch_id", opts.batch_file.display()))?;

    let (database_url, pool) =
        platform::fresh_run(config, &opts.database, &opts.queue_prefix, "devkit-demo").await?;
    step(format!(
        "PostgreSQL: fresh database `{}`, migrated; RabbitMQ: `{}.*` start empty",
        opts.database, opts.queue_prefix
    ));

    let sims = platform::start_sims(
        bins,
        processes,
        &SimSpec::two(opts.sim_config.clone(), false),
    )
    .await?;
    step(format!(
        "2 simulated Asterisk 20 servers: ast1 on {}, ast2 on {}",
        sims[0].ami, sims[1].ami
    ));

    let (created, receiver) = seed::account_with_receiver(
        &pool,
        DEMO_ACCOUNT,
        "US",
        AccountUpdate {
            // A no-answer rings until this timeout: 3 s keeps the demo within a minute. The batch
            // (examples/batch.json) sets its own retry policy.
            ring_timeout_seconds: Some(3),
            max_attempts: Some(2),
            retry_delay_seconds: Some(3),
            retry_on: Some(vec!["busy".to_owned(), "no_answer".to_owned()]),
            calls_per_second: Some(40),
            max_concurrent_calls: Some(120),
            ..AccountUpdate::default()
        },
        Duration::ZERO,
    )
    .await?;
    seed::servers(&pool, &sims, 80, 25).await?;
    step(format!(
        "account {DEMO_ACCOUNT} created (40 calls/s, ring timeout 3 s); servers ast1, ast2 registered (25 calls/s, 80 channels each)"
    ));
    step(format!(
        "callback receiver on {} verifies X-Signature and webhook-signature of every callback",
        receiver.url
    ));

    let env = ServiceEnv {
        database_url,
        amqp_url: config.amqp_url.clone(),
        queue_prefix: opts.queue_prefix.clone(),
        extra: vec![(
            "RUST_LOG".to_owned(),
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )],
    };
    let services = platform::start_services(bins, processes, &env, platform::Scale::ONE).await?;
    step(format!(
        "dialer-api on {}, dispatcher and callback-worker running (logs in {})",
        services.api_url,
        processes.log_dir().display()
    ));

    let client = ApiClient::new(&services.api_url, &created.api_key);
    // After the answer: a spoken message, answering-machine detection, one key (9 opts out),
    // and a recording of every answered call (ami-sim decides per number who answers and what
    // they press).
    let mut batch = batch;
    let prompt = client
        .spoken_prompt(
            "Hello, this is a reminder from the dialer demo. Press 1 to confirm, or 9 to stop these calls.",
        )
        .await
        .context("speaking the demo's message (is espeak-ng installed? scripts/services.sh speech)")?;
    if let Some(b) = batch.as_object_mut() {
        b.insert("amd".into(), "detect".into());
        b.insert("message_prompt".into(), prompt["prompt_id"].clone());
        b.insert(
            "gather".into(),
            serde_json::json!({"max_digits": 1, "timeout_seconds": 3, "finish_on_key": "#", "opt_out_digit": "9"}),
        );
        b.insert("record".into(), true.into());
    }
    step(format!(
        "prompt {} spoken ({} ms); the batch detects answering machines, plays it, reads one key and records",
        prompt["prompt_id"], prompt["duration_ms"]
    ));
    let started = Instant::now();
    let submitted = client.submit(&batch).await?;
    step(format!(
        "submitted {} (batch {batch_id}): {} accepted, {} duplicates, {} rejected",
        opts.batch_file.display(),
        submitted["accepted"],
        submitted["duplicates"],
        submitted["rejected"].as_array().map_or(0, Vec::len)
    ));
    let dispatched = client.dispatch(batch_id).await?;
    step(format!("dispatched: {} calls", dispatched["dispatched"]));
    let dial_started = Instant::now();

    let total = submitted["total_calls"].as_u64().unwrap_or(0);
    let watch = Progress::new(total);
    // Without a terminal the bars are hidden: a line every few seconds instead.
    let plain = !std::io::stderr().is_terminal();
    let mut last_line = Instant::now();
    let account_id = created.account.id;
    let final_status = loop {
        processes.check_alive()?;
        let status = client.batch_status(batch_id).await?;
        let events = report::events(&pool, account_id).await?;
        let verified = receiver.event_count() as u64;
        watch.show(&status, events, verified);
        if plain && last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
            println!(
                "  {:>5.1} s  {}; callbacks verified {verified}/{}",
                started.elapsed().as_secs_f64(),
                status["counts"],
                events.written
            );
        }
        let done = status["batch_status"] == "completed"
            && events.written > 0
            && verified >= events.written as u64;
        if done {
            break status;
        }
        if started.elapsed() > opts.timeout {
            watch.finish();
            bail!(
                "not finished after {} s (batch {}, {} of {} callbacks verified); logs in {}",
                opts.timeout.as_secs(),
                status["batch_status"],
                verified,
                events.written,
                processes.log_dir().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    watch.finish();
    let elapsed = started.elapsed();
    let dial_time = dial_started.elapsed();

    let outcomes = report::outcomes(&pool, account_id).await?;
    let attempts = report::attempts(&pool, account_id).await?;
    let events = report::events(&pool, account_id).await?;
    let received = receiver.snapshot();
    println!();
    println!("Summary");
    println!("  {:<28}{:>8}", "calls", final_status["total_calls"]);
    for o in &outcomes {
        println!("    {:<26}{:>8}", o.outcome, o.calls);
    }
    println!("  {:<28}{:>8}", "attempts", attempts.attempts);
    println!("  {:<28}{:>8}", "retries", attempts.retries());
    println!("  {:<28}{:>8}", "callbacks written", events.written);
    println!("  {:<28}{:>8}", "callbacks delivered", events.delivered);
    println!("  {:<28}{:>8}", "callbacks verified", received.events.len());
    println!(
        "  {:<28}{:>8}",
        "  repeated deliveries", received.duplicates
    );
    println!("  {:<28}{:>8}", "  bad signatures", received.bad_signatures);
    println!(
        "  {:<28}{:>8}",
        "  out of order (per call)", received.out_of_order
    );
    let answered = report::after_answer(&pool, account_id).await?;
    println!("  {:<28}{:>8}", "answered by a person", answered.human);
    println!("  {:<28}{:>8}", "answered by a machine", answered.machine);
    println!("  {:<28}{:>8}", "  not sure", answered.unknown);
    println!("  {:<28}{:>8}", "pressed a key", answered.pressed);
    println!("  {:<28}{:>8}", "  opted out", answered.opted_out);
    println!("  {:<28}{:>8}", "recordings stored", answered.recordings);
    if let Some(r) = &answered.example_recording {
        println!(
            "    e.g. curl -H 'X-API-KEY: <key>' {}/api/v1/recordings/{r} -o call.wav",
            services.api_url
        );
    }
    println!("  {:<28}{:>8.1} s", "elapsed", elapsed.as_secs_f64());
    println!(
        "  {:<28}{:>8.1}",
        "attempts per second",
        attempts.attempts as f64 / dial_time.as_secs_f64().max(0.001)
    );
    println!();
    println!("Where to look next");
    println!(
        "  logs of every process     {}",
        processes.log_dir().display()
    );
    println!("  architecture and run book docs/architecture.md, docs/operations.md");
    println!(
        "  the API                   {}/api/v1/openapi.json (while running)",
        services.api_url
    );
    println!(
        "  the calls, afterwards     DATABASE_URL={} dialerctl batch status --account {DEMO_ACCOUNT} --batch {batch_id}",
        redact(&env.database_url)
    );
    println!("  examples                  examples/ (Python and Rust clients, a Flask receiver)");
    receiver.stop().await;
    if received.bad_signatures > 0 || received.out_of_order > 0 {
        bail!("callbacks with bad signatures or out of order: see above");
    }
    Ok(())
}

fn redact(url: &str) -> String {
    // user:password@ -> user@
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// One bar per call status, one for callbacks.
struct Progress {
    bars: Vec<(CallStatus, ProgressBar)>,
    callbacks: ProgressBar,
    header: ProgressBar,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("  {prefix:<12} {bar:40.cyan/blue} {pos:>5}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let header = multi.add(ProgressBar::new_spinner());
        let bars = CallStatus::ALL
            .iter()
            .map(|s| {
                let b = multi.add(ProgressBar::new(total.max(1)));
                b.set_style(style.clone());
                b.set_prefix(s.as_str());
                (*s, b)
            })
            .collect();
        let callbacks = multi.add(ProgressBar::new(1));
        callbacks.set_style(
            ProgressStyle::with_template(
                "  {prefix:<12} {bar:40.green/blue} {pos:>5}/{len} verified",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        callbacks.set_prefix("callbacks");
        Progress {
            bars,
            callbacks,
            header,
        }
    }

    fn show(&self, status: &Value, events: report::EventTotals, verified: u64) {
        self.header.set_message(format!(
            "batch {}: {} completed, {} failed, {} pending of {}{}",
            status["batch_status"].as_str().unwrap_or("?"),
            status["completed_calls"],
            status["failed_calls"],
            status["pending_calls"],
            status["total_calls"],
            status["waiting_reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
        self.header.tick();
        for (s, bar) in &self.bars {
            let n = status["counts"][s.as_str()].as_u64().unwrap_or(0);
            bar.set_position(n);
        }
        self.callbacks.set_length(events.written.max(1) as u64);
        self.callbacks.set_position(verified);
    }

    /// Leaves every bar where it stands (`finish` would fill them all).
    fn finish(&self) {
        self.header.abandon();
        for (_, b) in &self.bars {
            b.abandon();
        }
        self.callbacks.abandon();
    }
}
