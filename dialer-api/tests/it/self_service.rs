//! What an account manages itself (issue 16): its callback endpoint and secret, its API keys,
//! its do-not-call list. Each area with another account beside it, and bad input.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::helpers::{Client, Seen, TestApp, receiver};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The last request the receiver took.
fn last_request(seen: &Mutex<Vec<Seen>>) -> Seen {
    seen.lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("a request")
}

fn hex_hmac(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("key");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Standard Webhooks signature (`v1,...`) of `seen` under `secret`.
fn webhook_signature(secret: &str, seen: &Seen) -> String {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = HmacSha256::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.", seen.webhook_id, seen.webhook_timestamp).as_bytes());
    mac.update(&seen.body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn secret_of(app: &TestApp, code: &str) -> String {
    use dialer_core::schema::accounts;
    use diesel::prelude::{ExpressionMethods, QueryDsl};
    use diesel_async::RunQueryDsl;
    let mut conn = app.pool.get().await.expect("conn");
    accounts::table
        .filter(accounts::accountcode.eq(code))
        .select(accounts::callback_secret)
        .first(&mut conn)
        .await
        .expect("secret")
}

async fn loopback_app() -> (TestApp, Client, Client) {
    let app = TestApp::spawn_with(|c| c.allow_http_loopback_callbacks = true).await;
    let acme = app.account("ACME").await;
    let other = app.account("OTHER").await;
    (app, acme, other)
}

#[tokio::test]
async fn the_account_sets_tests_and_clears_its_callback_endpoint() {
    let (app, acme, other) = loopback_app().await;
    let status = Arc::new(AtomicU16::new(200));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let port = receiver(status.clone(), seen.clone()).await;
    let url = format!("http://127.0.0.1:{port}/hook");

    // No URL yet: nothing to test.
    acme.post_json("/api/v1/account/callback/test", &json!({}))
        .await
        .assert_error(409, "no_callback_url");

    let r = acme
        .put_json(
            "/api/v1/account/callback",
            &json!({"url": url, "batch_events": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["account"]["callback_url"], url.as_str(), "{v}");
    assert_eq!(v["account"]["callback_batch_events"], true, "{v}");
    assert!(!r.text.contains("whsec_"), "never a secret: {}", r.text);
    assert_eq!(
        acme.get("/api/v1/account").await.json()["account"]["callback_url"],
        url.as_str()
    );
    // The other account is untouched.
    assert_eq!(
        other.get("/api/v1/account").await.json()["account"]["callback_url"],
        Value::Null
    );

    // The test event: delivered, signed both ways with the account's secret.
    let r = acme
        .post_json("/api/v1/account/callback/test", &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let outcome = r.json();
    assert_eq!(
        (&outcome["delivered"], &outcome["status_code"]),
        (&json!(true), &json!(200)),
        "{outcome}"
    );
    assert_eq!(outcome["response_head"], "receiver says hello");
    let got = last_request(&seen);
    let body: Value = serde_json::from_slice(&got.body).expect("JSON body");
    assert_eq!(body["event_type"], "callback_test");
    assert_eq!(body["accountcode"], "ACME");
    assert_eq!(body["event_id"], outcome["event_id"]);
    assert_eq!(got.webhook_id, outcome["event_id"].as_str().unwrap_or(""));
    let secret = secret_of(&app, "ACME").await;
    assert_eq!(got.x_signature, hex_hmac(secret.as_bytes(), &got.body));
    assert_eq!(got.webhook_signature, webhook_signature(&secret, &got));

    // An endpoint that fails is reported as such, with its status.
    status.store(503, Ordering::SeqCst);
    let outcome = acme
        .post_json("/api/v1/account/callback/test", &json!({}))
        .await
        .json();
    assert_eq!(
        (&outcome["delivered"], &outcome["status_code"]),
        (&json!(false), &json!(503)),
        "{outcome}"
    );

    // Bad input changes nothing.
    for (body, words) in [
        (json!({}), "`url` is required"),
        (json!({"url": 5}), "`url` must be"),
        (
            json!({"url": url, "batch_event": true}),
            "unknown field `batch_event`",
        ),
        (
            json!({"url": "https://10.0.0.1/hook"}),
            "private, loopback or link-local",
        ),
        (
            json!({"url": "ftp://example.com/x"}),
            "callback URL refused",
        ),
        (
            json!({"url": url, "ca_certificate": "not a pem"}),
            "callback CA certificate",
        ),
        (
            json!({"url": url, "batch_events": "yes"}),
            "`batch_events` must be",
        ),
    ] {
        acme.put_json("/api/v1/account/callback", &body)
            .await
            .assert_refused(400, "invalid_request", words);
    }
    let r = acme
        .post_raw("/api/v1/account/callback", Some("text/plain"), "x")
        .await;
    assert_eq!(r.status, 405, "PUT only: {}", r.text);
    assert_eq!(
        acme.get("/api/v1/account").await.json()["account"]["callback_url"],
        url.as_str()
    );

    // Cleared: no URL, and nothing to test.
    let r = acme.delete("/api/v1/account/callback").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["account"]["callback_url"], Value::Null);
    acme.post_json("/api/v1/account/callback/test", &json!({}))
        .await
        .assert_error(409, "no_callback_url");
}

#[tokio::test]
async fn a_rotated_secret_is_shown_once_and_the_old_one_signs_beside_it() {
    let (app, acme, _other) = loopback_app().await;
    let status = Arc::new(AtomicU16::new(200));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let port = receiver(status, seen.clone()).await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let r = acme
        .put_json("/api/v1/account/callback", &json!({"url": url}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let old = secret_of(&app, "ACME").await;

    for (body, words) in [
        (json!({"grace_hours": 721}), "at most 720 hours"),
        (json!({"grace_hours": "x"}), "`grace_hours` must be"),
        (json!({"grace_hours": -1}), "`grace_hours` must be"),
        (json!({"grace": 1}), "unknown field `grace`"),
    ] {
        acme.post_json("/api/v1/account/callback-secret/rotate", &body)
            .await
            .assert_refused(400, "invalid_request", words);
    }
    assert_eq!(
        secret_of(&app, "ACME").await,
        old,
        "refusals change nothing"
    );

    let r = acme
        .post_json(
            "/api/v1/account/callback-secret/rotate",
            &json!({"grace_hours": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rotated = r.json();
    let new = rotated["callback_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{rotated}");
    assert_eq!(secret_of(&app, "ACME").await, new);
    assert!(
        rotated["previous_secret_valid_until"].is_string(),
        "{rotated}"
    );
    let account = acme.get("/api/v1/account").await;
    assert!(!account.text.contains(&new), "shown once: {}", account.text);
    assert_eq!(
        account.json()["account"]["callback_secret_rotating_until"],
        rotated["previous_secret_valid_until"]
    );

    // During the grace period: both signatures, X-Signature on the old secret.
    let outcome = acme
        .post_json("/api/v1/account/callback/test", &json!({}))
        .await
        .json();
    assert_eq!(outcome["delivered"], true, "{outcome}");
    let got = last_request(&seen);
    assert_eq!(got.x_signature, hex_hmac(old.as_bytes(), &got.body));
    assert_eq!(
        got.webhook_signature,
        format!(
            "{} {}",
            webhook_signature(&new, &got),
            webhook_signature(&old, &got)
        )
    );

    // An empty body takes the default grace period.
    let r = acme
        .post_raw("/api/v1/account/callback-secret/rotate", None, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_by_their_account() {
    let (app, acme, other) = loopback_app().await;

    let r = acme
        .post_json("/api/v1/account/keys", &json!({"label": "billing system"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let created = r.json();
    let new_key = created["api_key"].as_str().expect("api_key").to_owned();
    assert!(new_key.starts_with(created["prefix"].as_str().expect("prefix")));
    let new_id = created["key_id"].as_i64().expect("key_id");
    let second = app.client(new_key.clone(), "ACME");

    // Listed (never the key itself), the request's own key marked.
    let list = second.get("/api/v1/account/keys").await;
    assert!(!list.text.contains(&new_key), "{}", list.text);
    let keys = list.json()["keys"].as_array().cloned().expect("keys");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0]["key_id"], new_id);
    assert_eq!(keys[0]["label"], "billing system");
    assert_eq!(keys[0]["current"], true);
    assert_eq!(keys[1]["current"], false);
    // Both were used (the first created the second): their use is written in the background.
    let used_sql = "SELECT count(*) AS n FROM api_keys k JOIN accounts a ON a.id = k.account_id \
                    WHERE a.accountcode = 'ACME' AND k.last_used_at IS NOT NULL";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.count(used_sql).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both ACME keys' use written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let listed = second.get("/api/v1/account/keys").await.json();
    assert!(listed["keys"][0]["last_used_at"].is_string(), "{listed}");
    let first_id = keys[1]["key_id"].as_i64().expect("id");
    // Another account sees only its own, and cannot touch these.
    let theirs = other.get("/api/v1/account/keys").await.json();
    assert_eq!(theirs["keys"].as_array().map(Vec::len), Some(1), "{theirs}");
    other
        .delete(&format!("/api/v1/account/keys/{new_id}"))
        .await
        .assert_error(404, "not_found");

    // Bad input.
    acme.post_json("/api/v1/account/keys", &json!({"label": "x".repeat(101)}))
        .await
        .assert_refused(400, "invalid_request", "`label` is longer");
    acme.post_json("/api/v1/account/keys", &json!({"name": "x"}))
        .await
        .assert_refused(400, "invalid_request", "unknown field `name`");
    acme.delete("/api/v1/account/keys/abc")
        .await
        .assert_error(404, "not_found");

    // The first key revoked with the second: it stops at once; the second goes on.
    let r = second
        .delete(&format!("/api/v1/account/keys/{first_id}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["revoked_at"].is_string());
    acme.get("/api/v1/account")
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(second.get("/api/v1/account").await.status, 200);
    // The last active key stays.
    second
        .delete(&format!("/api/v1/account/keys/{new_id}"))
        .await
        .assert_refused(409, "last_active_key", "last active key");
    assert_eq!(second.get("/api/v1/account").await.status, 200);
    // Revoking again answers as revoked.
    let again = second
        .delete(&format!("/api/v1/account/keys/{first_id}"))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL")
            .await,
        2,
        "OTHER's key and ACME's second"
    );
}

#[tokio::test]
async fn the_account_keeps_its_own_do_not_call_list() {
    let (app, acme, other) = loopback_app().await;
    let r = acme
        .post_json(
            "/api/v1/dnc",
            &json!({"phone_numbers": ["9876500001", "+91 98765 00002", "98765x", "9876500001", 9876500003u64],
                    "reason": "asked by phone"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let added = r.json();
    assert_eq!(added["added"], 3, "{added}");
    assert_eq!(added["already_listed"], 0, "{added}");
    assert_eq!(
        added["rejected"],
        json!([{"index": 2, "phone_number": "98765x", "reason": "invalid_phone_number"}])
    );
    let again = acme
        .post_json("/api/v1/dnc", &json!({"phone_numbers": ["9876500002"]}))
        .await
        .json();
    assert_eq!(
        (&again["added"], &again["already_listed"]),
        (&json!(0), &json!(1))
    );

    // An opt-out by keypress, a global entry, another account's entry.
    app.sql(
        "INSERT INTO dnc_numbers (account_id, phone_e164, reason, source)
           SELECT id, '+919876500009', 'opted out during a call', 'opt_out' FROM accounts WHERE accountcode = 'ACME';
         INSERT INTO dnc_numbers (account_id, phone_e164) VALUES (NULL, '+919876500007');
         INSERT INTO dnc_numbers (account_id, phone_e164, source)
           SELECT id, '+919876500008', 'client' FROM accounts WHERE accountcode = 'OTHER';",
    )
    .await;

    // Listed in the order added, paginated; only the account's own.
    let page = acme.get("/api/v1/dnc?limit=2").await.json();
    let numbers = |v: &Value| -> Vec<String> {
        v["entries"]
            .as_array()
            .map(|es| {
                es.iter()
                    .map(|e| e["phone_number"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(numbers(&page), ["+919876500001", "+919876500002"], "{page}");
    assert_eq!(page["entries"][0]["source"], "client");
    assert_eq!(page["entries"][0]["reason"], "asked by phone");
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let rest = acme
        .get(&format!("/api/v1/dnc?limit=2&cursor={cursor}"))
        .await
        .json();
    assert_eq!(numbers(&rest), ["+919876500003", "+919876500009"], "{rest}");
    assert_eq!(rest["entries"][1]["source"], "opt_out");
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_eq!(
        numbers(&other.get("/api/v1/dnc").await.json()),
        ["+919876500008"]
    );

    // CSV: every entry, with a header.
    let csv = acme.get("/api/v1/dnc?format=csv").await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "phone_number,source,reason,created_at");
    assert_eq!(lines.len(), 5, "{}", csv.text);
    assert!(
        lines[1].starts_with("+919876500001,client,asked by phone,"),
        "{}",
        lines[1]
    );

    // Listed numbers are refused at submission.
    let r = acme
        .insert_rows(
            1,
            vec![
                json!({"phone_number": "9876500001"}),
                json!({"phone_number": "9876500004"}),
            ],
        )
        .await
        .json();
    assert_eq!(r["accepted"], 1, "{r}");
    assert_eq!(r["rejected"][0]["reason"], "do_not_call", "{r}");

    // Removal: the account's own entries; never an opt-out, another account's or the global list's.
    let r = acme.delete("/api/v1/dnc/%2B919876500001").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["phone_number"], "+919876500001");
    acme.delete("/api/v1/dnc/9876500001")
        .await
        .assert_error(404, "not_found");
    acme.delete("/api/v1/dnc/9876500009").await.assert_refused(
        409,
        "dnc_entry_protected",
        "only an operator",
    );
    acme.delete("/api/v1/dnc/9876500008")
        .await
        .assert_error(404, "not_found");
    acme.delete("/api/v1/dnc/9876500007")
        .await
        .assert_error(404, "not_found");
    acme.delete("/api/v1/dnc/not-a-number")
        .await
        .assert_refused(400, "invalid_request", "not a phone number");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM dnc_numbers").await,
        5,
        "the opt-out, the global entry and OTHER's stay"
    );

    // Bad input.
    for (body, words) in [
        (json!({}), "`phone_numbers` is required"),
        (json!({"phone_numbers": []}), "1 to 10000"),
        (
            json!({"phone_numbers": "9876500001"}),
            "`phone_numbers` must be",
        ),
        (
            json!({"phone_numbers": [true]}),
            "`phone_numbers[0]` must be a string",
        ),
        (
            json!({"phone_numbers": ["9876500001"], "why": "x"}),
            "unknown field `why`",
        ),
        (
            json!({"phone_numbers": ["9876500001"], "reason": "x".repeat(201)}),
            "`reason` is longer",
        ),
    ] {
        acme.post_json("/api/v1/dnc", &body)
            .await
            .assert_refused(400, "invalid_request", words);
    }
    let many: Vec<String> = (0..10_001).map(|i| format!("98765{i:05}")).collect();
    acme.post_json("/api/v1/dnc", &json!({"phone_numbers": many}))
        .await
        .assert_refused(400, "invalid_request", "1 to 10000");
    acme.get("/api/v1/dnc?format=xml")
        .await
        .assert_refused(400, "invalid_request", "`format`");
    acme.get("/api/v1/dnc?cursor=x")
        .await
        .assert_refused(400, "invalid_request", "`cursor`");
}

#[tokio::test]
async fn calls_are_searched_across_batches_by_number_status_and_time() {
    let (app, acme, other) = loopback_app().await;
    let rows = |numbers: &[&str]| -> Vec<Value> {
        numbers.iter().map(|n| json!({"phone_number": n})).collect()
    };
    for (batch, numbers) in [
        (1, vec!["9876500001", "9876500002"]),
        (2, vec!["98765 00001", "9876500003"]),
    ] {
        let r = acme.insert_rows(batch, rows(&numbers)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(
        other.insert_rows(1, rows(&["9876500001"])).await.status,
        200
    );
    // Batch 1 was submitted two days ago.
    app.sql(
        "UPDATE calls SET created_at = now() - interval '2 days'
           WHERE batch_pk = (SELECT b.id FROM batches b JOIN accounts a ON a.id = b.account_id
                             WHERE a.accountcode = 'ACME' AND b.batch_id = 1);",
    )
    .await;
    let call_of = |v: &Value, i: usize| v["calls"][i].clone();
    let found = acme.get("/api/v1/calls?phone_number=9876500001").await;
    assert_eq!(found.status, 200, "{}", found.text);
    let found = found.json();
    assert_eq!(found["calls"].as_array().map(Vec::len), Some(2), "{found}");
    // Newest first, each with its batch and the number as submitted.
    assert_eq!(
        (
            &call_of(&found, 0)["batch_id"],
            &call_of(&found, 0)["phone_number"]
        ),
        (&json!(2), &json!("98765 00001"))
    );
    assert_eq!(
        (
            &call_of(&found, 1)["batch_id"],
            &call_of(&found, 1)["phone_number"]
        ),
        (&json!(1), &json!("9876500001"))
    );
    assert_eq!(call_of(&found, 0)["call_status"], "queued");
    assert_eq!(call_of(&found, 0)["phone_number_e164"], "+919876500001");
    let same = acme
        .get("/api/v1/calls?phone_number=%2B919876500001")
        .await
        .json();
    assert_eq!(same["calls"], found["calls"]);

    // How many calls a search finds, and the page.
    let search = async |query: String| -> (usize, Value) {
        let page = acme.get(&format!("/api/v1/calls?{query}")).await.json();
        (page["calls"].as_array().map_or(0, Vec::len), page)
    };

    // By submission time: a date is a whole day in UTC.
    let today = chrono::Utc::now().date_naive();
    let two_days_ago = today - chrono::Days::new(2);
    let (n, old) = search(format!("from={two_days_ago}&to={two_days_ago}")).await;
    assert_eq!(n, 2, "{old}");
    let (n, recent) = search(format!("from={today}")).await;
    assert_eq!(n, 2, "{recent}");
    let instant = (chrono::Utc::now() - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (n, r) = search(format!("to={instant}")).await;
    assert_eq!(n, 2, "{r}");

    // By what the entry shows, and paginated.
    let (n, queued) = search("status=queued&limit=3".into()).await;
    assert_eq!(n, 3, "{queued}");
    let cursor = queued["next_cursor"].as_str().expect("cursor").to_owned();
    let (n, rest) = search(format!("status=queued&limit=3&cursor={cursor}")).await;
    assert_eq!(n, 1, "{rest}");
    assert_eq!(rest["next_cursor"], Value::Null);
    let busy = acme.get("/api/v1/calls?status=busy").await.json();
    assert_eq!(busy["calls"], json!([]));

    // CSV: every match, newest first.
    let csv = acme
        .get("/api/v1/calls?phone_number=9876500001&format=csv")
        .await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.text);
    assert!(lines[1].contains("98765 00001"), "{}", lines[1]);

    // Never another account's.
    let theirs = other.get("/api/v1/calls").await.json();
    assert_eq!(
        theirs["calls"].as_array().map(Vec::len),
        Some(1),
        "{theirs}"
    );

    for (query, words) in [
        ("phone_number=abc", "`phone_number` is not a phone number"),
        ("from=yesterday", "`from` must be RFC 3339"),
        ("to=2026-13-01", "`to` must be RFC 3339"),
        ("status=ringing", "`status`"),
        ("phone=9876500001", "unknown query parameter `phone`"),
        ("limit=0", "`limit`"),
        ("cursor=-5", "`cursor`"),
        ("format=pdf", "`format`"),
    ] {
        acme.get(&format!("/api/v1/calls?{query}"))
            .await
            .assert_refused(400, "invalid_request", words);
    }
}

#[tokio::test]
async fn erasing_a_number_removes_its_calls_events_and_recordings_but_keeps_its_opt_out() {
    let (app, acme, other) = loopback_app().await;
    let rows = |numbers: &[&str]| -> Vec<Value> {
        numbers
            .iter()
            .map(|n| json!({"phone_number": n, "custom_data": {"name": "Asha"}}))
            .collect()
    };
    assert_eq!(
        acme.insert_rows(1, rows(&["9876500001", "9876500002"]))
            .await
            .status,
        200
    );
    assert_eq!(acme.insert_rows(2, rows(&["9876500001"])).await.status, 200);
    assert_eq!(
        other.insert_rows(1, rows(&["9876500001"])).await.status,
        200
    );
    let acme_number = "c.phone_e164 = '+919876500001' AND c.account_id = \
                       (SELECT id FROM accounts WHERE accountcode = 'ACME')";
    // One of its calls was dialed busy, with a delivery try and a recording.
    app.sql(&crate::helpers::outcome_sql(
        &format!("{acme_number} AND c.batch_pk = (SELECT min(batch_pk) FROM calls)"),
        "busy",
        "call_busy",
        "busy",
    ))
    .await;
    let event_id = {
        let v = acme
            .get("/api/v1/calls?phone_number=9876500001&status=busy")
            .await
            .json();
        v["calls"][0]["event_id"]
            .as_str()
            .expect("event")
            .to_owned()
    };
    app.sql(&crate::helpers::two_tries_sql(&event_id, "busy receiver"))
        .await;
    let store = dialer_api::recording_store::RecordingStore::open(&app.env.config.recordings_store)
        .expect("store");
    let key = "recordings/erasure-test/1.wav";
    store
        .put(key, bytes::Bytes::from_static(b"RIFF...."))
        .await
        .expect("file");
    app.sql(&format!(
        "INSERT INTO recordings (call_pk, attempt, account_id, object_key, bytes, duration_seconds, expires_at)
           SELECT c.id, 1, c.account_id, '{key}', 8, 1, now() + interval '1 day' FROM calls c
           WHERE {acme_number} AND c.status = 'busy';
         INSERT INTO dnc_numbers (account_id, phone_e164, reason, source)
           SELECT id, '+919876500001', 'opted out during a call', 'opt_out' FROM accounts WHERE accountcode = 'ACME';"
    ))
    .await;

    // Refused while a call to it is in progress; nothing goes.
    app.sql(&format!(
        "UPDATE calls c SET status = 'dialing' WHERE {acme_number} AND c.status = 'queued'"
    ))
    .await;
    acme.delete("/api/v1/numbers/9876500001")
        .await
        .assert_refused(409, "call_in_progress", "in progress");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM calls c WHERE {acme_number}"
        ))
        .await,
        2
    );
    app.sql(&format!(
        "UPDATE calls c SET status = 'queued' WHERE {acme_number} AND c.status = 'dialing'"
    ))
    .await;

    let r = acme.delete("/api/v1/numbers/%2B919876500001").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"status": "success", "phone_number": "+919876500001", "calls": 2, "events": 1,
               "recordings": 1, "do_not_call_kept": true})
    );
    for table in [
        "calls c",
        "call_events c",
        "callback_deliveries c",
        "recordings c",
    ] {
        let rows = match table {
            "calls c" => format!("SELECT count(*) AS n FROM calls c WHERE {acme_number}"),
            "call_events c" => "SELECT count(*) AS n FROM call_events".to_owned(),
            "callback_deliveries c" => "SELECT count(*) AS n FROM callback_deliveries".to_owned(),
            _ => "SELECT count(*) AS n FROM recordings".to_owned(),
        };
        assert_eq!(app.count(&rows).await, 0, "{table}");
    }
    assert_eq!(
        store.get(key).await.expect("store"),
        None,
        "the file is gone"
    );
    let found = acme
        .get("/api/v1/calls?phone_number=9876500001")
        .await
        .json();
    assert_eq!(found["calls"], json!([]));
    // What is not this number, or not this account's, stays; so does the opt-out.
    assert_eq!(
        acme.get("/api/v1/calls").await.json()["calls"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        other.get("/api/v1/calls").await.json()["calls"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(acme.batch_status(1, "").await["total_calls"], 1);
    let listed = acme.get("/api/v1/dnc").await.json();
    assert_eq!(
        listed["entries"][0]["phone_number"], "+919876500001",
        "{listed}"
    );
    // A batch with nothing left to finish is complete.
    assert_eq!(acme.batch_status(2, "").await["batch_status"], "completed");

    // Again: nothing left, still a success.
    let again = acme.delete("/api/v1/numbers/9876500001").await.json();
    assert_eq!(
        (&again["calls"], &again["events"]),
        (&json!(0), &json!(0)),
        "{again}"
    );
    acme.delete("/api/v1/numbers/call-me").await.assert_refused(
        400,
        "invalid_request",
        "not a phone number",
    );
}
