//! A PBX that restarts or stalls mid-batch: new calls move to the other server, the calls lost
//! with it end with a clear terminal event, and nothing is dialed twice. And the platform's own
//! hang-up at an account's maximum call length.

use std::time::{Duration, Instant};

use crate::helpers::{self, World, ended_clearly, numbers};
use ami_sim::{OutcomeKind, Rule};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use dispatcher::Dispatcher;

#[derive(QueryableByName)]
struct PerServer {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn after(world: &World, since: chrono::DateTime<chrono::Utc>) -> Vec<(String, i64)> {
    let mut conn = world.conn().await;
    diesel::sql_query(
        "SELECT s.code, count(*) AS n FROM call_attempts t JOIN asterisk_servers s \
         ON s.id = t.server_id WHERE t.originated_at > $1 GROUP BY s.code ORDER BY s.code",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .load::<PerServer>(&mut conn)
    .await
    .expect("per server")
    .into_iter()
    .map(|r| (r.code, r.n))
    .collect()
}

/// The second server took calls after `since` (the first one's trouble).
async fn assert_ast2_dialed_since(world: &World, since: chrono::DateTime<chrono::Utc>) {
    let spread = after(world, since).await;
    assert!(
        spread.iter().any(|(code, n)| code == "ast2" && *n > 0),
        "{spread:?}"
    );
}

/// The account `ACME` (`cps` calls per second, `channels` at once) with a batch of `calls`
/// numbers and a dispatcher on it, once `dialed` calls were dialed: the numbers, the batch and the
/// dispatcher.
async fn dialing(
    world: &World,
    cps: i32,
    channels: i32,
    calls: usize,
    dialed: u64,
) -> (Vec<String>, i64, Dispatcher) {
    let account = world.account("ACME", cps, channels, "").await;
    let numbers = numbers(calls);
    let (batch, d) = world.batch_and_dispatcher(account, 1, &numbers).await;
    wait_dialed(world, dialed).await;
    (numbers, batch, d)
}

async fn wait_dialed(world: &World, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while world
        .sims
        .iter()
        .map(|s| s.stats().originates_total)
        .sum::<u64>()
        < n
    {
        assert!(Instant::now() < deadline, "dialing never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn check_final(world: &World, calls: &[helpers::CallRow], numbers: &[String]) {
    for c in calls {
        assert_eq!(c.attempts, 1, "{} attempts {}", c.phone_raw, c.attempts);
    }
    for n in numbers {
        let dialed: u64 = world
            .sims
            .iter()
            .map(|s| s.stats().originates_by_number.get(n).copied().unwrap_or(0))
            .sum();
        assert!(dialed <= 1, "{n} dialed {dialed} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarting_server_loses_its_calls_and_the_batch_moves_on() {
    let world = World::answering(2, 100, 3000, 30, 100).await;
    let (numbers, batch, d) = dialing(&world, 20, 100, 120, 30).await;
    // Every live channel on ast1 is gone (hangups, Shutdown, connection closed).
    world.sims[0].restart().await;
    let restarted = chrono::Utc::now();
    let calls = world.wait_final(batch, Duration::from_secs(90)).await;
    d.shutdown().await;
    check_final(&world, &calls, &numbers);
    // The calls that were up on ast1 ended with their events (hung up by the shutdown).
    for c in &calls {
        let last = world.last_event(c.id).await;
        assert!(ended_clearly(&last.event_type), "{}", last.event_type);
    }
    // After the restart both servers dialed again.
    assert_ast2_dialed_since(&world, restarted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_is_left_and_its_calls_end_clearly() {
    let world = World::answering(2, 100, 1000, 30, 100).await;
    let (numbers, batch, d) = dialing(&world, 20, 100, 200, 20).await;
    world.sims[0].stall();
    let stalled = chrono::Utc::now();
    let calls = world.wait_final(batch, Duration::from_secs(120)).await;
    d.shutdown().await;
    check_final(&world, &calls, &numbers);
    // Calls whose events were lost in the stall end `unknown` with a reason, never retried.
    for c in calls.iter().filter(|c| c.status == "timeout") {
        let body: serde_json::Value =
            serde_json::from_str(&world.last_event(c.id).await.body).expect("json");
        assert_eq!(body["disposition"], "unknown");
        assert!(
            body["error_message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_ast2_dialed_since(&world, stalled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_past_the_maximum_length_is_hung_up_as_timeout() {
    let world = World::answering(1, 50, 60_000, 30, 100).await;
    let account = world.account("ACME", 20, 10, "max_call_seconds = 1").await;
    let call = world
        .dial_one(account, "+15550000001", Duration::from_secs(20))
        .await;
    assert_eq!(call.status, "timeout");
    assert_eq!(call.disposition.as_deref(), Some("answered"));
    let events = world.events(call.id).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["call_started", "call_answered", "call_timeout"]);
    let body: serde_json::Value = serde_json::from_str(&events[2].body).expect("json");
    assert!(
        body["duration"]
            .as_i64()
            .is_some_and(|d| (1..=3).contains(&d)),
        "{body}"
    );
    assert_eq!(
        world.sims[0].current_channels(),
        0,
        "the PBX channel was hung up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_failing_to_create_channels_is_backed_off_then_recovers() {
    let rules = vec![
        Rule::timed("+1555*", OutcomeKind::Unreachable, 0, 0),
        Rule::timed("+1666*", OutcomeKind::Answered, 0, 100),
    ];
    let world = World::new(1, rules, 50, 100).await;
    let account = world.account("ACME", 50, 50, "").await;
    let failing = numbers(30);
    world.batch(account, 1, &failing).await;
    let d = world.start().await;
    let factor = |d: &Dispatcher| d.capacity_factors().into_iter().next().map_or(1.0, |f| f.1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while factor(&d) >= 1.0 {
        assert!(
            Instant::now() < deadline,
            "no back-off after channel failures"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let low = factor(&d);
    assert!(low <= 0.5, "{low}");
    // Healthy calls from now on: the factor climbs back by itself.
    let healthy: Vec<String> = (0..400).map(|i| format!("+1666{i:07}")).collect();
    world.batch(account, 2, &healthy).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while factor(&d) <= low {
        assert!(
            Instant::now() < deadline,
            "no recovery while healthy ({low})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.shutdown().await;
}

#[derive(QueryableByName)]
struct AttemptEnd {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    disposition: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    error_message: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_for_their_slot_across_a_reconnect_are_dialed_once_and_followed() {
    let world = World::answering(1, 0, 3000, 100, 100).await;
    // Two calls per second: the first claim takes 20 calls whose slots span ten seconds.
    let (numbers, batch, d) = dialing(&world, 2, 50, 20, 3).await;
    // The connection drops with most claimed calls still waiting for their slot; the calls up
    // (talking 3 s) are still there when it comes back.
    world.sims[0].drop_connections();
    let calls = world.wait_final(batch, Duration::from_secs(60)).await;
    d.shutdown().await;
    check_final(&world, &calls, &numbers);
    let stats = world.sims[0].stats();
    let mut conn = world.conn().await;
    let attempts: Vec<AttemptEnd> = diesel::sql_query(
        "SELECT t.id, t.disposition, t.error_message FROM call_attempts t \
         JOIN calls c ON c.id = t.call_pk WHERE c.batch_pk = $1",
    )
    .bind::<BigInt, _>(batch)
    .load(&mut conn)
    .await
    .expect("attempts");
    // The Originates whose slot came while the connection was down were not placed: their
    // attempts were undone and the calls dialed once it was back. One attempt each, each
    // dialed exactly once, and never `unknown` (every call up at the reconnect was still up).
    assert_eq!(attempts.len(), 20);
    let mut dialed = 0;
    let mut wrong = Vec::new();
    for a in &attempts {
        let sent = stats
            .originates_by_channel_id
            .get(&a.id.to_string())
            .copied()
            .unwrap_or(0);
        if a.disposition.as_deref() != Some("answered") || sent != 1 {
            wrong.push((sent, a.disposition.clone(), a.error_message.clone()));
        }
        dialed += sent;
    }
    assert!(
        wrong.is_empty(),
        "{} of 20 attempts recorded wrongly (originates, disposition, error): {wrong:#?}",
        wrong.len()
    );
    assert_eq!(stats.originates_total, dialed);
    assert_eq!(dialed, 20);
}

/// One simulator whose restart refuses Originates for `shutting_ms` ("Asterisk is shutting
/// down", connection still up), then is down for `down_ms`: `+1555` answers, `+1777` is a
/// route the running PBX cannot reach (`Reason 0`, no channel).
async fn restarting_world(shutting_ms: u64, down_ms: u64) -> World {
    let sim = ami_sim::SimConfig {
        rules: vec![
            Rule::timed("+1555*", OutcomeKind::Answered, 0, 200),
            Rule::timed("+1777*", OutcomeKind::Unreachable, 0, 0),
        ],
        shutdown_event_delay_ms: shutting_ms,
        restart_downtime_ms: down_ms,
        ..ami_sim::SimConfig::default()
    };
    World::with_sims(1, sim, 100, 100, "PJSIP/{number}@trunk").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_not_placed_during_a_pbx_restart_are_placed_once_it_is_back() {
    let world = restarting_world(1000, 1500).await;
    let account = world.account("ACME", 10, 100, "").await;
    let answering: Vec<String> = (0..50).map(|i| format!("+1555{i:07}")).collect();
    let unreachable: Vec<String> = (0..10).map(|i| format!("+1777{i:07}")).collect();
    let all: Vec<String> = answering
        .iter()
        .zip(unreachable.iter().chain(std::iter::repeat(&String::new())))
        .flat_map(|(a, u)| [a.clone(), u.clone()])
        .filter(|n| !n.is_empty())
        .collect();
    let (batch, d) = world.batch_and_dispatcher(account, 1, &all).await;
    wait_dialed(&world, 15).await;
    // Originates keep coming at their slots while it shuts down, then while it is gone.
    world.sims[0].restart().await;
    let calls = world.wait_final(batch, Duration::from_secs(60)).await;
    d.shutdown().await;
    let stats = world.sims[0].stats();
    assert!(
        stats.outcomes.get("shutting_down").copied().unwrap_or(0) > 0,
        "no Originate was refused as shutting down: {:?}",
        stats.outcomes
    );
    let mut wrong = Vec::new();
    for c in &calls {
        let want = if c.phone_raw.starts_with("+1555") {
            ("completed", "answered")
        } else {
            ("failed", "unreachable")
        };
        let placed = stats
            .originates_by_number
            .get(&c.phone_raw)
            .copied()
            .unwrap_or(0);
        let got = (c.status.as_str(), c.disposition.as_deref().unwrap_or(""));
        // Placed exactly once, one attempt, its real outcome.
        if got != want || c.attempts != 1 || placed != 1 {
            let last = world.last_event(c.id).await;
            wrong.push((c.phone_raw.clone(), placed, c.attempts, last.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} calls wrong (number, placed, attempts, last event): {wrong:#?}",
        wrong.len(),
        calls.len()
    );
    // Each attempt has exactly one terminal event and nothing was said of the ones not placed.
    for c in &calls {
        let types = world.event_types(c.id).await;
        let terminal = types
            .iter()
            .filter(|t| !matches!(t.as_str(), "call_started" | "call_answered"))
            .count();
        assert_eq!(terminal, 1, "{}: {types:?}", c.phone_raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_not_placed_expire_with_their_batch_while_the_pbx_is_away() {
    let world = restarting_world(500, 5000).await;
    let account = world.account("ACME", 5, 100, "").await;
    let numbers: Vec<String> = (0..30).map(|i| format!("+1555{i:07}")).collect();
    let batch = world.batch(account, 1, &numbers).await;
    world
        .update_batch(batch, "expires_at = now() + interval '3 seconds'")
        .await;
    let d = world.start().await;
    wait_dialed(&world, 5).await;
    world.sims[0].restart().await;
    let calls = world.wait_final(batch, Duration::from_secs(60)).await;
    d.shutdown().await;
    let stats = world.sims[0].stats();
    let mut expired = 0;
    for c in &calls {
        let placed = stats
            .originates_by_number
            .get(&c.phone_raw)
            .copied()
            .unwrap_or(0);
        match (c.status.as_str(), placed) {
            ("completed", 1) => {}
            ("expired", 0) => expired += 1,
            other => {
                let last = world.last_event(c.id).await;
                panic!("{}: {other:?}, {}", c.phone_raw, last.body);
            }
        }
    }
    assert!(expired > 0, "the PBX was away past expires_at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_reports_each_server_s_state_every_second() {
    let world = World::answering(1, 100, 1000, 30, 100).await;
    let d = world.start().await;
    let fresh = format!(
        "SELECT count(*) AS n FROM server_status WHERE holder = '{}' \
         AND reported_at > now() - interval '3 seconds'",
        d.id()
    );
    let wait_for = async |condition: &str, what: &str| {
        let sql = format!("{fresh} AND {condition}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while world.count(&sql).await != 1 {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    wait_for(
        "connected AND NOT draining AND capacity_factor = 1 AND live_calls = 0",
        "the server reported connected",
    )
    .await;
    // The PBX goes away and refuses to take the dispatcher back: reported as not connected.
    world.sims[0].refuse_logins(true);
    world.sims[0].drop_connections();
    wait_for("NOT connected", "the server reported disconnected").await;
    world.sims[0].refuse_logins(false);
    wait_for("connected", "the server reported connected again").await;
    d.shutdown().await;
}
