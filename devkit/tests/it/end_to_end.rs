//! End to end, as deployed: the real `dialer-api`, `dispatcher` and `callback-worker` binaries as
//! separate processes, two simulated Asterisk servers, two accounts with mixed outcomes and
//! retries. Account ALPHA is driven by this test over HTTP and its callback endpoint fails (503)
//! for its first seconds; account BRAVO is driven by the Python example client, and its callbacks
//! go to the Flask example receiver. Every call must reach a terminal state, every event must
//! reach its client at least once with valid signatures and in order per call, and each batch's
//! status must add up.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use dialer_api::ops::accounts::AccountUpdate;
use dialer_core::db;
use dialer_core::domain::CallStatus;
use dialer_core::test_support::TestEnv;
use dialer_devkit::api_client::ApiClient;

use dialer_devkit::{report, seed};

use crate::helpers::{
    batch_slice, by_label, python, repo_root, scrape, start_lean_services, two_demo_sims,
};

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Text)]
    event_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_end_to_end_with_the_example_clients() {
    let env = TestEnv::new().await;
    let (bins, logs, mut processes, sims) = two_demo_sims(&env, "e2e").await;
    let pool = db::build_pool(&env.config, "e2e").expect("pool");
    let settings = || AccountUpdate {
        ring_timeout_seconds: Some(3),
        calls_per_second: Some(20),
        max_concurrent_calls: Some(60),
        ..AccountUpdate::default()
    };
    // ALPHA's endpoint is down (503) for its first 6 seconds.
    let (alpha, alpha_receiver) =
        seed::account_with_receiver(&pool, "ALPHA", "US", settings(), Duration::from_secs(6))
            .await
            .expect("account ALPHA");

    // BRAVO's receiver: the Flask example, checking both signatures.
    let record = logs.join("bravo-callbacks.jsonl");
    let bravo = seed::account(&pool, "BRAVO", "US", settings())
        .await
        .expect("account BRAVO");
    let mut flask = tokio::process::Command::new(python())
        .arg(repo_root().join("examples/python/receiver.py"))
        .args(["--port", "0", "--verify", "both", "--quiet", "--record"])
        .arg(&record)
        .arg("--secret")
        .arg(&bravo.callback_secret)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(flask.stdout.take().expect("stdout")).lines();
    let flask_url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("the Flask receiver did not start (is flask installed? pip install -r examples/python/requirements.txt)");
    })
    .await
    .expect("Flask receiver within 20 s");
    seed::set_callback_url(&pool, "BRAVO", &format!("{flask_url}/callbacks"))
        .await
        .expect("BRAVO's callback URL");
    seed::servers(&pool, &sims, 60, 25).await.expect("servers");

    // Retries within the test's time, and an endpoint backed off only briefly.
    let extra = vec![
        (
            "DIALER_CALLBACK_RETRY_SCHEDULE".into(),
            "500ms,1s,2s,2s,3s,3s,3s,3s,3s,3s".into(),
        ),
        ("DIALER_CALLBACK_CIRCUIT_COOLDOWN_MS".into(), "1000".into()),
        (
            "DIALER_CALLBACK_CIRCUIT_MAX_COOLDOWN_MS".into(),
            "2000".into(),
        ),
    ];
    let services = start_lean_services(&bins, &mut processes, &env, extra).await;

    // ALPHA: 100 numbers, submitted and dispatched over HTTP by this test.
    let alpha_client = ApiClient::new(&services.api_url, &alpha.api_key);
    let alpha_batch = batch_slice(501, 0..100);
    let submitted = alpha_client
        .submit(&alpha_batch)
        .await
        .expect("submit ALPHA");
    assert_eq!(submitted["accepted"], 100, "{submitted}");
    alpha_client.dispatch(501).await.expect("dispatch ALPHA");

    // BRAVO: 100 other numbers, by the Python example client (submit, dispatch, poll to the end).
    let bravo_file = logs.join("bravo-batch.json");
    std::fs::write(&bravo_file, batch_slice(502, 100..200).to_string()).expect("write batch");
    let bravo_run = tokio::process::Command::new(python())
        .arg(repo_root().join("examples/python/client.py"))
        .args([
            "--base-url",
            &services.api_url,
            "--api-key",
            &bravo.api_key,
            "--batch",
        ])
        .arg(&bravo_file)
        .args(["--dispatch", "--poll-seconds", "1", "--timeout", "150"])
        .output();
    let bravo_run = tokio::time::timeout(Duration::from_secs(170), bravo_run)
        .await
        .expect("the Python client finishes")
        .expect("the Python client runs");
    assert!(
        bravo_run.status.success(),
        "client.py failed: {}\n{}",
        String::from_utf8_lossy(&bravo_run.stdout),
        String::from_utf8_lossy(&bravo_run.stderr)
    );

    // Wait for every event of both accounts to be delivered.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        processes.check_alive().expect("platform processes alive");
        let a = report::events(&pool, alpha.account.id)
            .await
            .expect("events");
        let b = report::events(&pool, bravo.account.id)
            .await
            .expect("events");
        let status = alpha_client.batch_status(501).await.expect("status");
        if status["batch_status"] == "completed"
            && a.written > 0
            && a.delivered == a.written
            && b.written > 0
            && b.delivered == b.written
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered: ALPHA {a:?} batch {}, BRAVO {b:?}; logs in {}",
            status["batch_status"],
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut conn = pool.get().await.expect("conn");
    for (account, client, batch_id) in [
        (&alpha, &alpha_client, 501),
        (
            &bravo,
            &ApiClient::new(&services.api_url, &bravo.api_key),
            502,
        ),
    ] {
        // Every call terminal, and the batch status adds up to what the database holds.
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT status, count(*) AS n FROM calls WHERE account_id = $1 GROUP BY status",
        )
        .bind::<BigInt, _>(account.account.id)
        .load(&mut conn)
        .await
        .expect("statuses");
        let by_status: BTreeMap<String, i64> = rows.into_iter().map(|r| (r.status, r.n)).collect();
        for s in by_status.keys() {
            let s: CallStatus = s.parse().expect("a known status");
            assert!(
                s.is_final(),
                "{} has a call still {s:?}",
                account.account.accountcode
            );
        }
        let status = client.batch_status(batch_id).await.expect("status");
        assert_eq!(status["batch_status"], "completed", "{status}");
        assert_eq!(status["total_calls"], 100);
        assert_eq!(status["pending_calls"], 0);
        let completed = status["completed_calls"].as_i64().expect("completed");
        let failed = status["failed_calls"].as_i64().expect("failed");
        assert_eq!(completed + failed, 100);
        assert_eq!(completed, by_status.get("completed").copied().unwrap_or(0));
        for (s, n) in &by_status {
            assert_eq!(
                status["counts"][s.as_str()],
                json!(n),
                "count of {s}: {status}"
            );
        }
        // Mixed outcomes, and retries happened.
        assert!(completed > 50 && failed > 5, "{status}");
        let attempts = report::attempts(&pool, account.account.id)
            .await
            .expect("attempts");
        assert!(
            attempts.retries() > 0,
            "no retry for {}",
            account.account.accountcode
        );
    }

    // ALPHA's receiver: every event, verified, in order per call, after a failing start.
    let alpha_events: HashSet<String> = event_ids(&mut conn, alpha.account.id).await;
    let got = alpha_receiver.snapshot();
    let got_ids: HashSet<String> = got.events.keys().cloned().collect();
    assert_eq!(
        got_ids, alpha_events,
        "ALPHA's events as received vs as written"
    );
    assert_eq!(got.bad_signatures, 0);
    assert_eq!(got.out_of_order, 0);
    assert!(got.refused > 0, "the endpoint never failed: no retry shown");
    for e in got.call_events() {
        assert_eq!(e.body["accountcode"], "ALPHA");
    }

    // BRAVO's receiver (Flask): every event verified, in order per call, nothing of ALPHA's.
    let bravo_events = event_ids(&mut conn, bravo.account.id).await;
    let text = std::fs::read_to_string(&record).expect("Flask receiver's record");
    let mut seen = HashSet::new();
    let mut highest: HashMap<String, i64> = HashMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("record line is JSON");
        assert_eq!(v["verified"], true);
        assert_eq!(v["accountcode"], "BRAVO");
        let id = v["event_id"].as_str().expect("event_id").to_owned();
        if !seen.insert(id) {
            continue;
        }
        if let (Some(call), Some(seq)) = (v["call_id"].as_str(), v["sequence"].as_i64()) {
            let h = highest.entry(call.to_owned()).or_insert(0);
            assert!(seq > *h, "call {call}: sequence {seq} after {h}");
            *h = seq;
        }
    }
    assert_eq!(
        seen, bravo_events,
        "BRAVO's events as received vs as written"
    );

    // The metrics agree with the tables: attempts ended by disposition (the dispatcher), and
    // deliveries by result (the worker).
    let dispatcher = scrape(&services.dispatcher_metrics_url).await;
    let outcomes = by_label(&dispatcher, "dialer_attempt_outcomes_total", "disposition");
    #[derive(diesel::QueryableByName)]
    struct ByDisposition {
        #[diesel(sql_type = Text)]
        disposition: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let written: Vec<ByDisposition> = diesel::sql_query(
        "SELECT disposition, count(*) AS n FROM call_attempts \
         WHERE state = 'ended' AND disposition IS NOT NULL GROUP BY disposition",
    )
    .load(&mut conn)
    .await
    .expect("attempts by disposition");
    let written: BTreeMap<String, f64> = written
        .into_iter()
        .map(|r| (r.disposition, r.n as f64))
        .collect();
    assert_eq!(outcomes, written, "{dispatcher}");
    let worker = scrape(&services.worker_metrics_urls[0]).await;
    let results = by_label(&worker, "dialer_callback_deliveries_total", "result");
    let delivered = alpha_events.len() + bravo_events.len();
    assert_eq!(
        results.get("delivered"),
        Some(&(delivered as f64)),
        "{worker}"
    );
    assert!(results.get("retry").is_some_and(|n| *n > 0.0), "{worker}");
    let answers = by_label(&worker, "dialer_callback_attempt_seconds_count", "answer");
    assert!(
        answers.get("2xx").is_some_and(|n| *n >= delivered as f64),
        "{worker}"
    );
    assert!(answers.get("5xx").is_some_and(|n| *n > 0.0), "{worker}");

    alpha_receiver.stop().await;
    let _ = flask.kill().await;
    processes.stop_all(Duration::from_secs(15)).await;
    drop(conn);
    drop(pool);
}

async fn event_ids(conn: &mut diesel_async::AsyncPgConnection, account_id: i64) -> HashSet<String> {
    let rows: Vec<EventRow> =
        diesel::sql_query("SELECT event_id FROM call_events WHERE account_id = $1")
            .bind::<BigInt, _>(account_id)
            .load(conn)
            .await
            .expect("events");
    rows.into_iter().map(|r| r.event_id).collect()
}
