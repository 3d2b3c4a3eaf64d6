//! Test-mode keys: a key of the account's test twin (`<code>-test`), whose data never mixes with
//! the live account's and whose calls are published for simulated PBXs only.

use serde_json::json;

use crate::helpers::{TestApp, drain_dial_queue};

#[tokio::test]
async fn a_test_key_works_on_the_twin_and_its_calls_are_marked_for_a_simulator() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let r = acme
        .post_json(
            "/api/v1/account/keys",
            &json!({"label": "staging", "mode": "test"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json();
    assert_eq!(made["mode"], "test");
    assert_eq!(made["accountcode"], "ACME-test");
    let key = made["api_key"].as_str().unwrap_or_default().to_owned();
    assert!(key.starts_with("dk_test_"), "{key}");
    let test = app.client(key, "ACME-test");

    // The same request as in live mode, the live accountcode included.
    let r = test
        .insert(&json!({"batch_id": 7, "accountcode": "ACME",
                        "data": [{"phone_number": "9876500001"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Another account's code is still refused.
    test.insert(&json!({"batch_id": 7, "accountcode": "OTHER",
                        "data": [{"phone_number": "9876500002"}]}))
        .await
        .assert_error(400, "invalid_request");
    // Test and live data never mix.
    acme.get("/api/v1/queues/batch-status/7")
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        test.get("/api/v1/queues/batch-status/7").await.json()["total_calls"],
        1
    );
    acme.insert_rows(7, vec![json!({"phone_number": "9876500003"})])
        .await;
    assert_eq!(
        acme.get("/api/v1/queues/batch-status/7").await.json()["total_calls"],
        1,
        "the live batch 7 is another batch"
    );

    // No simulated PBX yet: the dry run says test calls wait for one.
    let v = test.dispatch(Some(&json!({"dry_run": true}))).await.json();
    assert_eq!(v["held"][0]["reason"], "no_connected_server", "{v}");
    assert!(
        v["held"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("simulated")),
        "{v}"
    );
    // Dispatched, the job says it is a test call; the live one does not.
    test.dispatch(None).await;
    acme.dispatch(None).await;
    let jobs = drain_dial_queue(&app).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let twin_id = app.count("SELECT account_id AS n FROM test_twins").await;
    for job in &jobs {
        assert_eq!(job.test_mode, job.account_id == twin_id, "{job:?}");
    }

    // A second test key goes to the same twin; a test key makes test keys only.
    let again = acme
        .post_json("/api/v1/account/keys", &json!({"mode": "test"}))
        .await
        .json();
    assert_eq!(again["accountcode"], "ACME-test");
    assert_eq!(app.count("SELECT count(*) AS n FROM test_twins").await, 1);
    let from_test = test
        .post_json("/api/v1/account/keys", &json!({}))
        .await
        .json();
    assert_eq!(from_test["mode"], "test");
    test.post_json("/api/v1/account/keys", &json!({"mode": "live"}))
        .await
        .assert_error(403, "live_key_from_test_mode");
    acme.post_json("/api/v1/account/keys", &json!({"mode": "sandbox"}))
        .await
        .assert_error(400, "invalid_request");
    // The live account's key list holds live keys only.
    let keys = acme.get("/api/v1/account/keys").await.json();
    assert!(
        keys["keys"]
            .as_array()
            .is_some_and(|k| k.iter().all(|k| !k["prefix"]
                .as_str()
                .unwrap_or_default()
                .starts_with("dk_test"))),
        "{keys}"
    );
}
