//! The PBX failing under a running batch, through the real binaries: one of the two simulated
//! Asterisk servers restarts (`core stop now`, as recorded: every call hung up, `Shutdown`,
//! connections closed, back shortly), or its AMI session stalls without closing (nothing read
//! or written; new connections work). Calls in flight on it end as the contract says, the other
//! server dials throughout, the dispatcher comes back to the failed one and dials on it again;
//! nothing lost, dialed twice or stuck. (The dispatcher's in-process tests of the same faults,
//! `dispatcher/tests/it/server_faults.rs`, look at the details of each.)

use std::time::{Duration, Instant};

use crate::run::{FaultRun, Own};

/// Waits until server `i` has taken more Originates than `than`; returns how long it took.
async fn until_dialing_on(run: &FaultRun, i: usize, than: u64, within: Duration) -> Duration {
    let started = Instant::now();
    while run.originates().await[i] <= than {
        assert!(
            started.elapsed() < within,
            "server {i} not dialed again within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// Server 0 gets `command` on its control port mid-batch; dialing must come back on it within
/// a minute while server 1 dials on, and the batch settle with nothing lost.
async fn first_server_fails(name: &str, command: &str, dialing_again: &str) {
    let mut run = FaultRun::start(name, Own::default()).await;
    run.submit(160).await;
    run.until_ended(10).await;
    let before = run.originates().await;
    let failed = Instant::now();
    assert!(
        run.sims[0].command(command).await.is_some(),
        "{command} refused"
    );
    let took = until_dialing_on(&run, 0, before[0], Duration::from_secs(60)).await;
    eprintln!("{name}: {dialing_again} {} ms after", took.as_millis());
    assert!(
        run.originates().await[1] > before[1],
        "the other server dialed meanwhile"
    );
    assert!(failed.elapsed() < Duration::from_secs(60));
    run.settle_and_check(Duration::from_secs(150)).await;
}

/// `restart` answers once the server accepts connections again: the time counts from then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asterisk_restart_mid_batch_ends_its_calls_and_dialing_resumes_on_it() {
    first_server_fails(
        "pbx-restart",
        "restart",
        "dialing on the restarted server again, after it was back,",
    )
    .await;
}

/// The stalled session stays stalled: the dispatcher must notice and open another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_ami_session_is_left_and_dialing_resumes_on_a_new_one() {
    first_server_fails(
        "pbx-stall",
        "stall",
        "dialing on a new session, after the old one stalled,",
    )
    .await;
}
