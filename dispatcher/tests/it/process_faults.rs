//! Faults of the dispatcher's own process: stopped (`kill -STOP`) while its calls go on at the
//! PBX, then continued. What the PBX said meanwhile waits in the socket and decides the calls'
//! outcomes, not the timers that ran out during the stop.

use std::process::{Child, Command};
use std::time::Duration;

use ami_sim::{OutcomeKind, Rule};

use crate::helpers::World;

/// The dispatcher binary, killed when the test ends however it ends.
struct Process(Child);

impl Process {
    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_ended_while_the_dispatcher_was_stopped_end_with_their_real_outcome() {
    let rules = vec![
        Rule::timed("+1555*", OutcomeKind::Answered, 200, 1500),
        Rule::timed("+1666*", OutcomeKind::Busy, 500, 0),
    ];
    let world = World::new(1, rules, 100, 100).await;
    // A maximum call length of 3 s: the answered calls that end during the stop are past it
    // when the process runs again, before their hangups are read.
    let account = world.account("ACME", 20, 100, "max_call_seconds = 3").await;
    let answered: Vec<String> = (0..20).map(|i| format!("+1555{i:07}")).collect();
    let busy: Vec<String> = (0..20).map(|i| format!("+1666{i:07}")).collect();
    let all: Vec<String> = answered.iter().chain(&busy).cloned().collect();
    let batch = world.batch(account, 1, &all).await;
    let dispatcher = Process(world.spawn_dispatcher("stopped", "30", ""));
    world
        .wait_originates(all.len() as u64, 30, 20, "the batch was never dialed")
        .await;
    // Longer than the AMI keepalive window (3 s + 3 s) and the maximum call length: every call
    // ends at the PBX while the dispatcher cannot read a byte.
    dispatcher.signal("-STOP");
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        world.sims[0].current_channels(),
        0,
        "the calls ended meanwhile"
    );
    dispatcher.signal("-CONT");
    let calls = world.wait_final(batch, Duration::from_secs(30)).await;
    drop(dispatcher);
    let mut wrong = Vec::new();
    for c in &calls {
        let want = if c.phone_raw.starts_with("+1555") {
            ("completed", "answered")
        } else {
            ("busy", "busy")
        };
        let got = (c.status.as_str(), c.disposition.as_deref().unwrap_or(""));
        if got != want || c.attempts != 1 {
            let last = world.last_event(c.id).await;
            wrong.push((c.phone_raw.clone(), got.0.to_string(), last.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} calls did not end as the PBX said: {wrong:#?}",
        wrong.len(),
        calls.len()
    );
    assert_eq!(world.sims[0].stats().originates_total, all.len() as u64);
}
