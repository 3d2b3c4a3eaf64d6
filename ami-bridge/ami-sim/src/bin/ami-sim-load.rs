//! Load run: one simulator (in-process unless `--addr`), one raw AMI client pacing Originates.
//! Prints originates/s achieved, peak channels, events/s, events and bytes per call, and
//! Originate-to-Newchannel latency as the client saw it and as the simulator counted it.
//!
//! `cargo run --release -p ami-sim --bin ami-sim-load -- --rate 1000 --seconds 10 --talk-ms 5000`
//! `... -- --config load.toml --rate 400 --seconds 10` (the simulator from a TOML config)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_bridge::{Decoder, Frame, MessageKind};
use ami_sim::{MixEntry, OutcomeKind, SimConfig, Simulator};
use anyhow::{Context, bail};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser, Debug)]
#[command(name = "ami-sim-load")]
struct Args {
    /// Originates per second to send.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long to send.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Ring time of every call (in-process simulator).
    #[arg(long, default_value_t = 200)]
    ring_ms: u64,
    /// Talk time of every call: rate x (ring + talk) channels are up at once.
    #[arg(long, default_value_t = 5000)]
    talk_ms: u64,
    /// Capacity of the in-process simulator.
    #[arg(long, default_value_t = 8000)]
    max_channels: usize,
    /// The in-process simulator from this TOML config instead (its `listen` is ignored; every
    /// number is dialed through its rules/mix, `--ring-ms`/`--talk-ms`/`--max-channels` unused).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Drive an external simulator instead (default login dialer/dialer).
    #[arg(long)]
    addr: Option<SocketAddr>,
    #[arg(long, default_value = "dialer")]
    secret: String,
    /// The manager user of `--addr` (a real Asterisk: the lab's `platform` user).
    #[arg(long, default_value = "dialer")]
    user: String,
    /// The channel dialed, `{n}` the call's number (a real Asterisk: `SIP/1{n}@trunk`).
    #[arg(long, default_value = "PJSIP/1{n}@trunk")]
    channel: String,
    /// Where an answered call goes (the lab's `dialer` context waits 2 s and hangs up).
    #[arg(long, default_value = "dialer-out")]
    context: String,
}

#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    events: AtomicU64,
    orr_ok: AtomicU64,
    orr_failed: AtomicU64,
    hangups: AtomicU64,
    bytes: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = match &args.config {
        Some(path) => SimConfig {
            listen: "127.0.0.1:0".parse()?,
            ..SimConfig::from_file(path)?
        },
        None => SimConfig {
            listen: "127.0.0.1:0".parse()?,
            max_channels: args.max_channels,
            mix: vec![MixEntry {
                outcome: OutcomeKind::Answered,
                weight: 1,
                ring_ms: Some(args.ring_ms),
                talk_ms: Some(args.talk_ms),
                answered_by: None,
                keys: None,
                key_delay_ms: None,
            }],
            ..Default::default()
        },
    };
    let (user, secret) = match &args.config {
        Some(_) => (cfg.username.clone(), cfg.secret.clone()),
        None => (args.user.clone(), args.secret.clone()),
    };
    let sim = match args.addr {
        Some(_) => None,
        None => Some(
            Simulator::start(cfg)
                .await
                .context("starting the simulator")?,
        ),
    };
    let addr = match (&sim, args.addr) {
        (Some(s), _) => s.addr(),
        (None, Some(a)) => a,
        (None, None) => bail!("no simulator"),
    };

    let stream = TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(
        format!("Action: Login\r\nActionID: l\r\nUsername: {user}\r\nSecret: {secret}\r\n\r\n")
            .as_bytes(),
    )
    .await?;

    let counts = Arc::new(Counts::default());
    let total = args.rate * args.seconds;
    // When each Originate was written and when its Newchannel was read.
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; total as usize]));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let (reader_sent, reader_latencies) = (sent_at.clone(), latencies.clone());
    let reader_counts = counts.clone();
    let reader = tokio::spawn(async move {
        let mut dec = Decoder::client();
        loop {
            match rd.read_buf(dec.buffer_mut()).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    reader_counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            while let Some(frame) = dec.next_frame() {
                let Ok(Frame::Message(m)) = frame else {
                    continue;
                };
                reader_counts.messages.fetch_add(1, Ordering::Relaxed);
                if m.kind() != MessageKind::Event {
                    continue;
                }
                reader_counts.events.fetch_add(1, Ordering::Relaxed);
                match m.event_name() {
                    Some("Newchannel") => {
                        let n = m
                            .get("Uniqueid")
                            .and_then(|u| u.strip_prefix("load-"))
                            .and_then(|n| n.parse::<usize>().ok());
                        let sent = n.and_then(|n| lock(&reader_sent).get(n).copied().flatten());
                        if let Some(t) = sent {
                            lock(&reader_latencies).push(t.elapsed());
                        }
                    }
                    Some("OriginateResponse") => {
                        let c = if m.get("Response") == Some("Success") {
                            &reader_counts.orr_ok
                        } else {
                            &reader_counts.orr_failed
                        };
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("Hangup") => {
                        reader_counts.hangups.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
    });

    // Pace in 10 ms ticks, each one write holding that tick's Originates.
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut buf = Vec::with_capacity(64 * 1024);
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
        buf.clear();
        while sent < due {
            let n = sent;
            let channel = args.channel.replace("{n}", &format!("{n:09}"));
            let context = &args.context;
            buf.extend_from_slice(
                format!(
                    "Action: Originate\r\nActionID: o-{n}\r\nChannel: {channel}\r\nContext: {context}\r\nExten: s\r\nPriority: 1\r\nTimeout: 30000\r\nCallerID: \"Load\" <5550100>\r\nVariable: DIALER_CALL_ID=call-{n:010}\r\nChannelId: load-{n:010}\r\nAsync: true\r\n\r\n"
                )
                .as_bytes(),
            );
            sent += 1;
        }
        if !buf.is_empty() {
            wr.write_all(&buf).await.context("sending Originates")?;
            let now = Instant::now();
            let mut stamps = lock(&sent_at);
            for slot in stamps.iter_mut().take(sent as usize).rev() {
                if slot.is_some() {
                    break;
                }
                *slot = Some(now);
            }
        }
    }
    let send_time = started.elapsed();

    // Wait for every call to end (or give up after talk time + 15 s).
    let end = Instant::now()
        + Duration::from_millis(args.ring_ms + args.talk_ms)
        + Duration::from_secs(15);
    while counts.hangups.load(Ordering::Relaxed) + counts.orr_failed.load(Ordering::Relaxed) < sent
        && Instant::now() < end
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run_time = started.elapsed();
    let _ = wr
        .write_all(b"Action: Logoff\r\nActionID: bye\r\n\r\n")
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;

    let events = counts.events.load(Ordering::Relaxed);
    println!(
        "originates sent:        {sent} in {:.2} s",
        send_time.as_secs_f64()
    );
    println!(
        "originates/s achieved:  {:.0}",
        sent as f64 / send_time.as_secs_f64()
    );
    println!(
        "OriginateResponse:      {} success, {} failure; Hangup events: {}",
        counts.orr_ok.load(Ordering::Relaxed),
        counts.orr_failed.load(Ordering::Relaxed),
        counts.hangups.load(Ordering::Relaxed)
    );
    println!(
        "events received:        {events} in {:.2} s = {:.0} events/s ({:.1} MB/s)",
        run_time.as_secs_f64(),
        events as f64 / run_time.as_secs_f64(),
        counts.bytes.load(Ordering::Relaxed) as f64 / run_time.as_secs_f64() / 1e6
    );
    let calls = sent.max(1) as f64;
    println!(
        "per call:               {:.1} events, {:.0} bytes (session-level messages included)",
        events as f64 / calls,
        counts.bytes.load(Ordering::Relaxed) as f64 / calls
    );
    let mut seen = std::mem::take(&mut *lock(&latencies));
    seen.sort();
    let pct = |q: f64| {
        seen.get(((seen.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "Originate->Newchannel:  client: {} calls, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        seen.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    if let Some(sim) = sim {
        let s = sim.stats();
        let l = s.setup_latency;
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "                        simulator: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.max_us)
        );
        println!(
            "capacity failures:      {} (setup backlog peak {})",
            s.capacity_failures, s.setup_backlog_peak
        );
        println!("peak channels:          {}", s.max_concurrent_channels);
        println!("max originates in 1 s:  {}", s.max_originates_in_1s);
        println!(
            "simulator events:       {} ({:.0}/s, {:.1} MB, {} filtered out)",
            s.events_emitted,
            s.events_emitted as f64 / run_time.as_secs_f64(),
            s.event_bytes_emitted as f64 / 1e6,
            s.events_filtered
        );
        sim.shutdown().await;
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicked reader leaves the data as it was; the figures are still worth printing.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
