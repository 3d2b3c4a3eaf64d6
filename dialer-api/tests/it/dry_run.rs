//! The dry run of dispatch (API `{"dry_run": true}` and `dialerctl dispatch --dry-run`): what
//! would dial now and why the rest would not, per reason, changing nothing; `waiting_reason`
//! reads the same reasoning.

use chrono::{Duration, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::helpers::{TestApp, dialerctl, words};

/// A window of calling hours open now in `zone` (from an hour ago to two hours ahead): closed
/// then in Kolkata, four and a half or five and a half hours ahead of London.
fn open_now_in(zone: Tz) -> Value {
    let local = Utc::now().with_timezone(&zone);
    let at = |h: i64| (local + Duration::hours(h)).format("%H:%M").to_string();
    json!({"start": at(-1), "end": at(2)})
}

fn gb(i: u32) -> String {
    format!("+4479111234{i:02}")
}

/// A connected server as its holder reports it, and the holder's own row: a platform limit of
/// `global_cps` calls per second.
async fn connected_server(app: &TestApp, global_cps: &str) {
    app.sql(&format!(
        "INSERT INTO asterisk_servers (code, host, username, secret, max_channels, max_cps, channel_template)
         VALUES ('ast1', '127.0.0.1', 'u', 's', 50, 100, 'PJSIP/{{number}}@trunk');
         INSERT INTO server_status (server_id, holder, connected, draining, capacity_factor, live_calls)
         SELECT id, 'd1', true, false, 1, 0 FROM asterisk_servers;
         INSERT INTO dispatchers (id, global_cps, status_at) VALUES ('d1', {global_cps}, now())"
    ))
    .await;
}

fn reasons(v: &Value) -> Vec<(String, i64)> {
    v["held"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    (
                        h["reason"].as_str().unwrap_or_default().to_owned(),
                        h["count"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_batch_held_three_ways_is_counted_per_reason_and_nothing_changes() {
    let (app, acme) = TestApp::with_account("ACME").await;
    connected_server(&app, "NULL").await;
    let london: Tz = "Europe/London".parse().expect("tz");
    app.sql("UPDATE accounts SET max_concurrent_calls = 2")
        .await;
    // Three callees in India (closed now in their zone), seven in Britain (open).
    let mut data: Vec<Value> = (0..3)
        .map(|i| json!({"phone_number": format!("98765{i:05}")}))
        .collect();
    data.extend((0..7).map(|i| json!({"phone_number": gb(i)})));
    let r = acme
        .insert(&json!({"batch_id": 1, "calling_hours": open_now_in(london), "data": data}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Two British numbers go on the account's do-not-call list after they were accepted.
    let r = acme
        .post_json("/api/v1/dnc", &json!({"phone_numbers": [gb(0), gb(1)]}))
        .await;
    assert!(r.status < 300, "{}", r.text);

    let r = acme
        .dispatch(Some(&json!({"batch_id": 1, "dry_run": true})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["considered"], 10);
    // Five British numbers are ready; the account's channel limit lets two go.
    assert_eq!(
        (v["ready"].clone(), v["would_dial"].clone()),
        (json!(5), json!(2))
    );
    let mut got = reasons(&v);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("account_channels".to_owned(), 3),
            ("calling_hours".to_owned(), 3),
            ("do_not_call".to_owned(), 2),
        ],
        "{v}"
    );
    let hours = v["held"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["reason"] == "calling_hours"))
        .cloned()
        .unwrap_or_default();
    let detail = hours["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("outside calling hours until ") && detail.ends_with("Asia/Kolkata"),
        "the callee's zone, not the account's: {detail}"
    );
    let opens: chrono::DateTime<Utc> = hours["until"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("until is RFC 3339");
    assert!(opens > Utc::now(), "{opens}");
    assert_eq!(v["batches"][0]["batch_id"], 1);
    assert_eq!(v["batches"][0]["would_dial"], 2);

    // Nothing changed: every call still queued, the batch still pending, no dial job.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM calls WHERE status <> 'queued'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM batches WHERE status <> 'pending'")
            .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM dial_jobs").await, 0);

    // The same through dialerctl, in words.
    let run = dialerctl(
        &app,
        &[],
        &[],
        &words("dispatch --dry-run --account ACME --batch 1"),
    );
    run.assert_ok();
    for want in [
        "would dial in the next second",
        "account_channels",
        "account channel limit: 0 of 2 channels in use",
        "calling_hours",
        "do_not_call",
    ] {
        assert!(run.stdout.contains(want), "want `{want}`:\n{}", run.stdout);
    }
    println!("{}", run.stdout);
    let all = dialerctl(&app, &[], &[], &words("--json dispatch --dry-run"));
    assert_eq!(all.ok_json()["would_dial"], 2);

    // The platform limit, as the dispatcher reports it, binds before the channels.
    app.sql("UPDATE dispatchers SET global_cps = 1").await;
    let v = acme.dispatch(Some(&json!({"dry_run": true}))).await.json();
    assert_eq!(v["would_dial"], 1, "{v}");
    assert!(
        reasons(&v).contains(&("platform_rate".to_owned(), 4)),
        "{v}"
    );
    // No dispatcher reporting: nothing would dial, and the dry run says why.
    app.sql("UPDATE server_status SET reported_at = now() - interval '1 minute'")
        .await;
    let v = acme.dispatch(Some(&json!({"dry_run": true}))).await.json();
    assert_eq!(v["would_dial"], 0);
    assert!(
        reasons(&v).contains(&("no_connected_server".to_owned(), 5)),
        "{v}"
    );
}

#[tokio::test]
async fn waiting_reason_and_the_dry_run_agree() {
    let (app, acme) = TestApp::with_account("ACME").await;
    connected_server(&app, "NULL").await;
    app.sql("UPDATE accounts SET max_concurrent_calls = 1, redial_window_hours = 24")
        .await;
    acme.insert_rows(1, vec![json!({"phone_number": gb(1)})])
        .await;
    let status = async || acme.get("/api/v1/queues/batch-status/1").await.json();
    assert_eq!(
        status().await["waiting_reason"],
        "not dispatched yet; call dispatch-calls"
    );
    // The dry run answers as if dispatched: it would dial.
    let v = acme.dispatch(Some(&json!({"dry_run": true}))).await.json();
    assert_eq!(v["would_dial"], 1, "{v}");
    // Another call of the account dialed the number an hour ago: the re-dial window holds this
    // one until 23 hours from now, in the dry run and in waiting_reason alike.
    acme.insert_rows(2, vec![json!({"phone_number": gb(2)})])
        .await;
    app.sql(&format!(
        "UPDATE calls SET phone_e164 = '{}', last_dialed_at = now() - interval '1 hour',
                status = 'completed', attempts = 1, finished_at = now()
         WHERE batch_pk = (SELECT id FROM batches WHERE batch_id = 2)",
        gb(1)
    ))
    .await;
    acme.dispatch(Some(&json!({"batch_id": 1}))).await;
    let v = acme
        .dispatch(Some(&json!({"batch_id": 1, "dry_run": true})))
        .await
        .json();
    assert_eq!(v["would_dial"], 0, "{v}");
    assert_eq!(reasons(&v), vec![("redial_window".to_owned(), 1)]);
    let reason = status().await["waiting_reason"].clone();
    assert_eq!(reason, v["held"][0]["detail"], "{v}");
    assert!(
        reason
            .as_str()
            .is_some_and(|r| r.starts_with("re-dial window")),
        "{reason}"
    );
}

#[tokio::test]
async fn a_dry_run_sees_only_its_own_account_and_refuses_bad_input() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let other = app.account("OTHER").await;
    acme.insert_rows(1, vec![json!({"phone_number": gb(1)})])
        .await;
    let v = other.dispatch(Some(&json!({"dry_run": true}))).await.json();
    assert_eq!(
        (v["considered"].clone(), v["batches"].clone()),
        (json!(0), json!([]))
    );
    other
        .dispatch(Some(&json!({"batch_id": 1, "dry_run": true})))
        .await
        .assert_error(404, "not_found");
    acme.dispatch(Some(&json!({"dry_run": "yes"})))
        .await
        .assert_error(400, "invalid_request");
    acme.dispatch(Some(&json!({"dry_run": 1})))
        .await
        .assert_error(400, "invalid_request");
    // A paused batch is reported, not refused.
    acme.dispatch(None).await;
    acme.control(1, "pause").await;
    let v = acme
        .dispatch(Some(&json!({"batch_id": 1, "dry_run": true})))
        .await
        .json();
    assert_eq!(reasons(&v), vec![("paused".to_owned(), 1)], "{v}");
    let run = dialerctl(&app, &[], &[], &words("dispatch --batch 1 --dry-run"));
    assert!(
        run.code != 0 && run.stderr.contains("--account"),
        "a batch is named within its account: {} {}",
        run.code,
        run.stderr
    );
}
