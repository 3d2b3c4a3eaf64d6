//! Callback deliveries through the API and dialerctl: listing by status with pagination,
//! one event with its tries, redelivery, tenant isolation, secret rotation, the callback URL
//! policy, and an event failed by the real callback worker, listed and replayed.
//!
//! Events are made the way the platform makes them (a cancelled batch ends every call with a
//! `call_cancelled` event); their delivery state is then set in SQL, except in the last test,
//! where the callback worker itself fails and then delivers them.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{Client, Run, Seen, TestApp, dialerctl, receiver, two_tries_sql, words};
use diesel::sql_types::Text;
use serde_json::{Value, json};

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    v: String,
}

/// The single text column `v` of every row of `sql`.
async fn texts(app: &TestApp, sql: &str) -> Vec<String> {
    use diesel_async::RunQueryDsl;
    let mut conn = app.pool.get().await.expect("conn");
    diesel::sql_query(sql)
        .load::<Row>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.v)
        .collect()
}

async fn text(app: &TestApp, sql: &str) -> String {
    let rows = texts(app, sql).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows.into_iter().next().unwrap_or_default()
}

/// A batch of `n` calls, cancelled: `n` `call_cancelled` events (pending: the account gets a
/// callback URL), oldest first.
async fn cancelled_events(app: &TestApp, c: &Client, batch_id: i64, n: usize) -> Vec<String> {
    app.with_callback_url(&c.accountcode).await;
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"phone_number": format!("98765{:05}", i + 100 * batch_id as usize)}))
        .collect();
    let r = c.insert(&json!({"batch_id": batch_id, "data": data})).await;
    assert_eq!(r.json()["accepted"], n, "{}", r.text);
    let r = c.control(batch_id, "cancel").await;
    assert_eq!(r.status, 200, "{}", r.text);
    texts(
        app,
        &format!(
            "SELECT e.event_id AS v FROM call_events e JOIN accounts a ON a.id = e.account_id \
             JOIN batches b ON b.id = e.batch_pk \
             WHERE a.accountcode = '{}' AND b.batch_id = {batch_id} ORDER BY e.id",
            c.accountcode
        ),
    )
    .await
}

/// Account OTHER beside ACME, and the events of each one's batch 1 (the same client batch id
/// in both accounts): ACME's `mine`, OTHER's `theirs`.
async fn two_tenants(
    app: &TestApp,
    acme: &Client,
    mine: usize,
    theirs: usize,
) -> (Client, Vec<String>, Vec<String>) {
    let other = app.account("OTHER").await;
    let mine = cancelled_events(app, acme, 1, mine).await;
    let theirs = cancelled_events(app, &other, 1, theirs).await;
    (other, mine, theirs)
}

/// Sets events' delivery state as the worker leaves it.
async fn set_state(app: &TestApp, ids: &[&str], state: &str) {
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = match state {
        "failed" => format!(
            "UPDATE call_events SET delivery_status = 'failed', delivery_attempts = 8, \
             last_error = 'HTTP 503' WHERE event_id IN ({list})"
        ),
        "delivered" => format!(
            "UPDATE call_events SET delivery_status = 'delivered', delivery_attempts = 1, \
             delivered_at = now() WHERE event_id IN ({list})"
        ),
        "skipped" => format!(
            "UPDATE call_events SET delivery_status = 'skipped', last_error = 'no callback URL' \
             WHERE event_id IN ({list})"
        ),
        other => panic!("state {other}"),
    };
    app.sql(&sql).await;
}

fn ids_of(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The delivery columns of one event, to show that something did not change.
async fn state_of(app: &TestApp, event_id: &str) -> String {
    text(
        app,
        &format!(
            "SELECT concat_ws('|', delivery_status, delivery_attempts, next_attempt_at, \
             delivered_at, last_error, (SELECT count(*) FROM callback_replays r WHERE r.event_pk = e.id)) AS v \
             FROM call_events e WHERE event_id = '{event_id}'"
        ),
    )
    .await
}

#[tokio::test]
async fn list_filters_by_status_and_paginates() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let ids = cancelled_events(&app, &acme, 7, 6).await;
    assert_eq!(ids.len(), 6);
    set_state(&app, &[&ids[0], &ids[2], &ids[4]], "failed").await;
    set_state(&app, &[&ids[1]], "delivered").await;
    set_state(&app, &[&ids[3]], "skipped").await;
    // ids[5] stays pending

    let r = acme.get("/api/v1/callbacks").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let all = r.json();
    assert_eq!(all["status"], "success");
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(ids_of(&all), newest_first);
    assert_eq!(all["next_cursor"], Value::Null);
    let pending = &all["events"][0];
    assert_eq!(pending["delivery_status"], "pending");
    assert_eq!(pending["event_type"], "call_cancelled");
    assert_eq!(pending["batch_id"], 7);
    assert_eq!(pending["sequence"], 1);
    assert!(pending["next_attempt_at"].as_str().is_some(), "{pending}");
    let call_id = pending["call_id"].as_str().unwrap_or_default();
    assert_eq!(
        text(
            &app,
            &format!(
                "SELECT c.call_id::text AS v FROM calls c JOIN call_events e ON e.call_pk = c.id \
                 WHERE e.event_id = '{}'",
                ids[5]
            )
        )
        .await,
        call_id
    );

    let r = acme.get("/api/v1/callbacks?status=failed").await;
    let failed = r.json();
    assert_eq!(
        ids_of(&failed),
        vec![ids[4].clone(), ids[2].clone(), ids[0].clone()]
    );
    for e in failed["events"].as_array().into_iter().flatten() {
        assert_eq!(e["delivery_status"], "failed");
        assert_eq!(e["delivery_attempts"], 8);
        assert_eq!(e["last_error"], "HTTP 503");
        assert_eq!(e["next_attempt_at"], Value::Null);
        assert!(e["occurred_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let delivered = acme.get("/api/v1/callbacks?status=delivered").await.json();
    assert_eq!(ids_of(&delivered), vec![ids[1].clone()]);
    assert!(delivered["events"][0]["delivered_at"].as_str().is_some());
    let skipped = acme.get("/api/v1/callbacks?status=skipped").await.json();
    assert_eq!(ids_of(&skipped), vec![ids[3].clone()]);
    let pending = acme.get("/api/v1/callbacks?status=pending").await.json();
    assert_eq!(ids_of(&pending), vec![ids[5].clone()]);

    // pages of two failed events, then one, then the end
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/api/v1/callbacks?status=failed&limit=2".to_owned(),
            Some(c) => format!("/api/v1/callbacks?status=failed&limit=2&cursor={c}"),
        };
        let page = acme.get(&path).await.json();
        seen.extend(ids_of(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 5, "pagination does not end");
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, ids_of(&failed));

    // bad query values name the parameter
    for (path, field) in [
        ("/api/v1/callbacks?status=lost", "`status`"),
        ("/api/v1/callbacks?limit=0", "`limit`"),
        ("/api/v1/callbacks?limit=abc", "`limit`"),
        ("/api/v1/callbacks?cursor=abc", "`cursor`"),
    ] {
        let r = acme.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_request");
        assert!(
            r.json()["message"]
                .as_str()
                .is_some_and(|m| m.contains(field))
        );
    }
    let r = app
        .raw(app.http.get(format!("{}/api/v1/callbacks", app.base)))
        .await;
    r.assert_error(401, "unauthorized");
    let r = acme
        .post_json("/api/v1/callbacks", &json!({"status": "failed"}))
        .await;
    r.assert_error(405, "method_not_allowed");
    let r = acme.get("/api/v1/callbacks/redeliver").await;
    assert_eq!(r.status, 405, "{}", r.text);
}

#[tokio::test]
async fn one_event_shows_its_body_and_every_try() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let ids = cancelled_events(&app, &acme, 1, 1).await;
    let id = &ids[0];
    set_state(&app, &[id], "failed").await;
    app.sql(&two_tries_sql(id, "down for maintenance")).await;
    let r = acme.get(&format!("/api/v1/callbacks/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["event_id"], id.as_str());
    assert_eq!(v["delivery_status"], "failed");
    // the exact body every try sends
    assert_eq!(v["body"]["event_id"], id.as_str());
    assert_eq!(v["body"]["event_type"], "call_cancelled");
    assert_eq!(v["body"]["phone_number"], "9876500100");
    assert_eq!(
        v["deliveries"],
        json!([
            {"attempt": 1, "attempted_at": "2026-01-01T10:00:00Z", "url": "https://hooks.example.com/cb",
             "status_code": 503, "error": null, "latency_ms": 12, "response_head": "down for maintenance"},
            {"attempt": 2, "attempted_at": "2026-01-01T10:00:05Z", "url": "https://hooks.example.com/cb",
             "status_code": null, "error": "timed out", "latency_ms": 10000, "response_head": null}
        ])
    );
    let r = acme
        .get("/api/v1/callbacks/evt_00000000000000000000000000000000")
        .await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn another_accounts_events_are_never_seen_nor_redelivered() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let (other, mine, theirs) = two_tenants(&app, &acme, 2, 3).await;
    set_state(&app, &[&mine[0]], "failed").await;
    set_state(&app, &[&theirs[0], &theirs[1]], "failed").await;
    set_state(&app, &[&theirs[2]], "delivered").await;
    let before: Vec<String> = {
        let mut v = Vec::new();
        for id in &theirs {
            v.push(state_of(&app, id).await);
        }
        v
    };

    for path in [
        "/api/v1/callbacks",
        "/api/v1/callbacks?status=failed",
        "/api/v1/callbacks?status=delivered",
        "/api/v1/callbacks?limit=1",
    ] {
        let listed = ids_of(&acme.get(path).await.json());
        assert!(
            listed.iter().all(|id| mine.contains(id)),
            "{path} leaks: {listed:?}"
        );
    }
    assert_eq!(
        ids_of(&acme.get("/api/v1/callbacks?status=failed").await.json()),
        vec![mine[0].clone()]
    );
    // a cursor cannot reach into another account either
    let their_cursor = text(
        &app,
        &format!(
            "SELECT (id + 1)::text AS v FROM call_events WHERE event_id = '{}'",
            theirs[2]
        ),
    )
    .await;
    let page = acme
        .get(&format!("/api/v1/callbacks?cursor={their_cursor}"))
        .await
        .json();
    assert!(ids_of(&page).iter().all(|id| mine.contains(id)));

    // their id: 404 like an unknown one, same message shape, nothing changes
    let unknown = "evt_ffffffffffffffffffffffffffffffff";
    let r = acme.get(&format!("/api/v1/callbacks/{}", theirs[0])).await;
    r.assert_error(404, "not_found");
    let r_unknown = acme.get(&format!("/api/v1/callbacks/{unknown}")).await;
    assert_eq!(
        r.json()["message"]
            .as_str()
            .map(|m| m.replace(&theirs[0], "ID")),
        r_unknown.json()["message"]
            .as_str()
            .map(|m| m.replace(unknown, "ID"))
    );
    let r = acme
        .post_json(
            "/api/v1/callbacks/redeliver",
            &json!({"event_ids": [theirs[0]]}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "not_found");
    let r = acme
        .post_json(
            "/api/v1/callbacks/redeliver",
            &json!({"event_ids": [theirs[1], theirs[2]]}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // mixed with one of its own: that one is redelivered, theirs are listed as not found
    let r = acme
        .post_json(
            "/api/v1/callbacks/redeliver",
            &json!({"event_ids": [theirs[0], mine[0], theirs[2]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["redelivered"], 1);
    assert_eq!(v["event_ids"], json!([mine[0]]));
    assert_eq!(v["not_found"], json!([theirs[0], theirs[2]]));
    // all failed: theirs stay failed
    set_state(&app, &[&mine[1]], "failed").await;
    let v = acme
        .post_json("/api/v1/callbacks/redeliver", &json!({"status": "failed"}))
        .await
        .json();
    assert_eq!(v["event_ids"], json!([mine[1]]));
    for (id, was) in theirs.iter().zip(&before) {
        assert_eq!(&state_of(&app, id).await, was, "{id} changed");
    }
    // and the other account still sees its own
    assert_eq!(
        ids_of(&other.get("/api/v1/callbacks?status=failed").await.json()),
        vec![theirs[1].clone(), theirs[0].clone()]
    );
}

#[tokio::test]
async fn redelivery_resets_failed_and_delivered_events() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let ids = cancelled_events(&app, &acme, 3, 5).await;
    set_state(&app, &[&ids[0], &ids[1]], "failed").await;
    set_state(&app, &[&ids[2]], "delivered").await;
    set_state(&app, &[&ids[3]], "skipped").await;
    // a failed event due far in the future: a reset must make it due now
    app.sql(&format!(
        "UPDATE call_events SET next_attempt_at = now() + interval '1 day' WHERE event_id = '{}'",
        ids[0]
    ))
    .await;

    let r = acme
        .post_json(
            "/api/v1/callbacks/redeliver",
            &json!({"event_ids": [ids[0], ids[2], ids[4], ids[0]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["redelivered"], 2);
    assert_eq!(v["event_ids"], json!([ids[0], ids[2]]));
    assert_eq!(v["already_pending"], json!([ids[4]]));
    assert_eq!(v["not_found"], json!([]));
    for id in [&ids[0], &ids[2]] {
        let row = text(
            &app,
            &format!(
                "SELECT concat_ws('|', delivery_status, next_attempt_at <= now(), delivered_at IS NULL, \
                 r.attempts_before, r.replays) AS v \
                 FROM call_events e JOIN callback_replays r ON r.event_pk = e.id WHERE e.event_id = '{id}'"
            ),
        )
        .await;
        let attempts = if id == &ids[0] { 8 } else { 1 };
        assert_eq!(row, format!("pending|t|t|{attempts}|1"), "{id}");
    }
    // the failed one not named is untouched
    assert!(state_of(&app, &ids[1]).await.starts_with("failed|8|"));

    // every failed one; then none is left
    let v = acme
        .post_json("/api/v1/callbacks/redeliver", &json!({"status": "failed"}))
        .await
        .json();
    assert_eq!(v["redelivered"], 1);
    assert_eq!(v["event_ids"], json!([ids[1]]));
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(delivery_status, ',' ORDER BY id) AS v FROM call_events"
        )
        .await,
        "pending,pending,pending,skipped,pending"
    );
    let v = acme
        .post_json("/api/v1/callbacks/redeliver", &json!({"status": "failed"}))
        .await
        .json();
    assert_eq!(v["redelivered"], 0);
    assert_eq!(v["event_ids"], json!([]));
    // a skipped event, named
    let v = acme
        .post_json(
            "/api/v1/callbacks/redeliver",
            &json!({"event_ids": [ids[3]]}),
        )
        .await
        .json();
    assert_eq!(v["event_ids"], json!([ids[3]]));

    // requests that are not understood change nothing and name the field
    for (body, field) in [
        (json!({}), "`event_ids`"),
        (json!({"event_ids": []}), "`event_ids`"),
        (json!({"event_ids": [1]}), "`event_ids`"),
        (json!({"status": "delivered"}), "`status`"),
        (
            json!({"status": "failed", "event_ids": [ids[0]]}),
            "not both",
        ),
    ] {
        let r = acme.post_json("/api/v1/callbacks/redeliver", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_request");
        assert!(
            r.json()["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{}",
            r.text
        );
    }
    let r = acme
        .post_json_text("/api/v1/callbacks/redeliver", "{")
        .await;
    r.assert_error(400, "invalid_request");
    let r = acme
        .post_raw(
            "/api/v1/callbacks/redeliver",
            Some("text/plain"),
            r#"{"status":"failed"}"#,
        )
        .await;
    r.assert_error(415, "unsupported_media_type");
}

// ---- dialerctl ----

fn ctl_env(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> Run {
    dialerctl(app, env, &["DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS"], args)
}

fn ctl(app: &TestApp, args: &[&str]) -> Run {
    ctl_env(app, &[], args)
}

/// `dialerctl callbacks replay --account ACME` and these further arguments.
fn replay(app: &TestApp, more: &[&str]) -> Run {
    let mut args = vec!["callbacks", "replay", "--account", "ACME"];
    args.extend_from_slice(more);
    ctl(app, &args)
}

#[tokio::test]
async fn cli_lists_and_replays_callbacks() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let (_other, ids, theirs) = two_tenants(&app, &acme, 3, 1).await;
    set_state(&app, &[&ids[0], &ids[1]], "failed").await;
    set_state(&app, &[&ids[2]], "delivered").await;
    set_state(&app, &[&theirs[0]], "failed").await;
    let their_state = state_of(&app, &theirs[0]).await;

    let r = ctl(
        &app,
        &words("callbacks list --account ACME --status failed --json"),
    );
    let v = r.ok_json();
    assert_eq!(v["status"], "success");
    assert_eq!(ids_of(&v), vec![ids[1].clone(), ids[0].clone()]);
    assert_eq!(v["events"][0]["last_error"], "HTTP 503");
    // text, paginated
    let r = ctl(
        &app,
        &words("callbacks list --account ACME --status failed --limit 1"),
    );
    r.assert_ok();
    assert!(
        r.stdout.contains(&ids[1]) && !r.stdout.contains(&ids[0]),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("HTTP 503"), "{}", r.stdout);
    let cursor = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("more: --cursor "))
        .unwrap_or_else(|| panic!("no cursor line: {}", r.stdout))
        .trim()
        .to_owned();
    let r = ctl(
        &app,
        &[
            "callbacks",
            "list",
            "--account",
            "ACME",
            "--status",
            "failed",
            "--limit",
            "1",
            "--cursor",
            &cursor,
        ],
    );
    assert!(
        r.stdout.contains(&ids[0]) && !r.stdout.contains("more:"),
        "{}",
        r.stdout
    );
    // never another account's
    let r = ctl(&app, &words("callbacks list --account ACME --json"));
    assert!(!r.stdout.contains(&theirs[0]));
    let r = ctl(
        &app,
        &["callbacks", "show", "--account", "ACME", &ids[0], "--json"],
    );
    r.assert_ok();
    assert_eq!(r.json()["body"]["event_id"], ids[0].as_str());
    ctl(
        &app,
        &["callbacks", "show", "--account", "ACME", &theirs[0]],
    )
    .refused("not found");
    ctl(&app, &words("callbacks list --account NOPE")).refused("account `NOPE` not found");
    ctl(&app, &words("callbacks list --account ACME --limit 0")).refused("--limit");

    // replay one by id: reset to pending
    let r = replay(&app, &["--event", &ids[0], "--json"]);
    r.assert_ok();
    assert_eq!(r.json()["redelivered"], 1);
    assert_eq!(r.json()["event_ids"], json!([ids[0]]));
    assert!(state_of(&app, &ids[0]).await.starts_with("pending|"));
    // another account's id: refused, nothing changes
    replay(&app, &["--event", &theirs[0]]).refused("not found");
    assert_eq!(state_of(&app, &theirs[0]).await, their_state);
    // a delivered one by id, and a mix with an unknown id (listed, exit 0)
    let r = replay(
        &app,
        &["--event", &ids[2], "evt_ffffffffffffffffffffffffffffffff"],
    );
    r.assert_ok();
    assert!(
        r.stdout.contains("1 event(s) will be sent again"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("not found for ACME: evt_ffffffffffffffffffffffffffffffff"),
        "{}",
        r.stdout
    );
    assert!(state_of(&app, &ids[2]).await.starts_with("pending|"));
    // every failed one
    let r = ctl(
        &app,
        &words("callbacks replay --account ACME --failed --json"),
    );
    r.assert_ok();
    assert_eq!(r.json()["event_ids"], json!([ids[1]]));
    assert_eq!(state_of(&app, &theirs[0]).await, their_state);
    // neither --event nor --failed, or both: usage error
    let r = ctl(&app, &words("callbacks replay --account ACME"));
    assert_ne!(r.code, 0);
    let r = replay(&app, &["--failed", "--event", &ids[0]]);
    assert_ne!(r.code, 0);
}

#[tokio::test]
async fn cli_rotate_secret_keeps_the_old_one_for_the_grace_period() {
    let app = TestApp::spawn().await;
    app.account("ACME").await;
    let secret_sql = "SELECT concat_ws('|', callback_secret, callback_secret_previous) AS v \
                      FROM accounts WHERE accountcode = 'ACME'";
    let old = text(&app, secret_sql).await;
    assert!(old.starts_with("whsec_") && !old.contains('|'), "{old}");

    let r = ctl(
        &app,
        &words("account rotate-secret --account ACME --grace-hours 2 --json"),
    );
    let v = r.ok_json();
    let new = v["callback_secret"].as_str().unwrap_or_default().to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{v}");
    assert_eq!(text(&app, secret_sql).await, format!("{new}|{old}"));
    // the grace end, as printed and as stored: two hours from now
    let until = v["previous_valid_until"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(until.ends_with('Z'), "{v}");
    assert_eq!(
        text(
            &app,
            &format!(
                "SELECT (abs(extract(epoch FROM callback_secret_previous_until - (now() + interval '2 hours'))) < 60 \
                 AND date_trunc('second', callback_secret_previous_until) = '{until}'::timestamptz)::text AS v \
                 FROM accounts WHERE accountcode = 'ACME'"
            )
        )
        .await,
        "true"
    );
    // shown once: show and list never print it
    for args in [
        &["account", "show", "ACME"][..],
        &["--json", "account", "list"][..],
    ] {
        let r = ctl(&app, args);
        assert!(
            !r.stdout.contains(&new) && !r.stdout.contains(&old),
            "{}",
            r.stdout
        );
    }

    // the default grace is 24 hours; text output prints the secret once
    let r = ctl(&app, &words("account rotate-secret --account ACME"));
    r.assert_ok();
    assert_eq!(r.stdout.matches("whsec_").count(), 1, "{}", r.stdout);
    assert!(r.stdout.contains("keeps signing until"), "{}", r.stdout);
    let newer = text(
        &app,
        "SELECT callback_secret AS v FROM accounts WHERE accountcode = 'ACME'",
    )
    .await;
    assert!(r.stdout.contains(&newer));
    assert_eq!(
        text(
            &app,
            "SELECT (abs(extract(epoch FROM callback_secret_previous_until - (now() + interval '24 hours'))) < 60)::text AS v \
             FROM accounts WHERE accountcode = 'ACME'"
        )
        .await,
        "true"
    );
    assert_eq!(
        text(
            &app,
            "SELECT callback_secret_previous AS v FROM accounts WHERE accountcode = 'ACME'"
        )
        .await,
        new,
        "the secret replaced is the one that keeps signing"
    );

    // no grace: the old secret stops at once
    let r = ctl(
        &app,
        &words("account rotate-secret --account ACME --grace-hours 0 --json"),
    );
    r.assert_ok();
    assert_eq!(r.json()["previous_valid_until"], Value::Null);
    assert_eq!(
        text(
            &app,
            "SELECT (callback_secret_previous IS NULL AND callback_secret_previous_until IS NULL)::text AS v \
             FROM accounts WHERE accountcode = 'ACME'"
        )
        .await,
        "true"
    );
    ctl(&app, &words("account rotate-secret --account NOPE")).refused("account `NOPE` not found");
    ctl(
        &app,
        &words("account rotate-secret --account ACME --grace-hours 9999"),
    )
    .refused("at most 720 hours");
}

#[tokio::test]
async fn cli_refuses_callback_urls_outside_the_policy() {
    let app = TestApp::spawn().await;
    app.account("ACME").await;
    let url_sql =
        "SELECT coalesce(callback_url, '-') AS v FROM accounts WHERE accountcode = 'ACME'";
    for (url, want) in [
        ("http://93.184.216.34/cb", "must use https"),
        ("https://10.1.2.3/cb", "private, loopback or link-local"),
        ("https://192.168.1.10/cb", "private, loopback or link-local"),
        (
            "https://169.254.169.254/latest/meta-data",
            "private, loopback or link-local",
        ),
        ("https://[::1]/cb", "private, loopback or link-local"),
        ("https://127.0.0.1/cb", "private, loopback or link-local"),
        ("https://localhost/cb", "resolves only to private"),
        (
            "http://127.0.0.1:9/cb",
            "DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS",
        ),
        ("ftp://93.184.216.34/cb", "must use https"),
        ("not a url", "not a valid URL"),
    ] {
        ctl(&app, &["account", "update", "ACME", "--callback-url", url]).refused(want);
        ctl(&app, &["account", "create", "NEW", "--callback-url", url]).refused(want);
    }
    assert_eq!(text(&app, url_sql).await, "-");
    assert_eq!(
        text(
            &app,
            "SELECT count(*)::text AS v FROM accounts WHERE accountcode = 'NEW'"
        )
        .await,
        "0"
    );
    // credentials in the URL: refused without repeating them
    let r = ctl(
        &app,
        &words("account update ACME --callback-url https://u:hunter2@93.184.216.34/cb"),
    );
    r.refused("user name or password");
    assert!(!r.stderr.contains("hunter2"));

    // the deployment allows http to loopback: accepted, but still never private addresses
    let allow = [("DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS", "true")];
    let r = ctl_env(
        &app,
        &allow,
        &words("account update ACME --callback-url http://127.0.0.1:9/cb"),
    );
    r.assert_ok();
    assert_eq!(text(&app, url_sql).await, "http://127.0.0.1:9/cb");
    ctl_env(
        &app,
        &allow,
        &words("account update ACME --callback-url http://10.0.0.1/cb"),
    )
    .refused("must use https");
    ctl_env(
        &app,
        &allow,
        &[
            "account",
            "create",
            "NEW",
            "--callback-url",
            "https://172.16.0.1/cb",
        ],
    )
    .refused("private, loopback or link-local");
    // a public https URL is fine anywhere
    let r = ctl(
        &app,
        &words("account create NEW --callback-url https://93.184.216.34/cb --json"),
    );
    r.assert_ok();
    assert_eq!(
        text(
            &app,
            "SELECT callback_url AS v FROM accounts WHERE accountcode = 'NEW'"
        )
        .await,
        "https://93.184.216.34/cb"
    );
}

// ---- with the real callback worker ----

async fn wait_for_status(c: &Client, event_id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let v = c.get(&format!("/api/v1/callbacks/{event_id}")).await.json();
        if v["delivery_status"] == want {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{event_id} never became {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_event_failed_by_the_worker_is_listed_and_replayed() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let status = Arc::new(AtomicU16::new(503));
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
    let port = receiver(status.clone(), seen.clone()).await;
    // The bodies the receiver took (answered 2xx).
    let accepted = || -> Vec<String> {
        seen.lock()
            .expect("lock")
            .iter()
            .filter(|s| s.answered == 200)
            .map(|s| String::from_utf8_lossy(&s.body).into_owned())
            .collect()
    };
    let url = format!("http://127.0.0.1:{port}/cb");
    let r = ctl_env(
        &app,
        &[("DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS", "true")],
        &["account", "update", "ACME", "--callback-url", &url],
    );
    r.assert_ok();

    // the worker, in process, with a compressed schedule: 3 tries 100 ms apart
    let mut config = callback_worker::WorkerConfig::for_tests(app.env.config.clone());
    config.schedule =
        callback_worker::schedule::RetrySchedule::parse("100ms,100ms", 0.0).expect("schedule");
    config.shutdown_grace = Duration::from_secs(2);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(callback_worker::Engine::new(config, app.pool.clone()).run(stopped));

    let ids = cancelled_events(&app, &acme, 5, 1).await;
    let id = ids[0].clone();
    let failed = wait_for_status(&acme, &id, "failed").await;
    assert_eq!(failed["delivery_attempts"], 3, "{failed}");
    assert_eq!(failed["last_error"], "HTTP 503");
    let deliveries = failed["deliveries"].as_array().cloned().unwrap_or_default();
    assert_eq!(deliveries.len(), 3, "{failed}");
    for d in &deliveries {
        assert_eq!(d["status_code"], 503);
        assert_eq!(d["url"], url.as_str());
        assert_eq!(d["response_head"], "receiver says hello");
    }
    let listed = acme.get("/api/v1/callbacks?status=failed").await.json();
    assert_eq!(ids_of(&listed), vec![id.clone()]);
    let r = ctl(
        &app,
        &words("callbacks list --account ACME --status failed"),
    );
    assert!(
        r.stdout.contains(&id) && r.stdout.contains("HTTP 503"),
        "{}",
        r.stdout
    );
    assert!(accepted().is_empty());

    // the endpoint is back; the operator replays what failed
    status.store(200, Ordering::SeqCst);
    let r = ctl(
        &app,
        &words("callbacks replay --account ACME --failed --json"),
    );
    r.assert_ok();
    assert_eq!(r.json()["event_ids"], json!([id]));
    let delivered = wait_for_status(&acme, &id, "delivered").await;
    assert_eq!(delivered["delivery_attempts"], 4);
    assert_eq!(delivered["deliveries"][3]["status_code"], 200);
    assert_eq!(delivered["deliveries"][3]["attempt"], 4);
    let bodies = accepted();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let sent: Value = serde_json::from_str(&bodies[0]).expect("JSON body");
    assert_eq!(sent["event_id"], id.as_str());
    assert_eq!(sent, delivered["body"], "a replay sends the same body");

    // and a client may ask for a delivered event again through the API
    let r = acme
        .post_json("/api/v1/callbacks/redeliver", &json!({"event_ids": [id]}))
        .await;
    assert_eq!(r.json()["redelivered"], 1, "{}", r.text);
    let again = wait_for_status(&acme, &id, "delivered").await;
    assert_eq!(again["delivery_attempts"], 5, "{again}");
    assert_eq!(accepted().len(), 2);

    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
}
