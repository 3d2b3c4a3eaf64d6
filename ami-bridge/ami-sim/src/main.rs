//! `ami-sim --listen 127.0.0.1:5038 [--config FILE] [--control 127.0.0.1:PORT]`

use std::net::SocketAddr;
use std::path::PathBuf;

use ami_sim::{SimConfig, Simulator};
use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "ami-sim",
    about = "A PBX simulator that speaks AMI like Asterisk 20"
)]
struct Args {
    /// AMI listen address (overrides the config file's `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// TOML config (rules, mix, capacity, credentials; see README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Control port address (line protocol; overrides the config file's `control`).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Every call answers and ends at once (benchmarks).
    #[arg(long)]
    instant_answer: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut cfg = match &args.config {
        Some(path) => SimConfig::from_file(path).context("loading the config")?,
        None => SimConfig::default(),
    };
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if args.control.is_some() {
        cfg.control = args.control;
    }
    cfg.instant_answer |= args.instant_answer;
    let sim = Simulator::start(cfg).await.context("starting ami-sim")?;
    println!("ami-sim listening on {}", sim.addr());
    if let Some(c) = sim.control_addr() {
        println!("control port on {c}");
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}
