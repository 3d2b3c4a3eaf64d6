//! The real `callback-worker` binary, prompted through RabbitMQ, killed with SIGKILL in the
//! middle of deliveries and started again: every event arrives (duplicates allowed, same
//! event_id), in order per call. Then SIGTERM stops it cleanly.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Harness, assert_in_order_per_call, events_in, secret};
use crate::receiver::{self, ReceiverState};
use dialer_core::domain::DeliveryStatus;
use dialer_core::event_prompt;
use dialer_core::topology;

fn spawn_worker(h: &Harness) -> Child {
    let c = &h.env.config;
    Command::new(env!("CARGO_BIN_EXE_callback-worker"))
        .env("DATABASE_URL", &c.database_url)
        .env("AMQP_URL", &c.amqp_url)
        .env("DIALER_QUEUE_PREFIX", &c.queue_prefix)
        .env("DIALER_DB_POOL_SIZE", "4")
        .env("DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS", "true")
        .env("DIALER_CALLBACK_TIMEOUT_MS", "1000")
        .env("DIALER_CALLBACK_LEASE_SECS", "3")
        .env(
            "DIALER_CALLBACK_RETRY_SCHEDULE",
            "200ms,200ms,200ms,200ms,200ms",
        )
        // Expired leases are found by the poll (prompts for them were acked long ago).
        .env("DIALER_CALLBACK_POLL_MS", "500")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start callback-worker")
}

#[tokio::test]
async fn kill_9_during_deliveries_then_restart_delivers_every_event() {
    let h = Harness::new().await;
    let s = secret();
    let state = ReceiverState::new(vec![s.clone()]);
    state
        .delay_ms
        .store(15, std::sync::atomic::Ordering::SeqCst);
    let addr = receiver::start(state.clone(), None).await;
    let account = h
        .account("CRASH", &format!("http://{addr}/cb"), &s, false, None)
        .await;

    // Events written and handed to RabbitMQ the way the platform does it.
    let amqp = topology::connect(&h.env.config.amqp_url, "crash-test")
        .await
        .expect("rabbitmq");
    let channel = topology::confirm_channel(&amqp).await.expect("channel");
    let topo = h.env.topology();
    topo.declare(&channel).await.expect("declare");
    let batch = h.events(account, 150, 4).await;
    assert_eq!(
        h.count("SELECT count(*) AS n FROM callback_queue").await,
        600,
        "queued at insert"
    );
    event_prompt::prompt(&channel, &topo, &[batch])
        .await
        .expect("prompt");

    let mut worker = spawn_worker(&h);
    let start = Instant::now();
    while state.accepted().len() < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill().expect("SIGKILL");
    let _ = worker.wait();
    let at_kill = h.count(&events_in(DeliveryStatus::Delivered)).await;
    assert!(
        at_kill < 600,
        "killed too late to prove anything ({at_kill} delivered)"
    );

    // The new process finds the killed one's claims when their leases end, and the prompts
    // that were never acked.
    let mut worker = spawn_worker(&h);
    let took = h.wait_delivered(600, Duration::from_secs(120)).await;
    eprintln!("after the restart, everything delivered in {took:?}");
    assert_in_order_per_call(&state.accepted(), 600);
    assert_eq!(
        h.count("SELECT count(*) AS n FROM call_events WHERE delivery_status <> 'delivered'")
            .await,
        0
    );

    // SIGTERM: a clean, prompt exit.
    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = worker.try_wait().expect("wait") {
            assert!(exit.success(), "exit after SIGTERM: {exit}");
            break;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = amqp.close(200, "done".into()).await;
}
