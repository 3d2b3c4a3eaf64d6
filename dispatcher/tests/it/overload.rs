//! The overload signal measures the PBX, not this process: a dispatcher whose runtime is kept
//! busy does not throttle a healthy PBX, while a PBX slow to create channels, or failing to
//! (`Reason 0` past its channel limit), is backed off.
//!
//! The simulators (and the proxy that makes one slow, and what makes the dispatcher busy) run on
//! a runtime of their own, so that what keeps the test's runtime busy slows only the
//! dispatcher, as a busy dispatcher process would, and never the PBX.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ami_sim::{OutcomeKind, Rule, SimConfig, Simulator};
use dispatcher::Dispatcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::helpers::{World, numbers};

const TEMPLATE: &str = "PJSIP/{number}@trunk";

/// A current-thread runtime on a thread of its own, up until dropped.
struct Side {
    handle: tokio::runtime::Handle,
    _stop: oneshot::Sender<()>,
}

impl Side {
    fn start() -> Side {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("side runtime");
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            rt.block_on(async {
                let _ = stopped.await;
            })
        });
        Side {
            handle,
            _stop: stop,
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        self.handle.spawn(f).await.expect("side task")
    }

    /// A simulator answering every `+1555` number after `ring_ms`, up `talk_ms`, with at most
    /// `max_channels` channels (`Reason 0` past them).
    async fn simulator(&self, ring_ms: u64, talk_ms: u64, max_channels: usize) -> Simulator {
        let config = SimConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            rules: vec![Rule::timed(
                "+1555*",
                OutcomeKind::Answered,
                ring_ms,
                talk_ms,
            )],
            max_channels,
            ..SimConfig::default()
        };
        self.run(Simulator::start(config)).await.expect("simulator")
    }
}

/// A proxy in front of the PBX at `to` that passes our bytes at once and the PBX's `delay`
/// milliseconds late, in order: a PBX that answers and creates channels that much later.
/// Returns its port.
async fn delaying_proxy(to: SocketAddr, delay: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((ours, _)) = listener.accept().await {
            let Ok(pbx) = TcpStream::connect(to).await else {
                continue;
            };
            let (mut our_rd, mut our_wr) = ours.into_split();
            let (mut pbx_rd, mut pbx_wr) = pbx.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut our_rd, &mut pbx_wr).await;
            });
            let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
            let delay = delay.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = pbx_rd.read(&mut buf).await {
                    let late = Duration::from_millis(delay.load(Ordering::Relaxed));
                    let due = tokio::time::Instant::now() + late;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some((due, bytes)) = rx.recv().await {
                    tokio::time::sleep_until(due).await;
                    if our_wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn factor(d: &Dispatcher) -> f64 {
    d.capacity_factors().into_iter().next().map_or(1.0, |f| f.1)
}

/// The lowest capacity factor seen over `span`, looking every 100 ms, and how late the
/// latest of those looks came (how busy the test's runtime was).
async fn lowest_factor(d: &Dispatcher, span: Duration) -> (f64, Duration) {
    let end = Instant::now() + span;
    let (mut lowest, mut latest) = (1.0f64, Duration::ZERO);
    while Instant::now() < end {
        let asked = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        latest = latest.max(asked.elapsed().saturating_sub(Duration::from_millis(100)));
        lowest = lowest.min(factor(d));
    }
    (lowest, latest)
}

/// Waits until the factor drops below 1; fails with `what` after `within`.
async fn backs_off(d: &Dispatcher, within: Duration, what: &str) -> f64 {
    let deadline = Instant::now() + within;
    loop {
        let f = factor(d);
        if f < 1.0 {
            return f;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_dispatcher_does_not_throttle_a_healthy_pbx() {
    let side = Side::start();
    let sim = side.simulator(100, 500, 10_000).await;
    // A healthy PBX that takes 50 ms to answer and create a channel.
    let pbx_time = Arc::new(AtomicU64::new(50));
    let port = side.run(delaying_proxy(sim.addr(), pbx_time)).await;
    let world = World::around(vec![sim], &[port], 200, 100, TEMPLATE).await;
    let account = world.account("ACME", 50, 150, "").await;
    world.batch(account, 1, &numbers(2000)).await;
    let d = world.start().await;
    world.wait_originates(20, 30, 50, "never got going").await;
    let before = world.sims[0].stats().originates_total;
    // The runtime turns busy right after it sends, as a dispatcher does (claims, writes and
    // events of a burst of calls): both workers blocked 700 ms as soon as the PBX has got an
    // Originate, then 300 ms free. The PBX answers during the block; nothing of the
    // dispatcher's runs until it ends: the old measure (from the Originate's leaving to the
    // handling of its Newchannel) took the block for the PBX's time and throttled it.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = tokio::runtime::Handle::current();
    let (pbx, stopped) = (world.sims[0].handle(), stop.clone());
    side.handle.spawn(async move {
        let mut seen = pbx.stats().originates_total;
        while !stopped.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if pbx.stats().originates_total == seen {
                continue;
            }
            // Each waits for the other: both workers are held, not one twice.
            let both = Arc::new(std::sync::Barrier::new(2));
            for _ in 0..2 {
                let both = both.clone();
                busy.spawn(async move {
                    both.wait();
                    std::thread::sleep(Duration::from_millis(700));
                });
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
            seen = pbx.stats().originates_total;
        }
    });
    let (lowest, late) = lowest_factor(&d, Duration::from_secs(15)).await;
    stop.store(true, Ordering::Relaxed);
    let dialed = world.sims[0].stats().originates_total - before;
    d.shutdown().await;
    assert!(
        late >= Duration::from_millis(400),
        "the runtime was not busy (looks at most {late:?} late)"
    );
    assert!(dialed >= 100, "too few calls to judge: {dialed}");
    assert_eq!(
        lowest, 1.0,
        "a healthy PBX throttled ({dialed} calls, runtime up to {late:?} late)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_slow_to_create_channels_is_backed_off() {
    let side = Side::start();
    let sim = side.simulator(100, 500, 10_000).await;
    let delay = Arc::new(AtomicU64::new(0));
    let port = side.run(delaying_proxy(sim.addr(), delay.clone())).await;
    let world = World::around(vec![sim], &[port], 200, 100, TEMPLATE).await;
    let account = world.account("ACME", 50, 150, "").await;
    world.batch(account, 1, &numbers(2000)).await;
    let d = world.start().await;
    world.wait_originates(20, 30, 50, "never got going").await;
    let (lowest, _) = lowest_factor(&d, Duration::from_secs(7)).await;
    assert_eq!(lowest, 1.0, "throttled while healthy");
    // Channels now come 400 ms after their Originate: past the knee of a PBX whose normal is
    // a few milliseconds.
    delay.store(400, Ordering::Relaxed);
    let low = backs_off(&d, Duration::from_secs(15), "no back-off on slow channels").await;
    assert!(low <= 0.5, "{low}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_out_of_channels_is_backed_off() {
    // The PBX makes 10 channels at most (`Reason 0` past them, as Asterisk out of file handles)
    // while the server is registered for 100.
    let side = Side::start();
    let sim = side.simulator(0, 3000, 10).await;
    let port = sim.addr().port();
    let world = World::around(vec![sim], &[port], 100, 100, TEMPLATE).await;
    let account = world.account("ACME", 30, 100, "").await;
    world.batch(account, 1, &numbers(300)).await;
    let d = world.start().await;
    let low = backs_off(&d, Duration::from_secs(15), "no back-off on Reason 0").await;
    assert!(low <= 0.5, "{low}");
    d.shutdown().await;
}
