//! Every outcome through the whole dispatcher: dial jobs from RabbitMQ, claims in PostgreSQL,
//! Originates on a simulated Asterisk, events written with their call's state.

use std::time::Duration;

use crate::helpers::World;
use ami_sim::{OutcomeKind, Rule};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_gives_the_contracts_events_and_dispositions() {
    let rules = vec![
        Rule::timed("+1555000001", OutcomeKind::Answered, 100, 1200),
        Rule::timed("+1555000002", OutcomeKind::Busy, 100, 0),
        Rule::timed("+1555000003", OutcomeKind::NoAnswer, 0, 0),
        Rule::timed("+1555000004", OutcomeKind::Congestion, 100, 0),
        Rule::timed("+1555000005", OutcomeKind::NotFound, 100, 0),
        Rule::timed("+1555000006", OutcomeKind::Decline, 100, 0),
        Rule::timed("+1555000007", OutcomeKind::Unreachable, 0, 0),
    ];
    let world = World::new(1, rules, 50, 100).await;
    let account = world.account("ACME", 50, 20, "").await;
    let numbers: Vec<String> = (1..=7).map(|i| format!("+155500000{i}")).collect();
    let (batch, d) = world.batch_and_dispatcher(account, 42, &numbers).await;
    let calls = world.wait_final(batch, Duration::from_secs(40)).await;

    let want: [(&str, &str, &[&str]); 7] = [
        (
            "completed",
            "answered",
            &["call_started", "call_answered", "call_completed"],
        ),
        ("busy", "busy", &["call_started", "call_busy"]),
        (
            "no_answer",
            "no_answer",
            &["call_started", "call_no_answer"],
        ),
        ("failed", "congestion", &["call_started", "call_failed"]),
        ("failed", "invalid_number", &["call_started", "call_failed"]),
        ("failed", "rejected", &["call_started", "call_failed"]),
        ("failed", "unreachable", &["call_failed"]),
    ];
    for (call, (status, disposition, events)) in calls.iter().zip(want) {
        assert_eq!(call.status, status, "{}", call.phone_raw);
        assert_eq!(
            call.disposition.as_deref(),
            Some(disposition),
            "{}",
            call.phone_raw
        );
        assert_eq!(call.attempts, 1);
        let rows = world.events(call.id).await;
        let types: Vec<&str> = rows.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, events, "{}", call.phone_raw);
        for (i, e) in rows.iter().enumerate() {
            assert_eq!(e.sequence, Some(i as i32 + 1));
            let body: serde_json::Value = serde_json::from_str(&e.body).expect("json body");
            assert_eq!(body["phone_number"], call.phone_raw.as_str());
            assert_eq!(body["sequence"], i + 1);
            assert_eq!(body["attempt"], 1);
            assert_eq!(body["custom_data"]["n"], call.phone_raw.as_str());
            assert_eq!(body["server_code"], "ast1");
        }
        let last: serde_json::Value =
            serde_json::from_str(&rows.last().expect("events").body).expect("json");
        assert_eq!(last["disposition"], disposition);
        assert_eq!(last["will_retry"], false);
        if status == "completed" {
            // Talk time 1.2 s: whole seconds from answer to hang-up.
            assert_eq!(last["duration"], 1);
            assert!(last["answer_time"].is_string());
        } else {
            assert_eq!(last["duration"], 0);
        }
        if disposition == "unreachable" {
            assert!(last["error_message"].is_string());
        }
    }
    // Each number dialed exactly once.
    let stats = world.sims[0].stats();
    assert_eq!(stats.originates_total, 7);
    assert!(stats.originates_by_number.values().all(|n| *n == 1));
    d.shutdown().await;
}
