//! The PBX failing under a running batch, through the real binaries: one of the two simulated
//! Asterisk servers restarts (`core stop now`, as recorded: every call hung up, `Shutdown`,
//! connections closed, back shortly), or its AMI session stalls without closing (nothing read
//! or written; new connections work). Calls in flight on it end as the contract says, the other
//! server dials throughout, the dispatcher comes back to the failed one and dials on it again;
//! nothing lost, dialed twice or stuck. (The dispatcher's in-process tests of the same faults,
//! `dispatcher/tests/it/server_faults.rs`, look at the details of each.)

use std::time::{Duration, Instant};

use crate::run::{FaultRun, Own};

/// Originates each simulated server has taken so far.
async fn originates(run: &FaultRun) -> Vec<u64> {
    let mut all = Vec::new();
    for sim in &run.sims {
        all.push(sim.stats().await["originates_total"].as_u64().unwrap_or(0));
    }
    all
}

/// Waits until server `i` has taken more Originates than `than`; returns how long it took.
async fn until_dialing_on(run: &FaultRun, i: usize, than: u64, within: Duration) -> Duration {
    let started = Instant::now();
    while originates(run).await[i] <= than {
        assert!(
            started.elapsed() < within,
            "server {i} not dialed again within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asterisk_restart_mid_batch_ends_its_calls_and_dialing_resumes_on_it() {
    let mut run = FaultRun::start("pbx-restart", Own::default()).await;
    run.submit(160).await;
    run.until_ended(10).await;
    let before = originates(&run).await;
    assert!(
        run.sims[0].command("restart").await.is_some(),
        "restart refused"
    );
    let took = until_dialing_on(&run, 0, before[0], Duration::from_secs(60)).await;
    eprintln!(
        "pbx-restart: dialing on the restarted server again {} ms after it was back",
        took.as_millis()
    );
    assert!(
        originates(&run).await[1] > before[1],
        "the other server dialed meanwhile"
    );
    run.settle_and_check(Duration::from_secs(150)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_ami_session_is_left_and_dialing_resumes_on_a_new_one() {
    let mut run = FaultRun::start("pbx-stall", Own::default()).await;
    run.submit(160).await;
    run.until_ended(10).await;
    let before = originates(&run).await;
    let stalled = Instant::now();
    assert!(
        run.sims[0].command("stall").await.is_some(),
        "stall refused"
    );
    // The stalled session stays stalled: the dispatcher must notice and open another.
    let took = until_dialing_on(&run, 0, before[0], Duration::from_secs(60)).await;
    eprintln!(
        "pbx-stall: dialing on a new session {} ms after the old one stalled",
        took.as_millis()
    );
    assert!(
        originates(&run).await[1] > before[1],
        "the other server dialed meanwhile"
    );
    assert!(stalled.elapsed() < Duration::from_secs(60));
    run.settle_and_check(Duration::from_secs(150)).await;
}
