//! The send gate's groups: attempts that ask within a window share one statement, sent when
//! the first of them must be confirmed, and one already due is not held back.

use std::time::{Duration, Instant};

use dialer_core::db;
use dialer_core::test_support::TestEnv;
use dispatcher::send_gate::SendGate;
use uuid::Uuid;

/// When each of `asks` (asked this long after the start, to be confirmed this long after it at
/// the latest) was answered, after the start.
async fn answered_at(gate: &SendGate, asks: &[(u64, u64)]) -> Vec<Duration> {
    let start = Instant::now();
    let tasks: Vec<_> = asks
        .iter()
        .map(|&(ask, by)| {
            let gate = gate.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until((start + Duration::from_millis(ask)).into()).await;
                // Attempts no one claimed: never confirmed, but asked for all the same.
                let confirmed = gate
                    .confirm(Uuid::new_v4(), start + Duration::from_millis(by))
                    .await;
                assert!(!confirmed, "an attempt never claimed was confirmed");
                start.elapsed()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("ask"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_asking_within_the_window_share_the_first_ones_statement() {
    let env = TestEnv::new().await;
    let pool = db::build_pool(&env.config, "gate-test").expect("pool");
    let gate = SendGate::start(pool, "gate-test".into());
    // Warm the connection: the first statement also opens it.
    answered_at(&gate, &[(0, 0)]).await;

    // A asks at 0 for 400 ms, B at 150 ms for 550 ms: one statement at 400 ms answers both.
    let at = answered_at(&gate, &[(0, 400), (150, 550)]).await;
    let (a, b) = (at[0], at[1]);
    assert!(
        a >= Duration::from_millis(390),
        "A was not held for company: answered at {a:?}"
    );
    assert!(
        b < Duration::from_millis(540),
        "B waited for its own deadline: answered at {b:?}, A at {a:?}"
    );
    let apart = a.abs_diff(b);
    assert!(
        apart < Duration::from_millis(100),
        "A and B were not confirmed together: {a:?} and {b:?}"
    );

    // One already due goes at once, whatever waits beside it.
    let at = answered_at(&gate, &[(0, 0)]).await;
    assert!(
        at[0] < Duration::from_millis(300),
        "a due attempt was held back: answered at {:?}",
        at[0]
    );
}
