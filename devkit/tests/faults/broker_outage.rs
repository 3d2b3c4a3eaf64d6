//! RabbitMQ stopped under a running batch, on a node of the test's own: stopped gracefully for
//! a while (connections closed by the broker), killed (every connection lost at once, as a
//! crash of its host), or restarted at once. Services reconnect and their consumers resume
//! (none stays silently dead: the batch could not complete otherwise); dial jobs published
//! without a confirm are published again from the outbox; the batch completes with nothing
//! lost, dialed twice or stuck.

use std::time::{Duration, Instant};

use crate::run::{FaultRun, Own, OwnBroker};

const OWN_BROKER: Own = Own {
    postgres: false,
    broker: OwnBroker::Node,
};

/// Down for `down` (killed or stopped) while calls are up; a second batch is submitted while
/// it is away (its dial jobs wait in the outbox), so dialing it shows the outbox republished
/// and the dispatcher's consumers back.
async fn broker_away_mid_batch(name: &str, down: Duration, kill: bool) {
    let mut run = FaultRun::start(name, OWN_BROKER).await;
    run.submit(120).await;
    run.until_ended(10).await;
    run.broker()
        .stop_node(kill)
        .await
        .expect("RabbitMQ stopped");
    run.submit_more(40).await;
    tokio::time::sleep(down).await;
    let before = run.originated().await;
    run.broker().start_node().await.expect("RabbitMQ back");
    let back = Instant::now();
    let deadline = back + Duration::from_secs(60);
    // Wait until the first batch's calls are dialed and the second's begin.
    while run.originated().await < before.max(120) + 1 {
        assert!(
            Instant::now() < deadline,
            "the batch submitted while RabbitMQ was away is not dialed ({} Originates)",
            run.originated().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{name}: the batch submitted during the outage dialed {} ms after RabbitMQ was back",
        back.elapsed().as_millis()
    );
    run.settle_and_check(Duration::from_secs(150)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_killed_for_ten_seconds_mid_batch_loses_nothing() {
    broker_away_mid_batch("mq-kill-10s", Duration::from_secs(10), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long fault test: scripts/faults runs it"]
async fn rabbitmq_stopped_for_thirty_seconds_mid_batch_loses_nothing() {
    broker_away_mid_batch("mq-stop-30s", Duration::from_secs(30), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long fault test: scripts/faults runs it"]
async fn rabbitmq_restarted_at_once_mid_batch_loses_nothing() {
    broker_away_mid_batch("mq-restart", Duration::ZERO, false).await;
}
