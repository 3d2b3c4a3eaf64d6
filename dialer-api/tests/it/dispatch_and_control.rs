//! dispatch-calls with RabbitMQ (each call published once), pause/resume/cancel, batch status
//! (counts, filter, pagination, CSV), call detail, tenant isolation.

use crate::helpers::{TestApp, assert_fields, drain_dial_queue, outcome_sql};
use serde_json::{Value, json};

fn rows(from: u64, n: u64) -> Vec<Value> {
    (from..from + n)
        .map(|i| json!({"phone_number": format!("98765{:05}", i)}))
        .collect()
}

#[tokio::test]
async fn dispatch_twice_publishes_each_call_once() {
    let (app, acme) = TestApp::with_account("ACME").await;
    acme.insert_rows(1, rows(0, 3)).await;
    acme.insert_rows(2, rows(100, 2)).await;

    // empty body with Content-Type: application/json is allowed
    let r = acme.dispatch(None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"status": "success", "dispatched": 5, "batches": [1, 2]})
    );
    let r = acme.dispatch(None).await;
    assert_eq!(
        r.json(),
        json!({"status": "success", "dispatched": 0, "batches": []})
    );

    let jobs = drain_dial_queue(&app).await;
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    let mut calls: Vec<i64> = jobs.iter().map(|j| j.call_pk).collect();
    calls.sort();
    calls.dedup();
    assert_eq!(calls.len(), 5, "a call was published twice");
    assert!(jobs.iter().all(|j| j.attempt == 1));

    let s = acme.get("/api/v1/queues/batch-status/1").await.json();
    assert_eq!(s["batch_status"], "dispatching");
    assert_eq!(s["counts"]["scheduled"], 3);
    assert_eq!(s["counts"]["queued"], 0);
    assert_eq!(
        s["waiting_reason"],
        "no PBX connected (none enabled: dialerctl server add / enable)"
    );
    app.sql("INSERT INTO asterisk_servers (code, host, username, secret, max_channels, max_cps, channel_template)
             VALUES ('ast1', '127.0.0.1', 'u', 's', 10, 5, 'PJSIP/{number}@trunk')")
        .await;
    let reason =
        async || acme.get("/api/v1/queues/batch-status/1").await.json()["waiting_reason"].clone();
    // Enabled, but no dispatcher reports on it (holders write server_status every second).
    assert_eq!(reason().await, "no PBX connected (no dispatcher running)");
    app.sql("INSERT INTO server_status (server_id, holder, connected, draining, capacity_factor, live_calls)
             SELECT id, 'd1', false, false, 1, 0 FROM asterisk_servers")
        .await;
    assert_eq!(reason().await, "no PBX connected (reconnecting to ast1)");
    app.sql("UPDATE server_status SET connected = true").await;
    assert_eq!(reason().await, Value::Null);
    // A report a minute old: its dispatcher is gone.
    app.sql("UPDATE server_status SET reported_at = now() - interval '1 minute'")
        .await;
    assert_eq!(reason().await, "no PBX connected (no dispatcher running)");
}

#[tokio::test]
async fn dispatch_one_batch_and_its_errors() {
    let (app, acme) = TestApp::with_account("ACME").await;
    acme.insert_rows(1, rows(0, 2)).await;
    acme.insert_rows(2, rows(10, 1)).await;
    let r = acme.dispatch(Some(&json!({"batch_id": 2}))).await;
    assert_eq!(
        r.json(),
        json!({"status": "success", "dispatched": 1, "batches": [2]})
    );
    assert_eq!(drain_dial_queue(&app).await.len(), 1);

    let r = acme.dispatch(Some(&json!({"batch_id": 99}))).await;
    r.assert_error(404, "not_found");
    let r = acme.dispatch(Some(&json!({"batch_id": "x"}))).await;
    r.assert_error(400, "invalid_request");
    // a misspelt field would otherwise dispatch every batch of the account
    let r = acme.dispatch(Some(&json!({"batchid": 2}))).await;
    r.assert_refused(400, "invalid_request", "unknown field `batchid`");
    let r = acme
        .post_json_text("/api/v1/controls/dispatch-calls", "{oops")
        .await;
    r.assert_error(400, "invalid_request");

    acme.control(1, "pause").await;
    let r = acme.dispatch(Some(&json!({"batch_id": 1}))).await;
    r.assert_error(409, "batch_paused");
    // without a batch, paused batches are left out
    let r = acme.dispatch(None).await;
    assert_eq!(r.json()["dispatched"], 0);
    acme.control(1, "cancel").await;
    let r = acme.dispatch(Some(&json!({"batch_id": 1}))).await;
    r.assert_error(409, "batch_closed");
}

#[tokio::test]
async fn auto_dispatch_batch_dials_without_a_dispatch_call() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let r = acme
        .insert(&json!({"batch_id": 4, "dispatch": true, "data": rows(0, 2)}))
        .await;
    assert_eq!(r.json()["dispatched"], 2, "{}", r.text);
    assert_eq!(drain_dial_queue(&app).await.len(), 2);
}

#[tokio::test]
async fn pause_resume_cancel() {
    let (app, acme) = TestApp::with_account("ACME").await;
    acme.insert_rows(1, rows(0, 4)).await;
    acme.dispatch(None).await;
    assert_eq!(drain_dial_queue(&app).await.len(), 4);
    // one call is in progress, one finished: cancel must leave both alone
    app.sql("UPDATE calls SET status = 'answered', attempts = 1 WHERE id = (SELECT min(id) FROM calls);
             UPDATE calls SET status = 'completed', attempts = 1, finished_at = now() WHERE id = (SELECT min(id) + 1 FROM calls)")
        .await;

    let r = acme.control(1, "pause").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        (v["status"].clone(), v["batch_status"].clone()),
        (json!("success"), json!("paused"))
    );
    assert!(
        v["waiting_reason"]
            .as_str()
            .unwrap_or("")
            .contains("paused")
    );
    assert_eq!(
        acme.control(1, "pause").await.json()["batch_status"],
        "paused"
    );

    // resume re-arms the scheduled calls' jobs, so dialing continues without a dispatch
    let v = acme.control(1, "resume").await.json();
    assert_eq!(v["batch_status"], "dispatching");
    assert_eq!(
        drain_dial_queue(&app).await.len(),
        2,
        "the two undialed calls are republished"
    );

    let v = acme.control(1, "cancel").await.json();
    assert_eq!(v["batch_status"], "cancelled");
    assert_eq!(v["counts"]["cancelled"], 2);
    assert_eq!(v["counts"]["answered"], 1);
    assert_eq!(v["counts"]["completed"], 1);
    assert_fields(
        &v,
        &[
            ("total_calls", json!(4)),
            ("completed_calls", json!(1)),
            ("failed_calls", json!(2)),
            ("pending_calls", json!(1)),
        ],
    );

    // one call_cancelled event per undialed call, with the callback body
    let s = acme.batch_status(1, "status=cancelled").await;
    let calls = s["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 2);
    for c in &calls {
        assert_eq!(c["event_type"], "call_cancelled");
        assert_eq!(c["call_status"], "cancelled");
        assert_eq!(c["accountcode"], "ACME");
        assert_eq!(c["batch_id"], 1);
        assert_eq!(c["sequence"], 1);
        assert!(c["event_id"].as_str().unwrap_or("").starts_with("evt_"));
    }
    // cancel is idempotent and writes no second event
    acme.control(1, "cancel").await;
    let call_id = calls[0]["call_id"].as_str().unwrap_or_default().to_owned();
    let detail = acme.get(&format!("/api/v1/calls/{call_id}")).await.json();
    assert_eq!(detail["events"].as_array().map(Vec::len), Some(1));
    // the events went to the callback worker's queue
    let r = acme.control(1, "resume").await;
    r.assert_error(409, "batch_closed");
    let r = acme.control(1, "pause").await;
    r.assert_error(409, "batch_closed");
    let r = acme.control(77, "pause").await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_completed_batch_cannot_be_cancelled() {
    let (app, acme) = TestApp::with_account("ACME").await;
    acme.insert_rows(1, rows(0, 2)).await;
    acme.dispatch(None).await;
    // As the dispatcher leaves it once every call has its final outcome.
    app.sql(
        "UPDATE calls SET status = 'completed', attempts = 1, finished_at = now();
             UPDATE batches SET status = 'completed', completed_at = now()",
    )
    .await;
    let r = acme.control(1, "cancel").await;
    r.assert_refused(409, "batch_closed", "completed");
    let v = acme.batch_status(1, "").await;
    assert_eq!(v["batch_status"], "completed");
    assert_eq!(v["counts"]["completed"], 2);
    assert_eq!(v["counts"]["cancelled"], 0);
}

#[tokio::test]
async fn cancel_events_are_queued_and_prompted() {
    use lapin::options::BasicGetOptions;
    let (app, acme) = TestApp::with_account("ACME").await;
    app.with_callback_url("ACME").await;
    acme.insert_rows(1, rows(0, 3)).await;
    acme.control(1, "cancel").await;
    // An account without callback URL: its events are stored skipped, never queued.
    let other = app.account("NOURL").await;
    other.insert_rows(1, rows(10, 2)).await;
    other.control(1, "cancel").await;
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM callback_queue q JOIN call_events e ON e.id = q.event_pk \
             JOIN accounts a ON a.id = e.account_id WHERE a.accountcode = 'ACME' \
             AND e.event_type = 'call_cancelled'"
        )
        .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callback_queue").await,
        3
    );
    let conn = dialer_core::topology::connect(&app.env.config.amqp_url, "t")
        .await
        .expect("amqp");
    let channel = conn.create_channel().await.expect("channel");
    let queue = app.env.topology().events_queue;
    let acme_batch = app
        .count("SELECT b.id AS n FROM batches b JOIN accounts a ON a.id = b.account_id WHERE a.accountcode = 'ACME'")
        .await;
    let mut prompted = Vec::new();
    while let Some(msg) = channel
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await
        .expect("get")
    {
        let m: dialer_core::event_prompt::EventPrompt =
            serde_json::from_slice(&msg.delivery.data).expect("json");
        prompted.extend(m.batches);
    }
    assert!(prompted.contains(&acme_batch), "{prompted:?}");
}

#[tokio::test]
async fn batch_status_filters_and_paginates() {
    let (app, acme) = TestApp::with_account("ACME").await;
    acme.insert_rows(1, rows(0, 5)).await;
    app.sql(&outcome_sql(
        "c.id IN (SELECT id FROM calls ORDER BY id LIMIT 2)",
        "busy",
        "call_busy",
        "busy",
    ))
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/v1/queues/batch-status/1?limit=2".to_owned(),
            Some(c) => format!("/api/v1/queues/batch-status/1?limit=2&cursor={c}"),
        };
        let v = acme.get(&path).await.json();
        for c in v["calls"].as_array().cloned().unwrap_or_default() {
            seen.push(c["phone_number"].as_str().unwrap_or_default().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("98765{i:05}")).collect::<Vec<_>>()
    );

    let v = acme.batch_status(1, "status=busy").await;
    assert_eq!(v["calls"].as_array().map(Vec::len), Some(2));
    assert_fields(
        &v,
        &[("failed_calls", json!(2)), ("pending_calls", json!(3))],
    );
    let v = acme.batch_status(1, "status=queued,busy").await;
    assert_eq!(v["calls"].as_array().map(Vec::len), Some(5));

    for bad in [
        "status=ringing",
        "limit=0",
        "limit=5000",
        "cursor=abc",
        "format=xml",
    ] {
        let r = acme
            .get(&format!("/api/v1/queues/batch-status/1?{bad}"))
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "invalid_request"),
            "{bad}"
        );
    }
    let r = acme.get("/api/v1/queues/batch-status/2").await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn batch_status_csv_streams_every_call() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let mut data = rows(0, 12_000);
    data[0] = json!({"phone_number": "9876500000", "custom_data": {"note": "a,b \"quoted\""}});
    let r = acme.insert(&json!({"batch_id": 1, "data": data})).await;
    assert_eq!(
        r.json()["accepted"],
        12_000,
        "{}",
        &r.text[..r.text.len().min(300)]
    );
    let r = acme.get("/api/v1/queues/batch-status/1?format=csv").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines.len(), 12_001, "header + one line per call");
    assert!(lines[0].starts_with("call_id,phone_number,"));
    assert!(
        lines[1].contains(",9876500000,+919876500000,queued,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(r#""{""note"":""a,b \""quoted\""""}""#),
        "{}",
        lines[1]
    );
    let r = acme
        .get("/api/v1/queues/batch-status/1?format=csv&status=busy")
        .await;
    assert_eq!(r.text.lines().count(), 1);
}

#[tokio::test]
async fn call_detail() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    acme.insert(
        &json!({"batch_id": 1, "data": [{"phone_number": "9876543210", "custom_data": {"k": 1}}]}),
    )
    .await;
    let s = acme.get("/api/v1/queues/batch-status/1").await.json();
    let call_id = s["calls"][0]["call_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = acme.get(&format!("/api/v1/calls/{call_id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["call_id"], call_id.as_str());
    assert_eq!(v["batch_id"], 1);
    assert_eq!(v["call_status"], "queued");
    assert_eq!(v["custom_data"], json!({"k": 1}));
    assert_eq!(v["call_attempts"], json!([]));
    assert_eq!(v["events"], json!([]));
    let r = acme
        .get(&format!("/api/v1/calls/{}", uuid::Uuid::new_v4()))
        .await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let beta = app.account("BETA").await;
    acme.insert_rows(1, rows(0, 2)).await;
    beta.insert_rows(2, rows(0, 1)).await;
    let acme_call = acme.get("/api/v1/queues/batch-status/1").await.json()["calls"][0]["call_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    for path in [
        "/api/v1/queues/batch-status/1",
        "/api/v1/queues/batch-status/1?format=csv",
        &format!("/api/v1/calls/{acme_call}"),
    ] {
        let r = beta.get(path).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "not_found"),
            "{path}"
        );
    }
    for action in ["pause", "resume", "cancel"] {
        let r = beta.control(1, action).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "not_found"),
            "{action}"
        );
    }
    let r = beta.dispatch(Some(&json!({"batch_id": 1}))).await;
    r.assert_error(404, "not_found");
    // beta's dispatch-all touches only beta's batch
    let r = beta.dispatch(None).await.json();
    assert_eq!(
        r,
        json!({"status": "success", "dispatched": 1, "batches": [2]})
    );
    let a = acme.get("/api/v1/queues/batch-status/1").await.json();
    assert_eq!(a["counts"]["queued"], 2);
    // the same batch_id is independent per account
    let r = beta.insert_rows(1, rows(50, 1)).await.json();
    assert_eq!(r["total_calls"], 1);
    let a = acme.get("/api/v1/queues/batch-status/1").await.json();
    assert_eq!(a["total_calls"], 2);
    assert_eq!(
        beta.get("/api/v1/account").await.json()["account"]["accountcode"],
        "BETA"
    );
    assert_eq!(
        beta.get("/api/v1/account").await.json()["usage"]["queued_calls"],
        1 + 1
    );
}

#[tokio::test]
async fn cancel_of_an_idle_batch_completes_it_for_subscribers() {
    #[derive(diesel::QueryableByName)]
    struct Ev {
        #[diesel(sql_type = diesel::sql_types::Text)]
        body: String,
    }
    use diesel_async::RunQueryDsl;
    let (app, acme) = TestApp::with_account("ACME").await;
    let beta = app.account("BETA").await;
    app.sql("UPDATE accounts SET callback_batch_events = true WHERE accountcode = 'ACME'")
        .await;
    acme.insert_rows(1, rows(0, 2)).await;
    beta.insert_rows(1, rows(0, 2)).await;
    acme.control(1, "cancel").await;
    beta.control(1, "cancel").await;
    let mut conn = app.pool.get().await.expect("conn");
    let events: Vec<Ev> = diesel::sql_query(
        "SELECT e.body FROM call_events e JOIN accounts a ON a.id = e.account_id WHERE e.event_type = 'batch_completed'",
    )
    .load(&mut conn)
    .await
    .expect("events");
    assert_eq!(events.len(), 1, "only the subscribing account gets one");
    let body: Value = serde_json::from_str(&events[0].body).expect("json");
    assert_eq!(body["accountcode"], "ACME");
    assert_eq!(
        (body["total_calls"].clone(), body["failed_calls"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(body["counts"]["cancelled"], 2);
    // Every status, zeros included, exactly as batch status shows them.
    assert_eq!(body["counts"], acme.batch_status(1, "").await["counts"]);
}

#[tokio::test]
async fn large_dispatch_answers_at_once_and_publishes_in_the_background() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let r = acme.insert_rows(1, rows(0, 10_500)).await;
    assert_eq!(r.json()["accepted"], 10_500);
    let r = acme.dispatch(None).await;
    assert_eq!(r.json()["dispatched"], 10_500);
    let n =
        crate::helpers::wait_dial_queue_len(&app, 10_500, std::time::Duration::from_secs(60)).await;
    assert_eq!(n, 10_500);
}

#[tokio::test]
async fn waiting_reason_names_closed_calling_hours_in_the_callee_s_zone() {
    let (app, acme) = TestApp::with_account("ACME").await;
    // A server connected, as its holder reports it.
    app.sql("INSERT INTO asterisk_servers (code, host, username, secret, max_channels, max_cps, channel_template)
             VALUES ('ast1', '127.0.0.1', 'u', 's', 10, 5, 'PJSIP/{number}@trunk');
             INSERT INTO server_status (server_id, holder, connected, draining, capacity_factor, live_calls)
             SELECT id, 'd1', true, false, 1, 0 FROM asterisk_servers")
        .await;
    // A window that opens two hours from now where the callee is (India), in an account whose
    // own zone is UTC: the callee's zone is the one the dispatcher reads.
    let now = chrono::Utc::now() + chrono::Duration::minutes(330);
    let at = |hours| (now + chrono::Duration::hours(hours)).format("%H:%M");
    let (start, end) = (at(2).to_string(), at(3).to_string());
    app.sql("UPDATE accounts SET timezone = 'UTC'").await;
    acme.insert(
        &json!({"batch_id": 1, "calling_hours": {"start": start, "end": end}, "data": rows(0, 1)}),
    )
    .await;
    acme.insert_rows(2, rows(0, 1)).await;
    acme.dispatch(None).await;
    let reason = acme.get("/api/v1/queues/batch-status/1").await.json()["waiting_reason"].clone();
    let reason = reason.as_str().unwrap_or_default().to_owned();
    assert!(
        reason.starts_with("outside calling hours until ")
            && reason.ends_with(&format!("{start} Asia/Kolkata")),
        "{reason}"
    );
    // no calling hours: nothing to wait for
    assert_eq!(
        acme.get("/api/v1/queues/batch-status/2").await.json()["waiting_reason"],
        Value::Null
    );
}

#[tokio::test]
async fn status_filter_matches_the_call_status_entries_show() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let r = acme
        .insert(&json!({"batch_id": 1, "data": [
            {"phone_number": "9876543210"}, {"phone_number": "9876543211"}, {"phone_number": "9876543212"}
        ]}))
        .await;
    assert_eq!(r.json()["accepted"], 3, "{}", r.text);
    // What the dispatcher leaves after a busy first attempt with a retry to come: the call waits
    // (`retry_wait`) and its latest event says `busy`. Another call is being dialed, no event yet.
    app.sql(&outcome_sql(
        "c.phone_raw = '9876543210'",
        "retry_wait",
        "call_busy",
        "busy",
    ))
    .await;
    app.sql("UPDATE calls SET status = 'dialing', attempts = 1 WHERE phone_raw = '9876543211'")
        .await;
    let shown = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                (
                    c["phone_number"].as_str().unwrap_or("").to_owned(),
                    c["call_status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let busy = acme.batch_status(1, "status=busy").await;
    assert_eq!(shown(&busy), [("9876543210".into(), "busy".into())]);
    let queued = acme.batch_status(1, "status=queued").await;
    assert_eq!(
        shown(&queued),
        [
            ("9876543211".into(), "queued".into()),
            ("9876543212".into(), "queued".into())
        ]
    );
    // counts keep the internal states, documented against what entries show
    assert_eq!(busy["counts"]["retry_wait"], 1);
    assert_eq!(busy["counts"]["dialing"], 1);
    // internal states are not what entries show: refused, naming the values that are
    for internal in ["retry_wait", "dialing", "scheduled"] {
        let r = acme
            .get(&format!("/api/v1/queues/batch-status/1?status={internal}"))
            .await;
        r.assert_refused(400, "invalid_request", "no_answer");
    }
    let csv = acme
        .get("/api/v1/queues/batch-status/1?format=csv&status=busy")
        .await;
    assert_eq!(csv.text.lines().count(), 2, "{}", csv.text);
}

#[tokio::test]
async fn a_timeout_after_an_answer_counts_as_completed() {
    let (app, acme) = TestApp::with_account("ACME").await;
    acme.insert_rows(1, rows(0, 2)).await;
    app.sql(&outcome_sql("true", "timeout", "call_timeout", "timeout"))
        .await;
    // cut at its maximum length after the answer (the person was reached), and one the PBX
    // never reported on
    app.sql(
        "UPDATE calls SET disposition = 'answered' WHERE phone_raw = '9876500000';
         UPDATE calls SET disposition = 'unknown' WHERE phone_raw = '9876500001';",
    )
    .await;
    let v = acme.batch_status(1, "").await;
    assert_fields(
        &v,
        &[
            ("total_calls", json!(2)),
            ("completed_calls", json!(1)),
            ("failed_calls", json!(1)),
            ("pending_calls", json!(0)),
        ],
    );
    assert_eq!(v["counts"]["timeout"], 2);
}

/// `expires_at` needs no dispatcher: the API's sweep ends the calls of an expired batch too,
/// never dispatched as this one is.
#[tokio::test]
async fn calls_expire_on_time_with_no_dispatcher_running() {
    let app =
        TestApp::spawn_with(|c| c.outbox_interval = std::time::Duration::from_millis(200)).await;
    let acme = app.account("ACME").await;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(1);
    let r = acme
        .insert(&json!({"batch_id": 1, "expires_at": expires.to_rfc3339(), "data": rows(0, 3)}))
        .await;
    assert_eq!(r.json()["accepted"], 3, "{}", r.text);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        let s = acme.batch_status(1, "").await;
        if s["batch_status"] == "completed" || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(chrono::Utc::now() >= expires, "not before its time");
    assert_fields(
        &status,
        &[
            ("batch_status", json!("completed")),
            ("failed_calls", json!(3)),
        ],
    );
    assert_eq!(status["counts"]["expired"], 3);
    for call in status["calls"].as_array().cloned().unwrap_or_default() {
        assert_eq!(call["event_type"], "call_expired", "{call}");
        assert_eq!(call["attempt"], 1, "the attempt that will not happen");
    }
}

/// A cancel ends 10,000 calls in its own transaction (a 1,000,000-call batch in one statement
/// outlived `statement_timeout`); the API's closing sweep ends the rest soon after, each with one
/// `call_cancelled` event, and completes the batch once, for a subscriber with `batch_completed`.
#[tokio::test]
async fn a_large_cancel_ends_the_rest_of_the_batch_in_the_sweep() {
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        events: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        calls: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        completed: i64,
    }
    use diesel_async::RunQueryDsl;
    let app =
        TestApp::spawn_with(|c| c.outbox_interval = std::time::Duration::from_millis(200)).await;
    let acme = app.account("ACME").await;
    app.sql("UPDATE accounts SET callback_batch_events = true WHERE accountcode = 'ACME'")
        .await;
    let n = dialer_core::lifecycle::control::CANCEL_AT_ONCE as u64 + 2_500;
    let r = acme.insert_rows(1, rows(0, n)).await;
    assert_eq!(r.json()["accepted"], n);
    let answer = acme.control(1, "cancel").await.json();
    assert_eq!(answer["batch_status"], "cancelled");
    assert_eq!(answer["counts"]["cancelled"], 10_000, "{answer}");
    assert_eq!(answer["pending_calls"], 2_500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let counts = loop {
        let mut conn = app.pool.get().await.expect("conn");
        let c: Counts = diesel::sql_query(
            "SELECT (SELECT count(*) FROM call_events WHERE event_type = 'call_cancelled') AS events, \
                    (SELECT count(*) FROM calls WHERE status = 'cancelled') AS calls, \
                    (SELECT count(*) FROM call_events WHERE event_type = 'batch_completed') AS completed",
        )
        .get_result(&mut conn)
        .await
        .expect("counts");
        if c.completed > 0 || std::time::Instant::now() > deadline {
            break c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (counts.calls, counts.events, counts.completed),
        (n as i64, n as i64, 1),
        "every call cancelled with one event, the batch completed once"
    );
    let status = acme.batch_status(1, "").await;
    assert_eq!(status["batch_status"], "cancelled");
    assert_eq!(status["pending_calls"], 0);
    // Still idempotent: a second cancel ends nothing more.
    acme.control(1, "cancel").await;
    let mut conn = app.pool.get().await.expect("conn");
    let again: Counts = diesel::sql_query(
        "SELECT (SELECT count(*) FROM call_events WHERE event_type = 'call_cancelled') AS events, \
                0::bigint AS calls, \
                (SELECT count(*) FROM call_events WHERE event_type = 'batch_completed') AS completed",
    )
    .get_result(&mut conn)
    .await
    .expect("counts");
    assert_eq!((again.events, again.completed), (n as i64, 1));
}
