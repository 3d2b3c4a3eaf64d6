//! Dialing rules through the whole dispatcher: retries, do-not-call added after submission,
//! calling hours, expiry, pause, and `Local/` channel templates.

use std::time::Duration;

use crate::helpers::World;
use ami_sim::{OutcomeKind, Rule};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::RunQueryDsl;

fn rules() -> Vec<ami_sim::Rule> {
    vec![
        Rule::timed("+1555000*", OutcomeKind::Answered, 50, 300),
        Rule::timed("+1555111*", OutcomeKind::Busy, 50, 0),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_is_retried_by_the_policy_with_attempt_counted() {
    let world = World::new(1, rules(), 50, 100).await;
    let account = world
        .account(
            "ACME",
            50,
            20,
            "max_attempts = 2, retry_delay_seconds = 1, retry_on = '{busy}'",
        )
        .await;
    let call = world
        .dial_one(account, "+15551110001", Duration::from_secs(40))
        .await;
    assert_eq!(call.status, "busy");
    assert_eq!(call.attempts, 2);
    let events = world.events(call.id).await;
    let summary: Vec<(String, i64, bool)> = events
        .iter()
        .map(|e| {
            let b: serde_json::Value = serde_json::from_str(&e.body).expect("json");
            (
                e.event_type.clone(),
                b["attempt"].as_i64().unwrap_or(0),
                b["will_retry"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("call_started".to_string(), 1, false),
            ("call_busy".to_string(), 1, true),
            ("call_started".to_string(), 2, false),
            ("call_busy".to_string(), 2, false),
        ]
    );
    assert_eq!(
        world.sims[0].stats().originates_by_number["+15551110001"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_call_expiry_and_destination_rules_end_calls_undialed() {
    let world = World::new(1, rules(), 50, 100).await;
    let account = world.account("ACME", 50, 20, "").await;
    let numbers = [
        "+15550000001".to_string(),
        "+15550000002".to_string(),
        "+15550000003".to_string(),
        "+445550000004".to_string(),
    ];
    let batch = world.batch(account, 1, &numbers).await;
    // Added after submission, before dialing: global and per-account lists.
    world
        .exec(&format!(
            "INSERT INTO dnc_numbers (account_id, phone_e164) VALUES (NULL, '+15550000001'), \
             ({account}, '+15550000002'); \
             UPDATE accounts SET allowed_countries = '{{US}}' WHERE id = {account}; \
             UPDATE calls SET phone_region = 'GB' WHERE phone_e164 = '+445550000004'"
        ))
        .await;
    let expired = world.batch(account, 2, &["+15550000009".to_string()]).await;
    world
        .update_batch(expired, "expires_at = now() - interval '1 minute'")
        .await;
    let d = world.start().await;
    let calls = world.wait_final(batch, Duration::from_secs(30)).await;
    let exp = world.wait_final(expired, Duration::from_secs(30)).await;
    d.shutdown().await;
    let got: Vec<(&str, Option<&str>)> = calls
        .iter()
        .map(|c| (c.status.as_str(), c.disposition.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("skipped", Some("do_not_call")),
            ("skipped", Some("do_not_call")),
            ("completed", Some("answered")),
            ("skipped", Some("destination_not_allowed")),
        ]
    );
    assert_eq!(exp[0].status, "expired");
    assert_eq!(world.events(exp[0].id).await[0].event_type, "call_expired");
    let skipped = world.events(calls[0].id).await;
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].event_type, "call_skipped");
    let stats = world.sims[0].stats();
    assert_eq!(
        stats.originates_total, 1,
        "only the allowed number was dialed"
    );
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    next_due_at: Option<chrono::DateTime<chrono::Utc>>,
    #[diesel(sql_type = BigInt)]
    jobs_out: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_calling_hours_a_call_waits_in_the_database_and_is_not_dialed() {
    let world = World::new(1, rules(), 50, 100).await;
    // A window that opens two hours from now (UTC account, US number: several zones).
    let now = chrono::Utc::now();
    let start = (now + chrono::Duration::hours(2))
        .format("%H:%M")
        .to_string();
    let end = (now + chrono::Duration::hours(3))
        .format("%H:%M")
        .to_string();
    let account = world
        .account(
            "ACME",
            50,
            20,
            &format!(
                "timezone = 'UTC', calling_hours = '{{\"start\": \"{start}\", \"end\": \"{end}\"}}'"
            ),
        )
        .await;
    let (batch, d) = world
        .batch_and_dispatcher(account, 1, &["+15550000001".to_string()])
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    d.shutdown().await;
    assert_eq!(world.sims[0].stats().originates_total, 0);
    let calls = world.calls(batch).await;
    assert_eq!(calls[0].status, "scheduled", "waiting, not failed");
    let mut conn = world.conn().await;
    let due: Due = diesel::sql_query(
        "SELECT c.next_due_at, (SELECT count(*) FROM dial_jobs j WHERE j.call_pk = c.id \
         AND j.published_at IS NULL) AS jobs_out FROM calls c WHERE c.id = $1",
    )
    .bind::<BigInt, _>(calls[0].id)
    .get_result(&mut conn)
    .await
    .expect("due");
    let next = due.next_due_at.expect("a due time");
    let opens = now + chrono::Duration::hours(2);
    assert!(
        (next - opens).num_seconds().abs() <= 60,
        "due at {next}, window opens {opens}"
    );
    assert_eq!(
        due.jobs_out, 0,
        "the job is not bounced through RabbitMQ meanwhile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redial_window_holds_a_second_call_to_a_number_at_dial_time() {
    let world = World::new(1, rules(), 50, 100).await;
    let account = world
        .account("ACME", 50, 20, "redial_window_hours = 24")
        .await;
    // Two batches with the same number, both accepted before either was dialed (the check at
    // submission saw no dial yet), and a third number once.
    let number = "+15550000001".to_string();
    let first = world
        .batch(account, 1, &[number.clone(), "+15550000002".to_string()])
        .await;
    let second = world.batch(account, 2, std::slice::from_ref(&number)).await;
    let d = world.start().await;
    world
        .wait_originates(2, 20, 100, "two distinct numbers")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.shutdown().await;
    assert_eq!(
        world.sims[0].stats().originates_total,
        2,
        "the number is dialed once"
    );
    let mut calls = world.calls(first).await;
    calls.extend(world.calls(second).await);
    let waiting: Vec<_> = calls.iter().filter(|c| c.status == "scheduled").collect();
    assert_eq!(waiting.len(), 1, "{calls:?}");
    assert_eq!(waiting[0].phone_raw, number);
    let held_for = world
        .count(&format!(
            "SELECT extract(epoch FROM next_due_at - now())::bigint AS n FROM calls WHERE id = {}",
            waiting[0].id
        ))
        .await;
    assert!(
        (23 * 3600..=24 * 3600).contains(&held_for),
        "held until the window ends: {held_for} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_batch_is_not_dialed() {
    let world = World::new(1, rules(), 50, 100).await;
    let account = world.account("ACME", 50, 20, "").await;
    let batch = world.batch(account, 1, &["+15550000001".to_string()]).await;
    world.update_batch(batch, "status = 'paused'").await;
    let d = world.start().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.sims[0].stats().originates_total, 0);
    assert_eq!(world.calls(batch).await[0].status, "scheduled");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_channel_templates_map_like_trunks() {
    let world = World::with_template(1, rules(), 50, 100, "Local/{number}@dialer-sim").await;
    let account = world.account("ACME", 50, 20, "").await;
    let numbers = ["+15550000001".to_string(), "+15551110002".to_string()];
    let calls = world
        .dial_to_end(account, &numbers, Duration::from_secs(30))
        .await;
    assert_eq!(
        (calls[0].status.as_str(), calls[1].status.as_str()),
        ("completed", "busy")
    );
    let types = world.event_types(calls[0].id).await;
    assert_eq!(types, ["call_started", "call_answered", "call_completed"]);
}
