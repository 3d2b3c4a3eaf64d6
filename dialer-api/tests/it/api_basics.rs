//! Authentication, the JSON shape of every error, health endpoints, the account endpoint.

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let r = app.raw(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "success");
    let r = app.raw(app.http.get(format!("{}/readyz", app.base))).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn readyz_reports_an_unreachable_broker() {
    let app =
        TestApp::spawn_with(|c| c.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into()).await;
    let r = app.raw(app.http.get(format!("{}/readyz", app.base))).await;
    r.assert_error(503, "not_ready");
}

#[tokio::test]
async fn missing_or_wrong_key_is_401_json() {
    let app = TestApp::spawn().await;
    let _acme = app.account("ACME").await;
    let r = app
        .raw(app.http.get(format!("{}/api/v1/account", app.base)))
        .await;
    r.assert_error(401, "unauthorized");
    let r = app
        .raw(
            app.http
                .get(format!("{}/api/v1/account", app.base))
                .header("X-API-KEY", "dk_nope"),
        )
        .await;
    r.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn revoked_key_and_suspended_account_are_refused() {
    let (app, acme) = TestApp::with_account("ACME").await;
    assert_eq!(acme.get("/api/v1/account").await.status, 200);
    app.sql("UPDATE accounts SET status = 'suspended'").await;
    let r = acme.get("/api/v1/account").await;
    r.assert_error(403, "account_suspended");
    app.sql("UPDATE accounts SET status = 'active'; UPDATE api_keys SET revoked_at = now()")
        .await;
    assert_eq!(acme.get("/api/v1/account").await.status, 401);
}

#[tokio::test]
async fn account_times_are_whole_seconds() {
    let (app, acme) = TestApp::with_account("ACME").await;
    // A rotation in progress (the previous secret still signs), with fractions in the database.
    app.sql("UPDATE accounts SET created_at = '2026-01-02 03:04:05.678901+00',
                                 callback_secret_previous = 'whsec_b2xk',
                                 callback_secret_previous_until = now() + interval '1 hour 0.25 seconds'")
        .await;
    let v = acme.get("/api/v1/account").await.json();
    let whole = |t: &serde_json::Value| {
        let t = t.as_str().unwrap_or_default();
        t.len() == 20 && t.ends_with('Z') && !t.contains('.')
    };
    assert_eq!(v["account"]["created_at"], "2026-01-02T03:04:05Z");
    let until = &v["account"]["callback_secret_rotating_until"];
    assert!(whole(until), "{until}");
}

#[tokio::test]
async fn account_shows_settings_but_never_secrets() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let r = acme.get("/api/v1/account").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["account"]["accountcode"], "ACME");
    assert_eq!(v["account"]["default_country"], "IN");
    assert_eq!(v["account"]["limits"]["max_rows_per_request"], 50000);
    assert_eq!(v["usage"]["queued_calls"], 0);
    assert!(!r.text.contains("whsec_"), "secret leaked: {}", r.text);
    assert!(!r.text.contains(&acme.key));
}

#[tokio::test]
async fn actix_errors_speak_the_contract() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 1024).await;
    let acme = app.account("ACME").await;

    let r = acme.get("/api/v1/nope").await;
    r.assert_error(404, "not_found");
    let r = app
        .raw(app.http.get(format!("{}/totally/unknown", app.base)))
        .await;
    r.assert_error(404, "not_found");

    let r = acme.get("/api/v1/controls/dispatch-calls").await;
    r.assert_error(405, "method_not_allowed");
    let r = app
        .raw(
            app.http
                .delete(format!("{}/api/v1/queues/insertdataincallqueue", app.base)),
        )
        .await;
    r.assert_error(405, "method_not_allowed");

    let r = acme
        .post_json_text(
            "/api/v1/queues/insertdataincallqueue/",
            "{\"batch_id\": 1, ",
        )
        .await;
    r.assert_refused(400, "invalid_request", "malformed JSON");

    let r = acme
        .post_raw(
            "/api/v1/queues/insertdataincallqueue/",
            Some("text/plain"),
            "{}",
        )
        .await;
    r.assert_error(415, "unsupported_media_type");

    let big = format!(
        "{{\"batch_id\": 1, \"data\": [{}]}}",
        vec!["{\"phone_number\": \"9876543210\"}"; 100].join(",")
    );
    let r = acme
        .post_json_text("/api/v1/queues/insertdataincallqueue/", &big)
        .await;
    r.assert_error(413, "payload_too_large");

    let r = acme.get("/api/v1/queues/batch-status/abc").await;
    r.assert_refused(400, "invalid_request", "batch_id");
    let r = acme.control(-4, "pause").await;
    r.assert_error(400, "invalid_request");
    let r = acme.get("/api/v1/calls/not-a-uuid").await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn rate_limited_per_key_with_retry_after() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let beta = app.account("BETA").await;
    app.sql("UPDATE accounts SET api_requests_per_second = 2 WHERE accountcode = 'ACME'")
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = acme.get("/api/v1/account").await;
        if r.status == 429 {
            assert_eq!(r.error_code(), "rate_limited");
            let retry_after = r
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
                "Retry-After `{retry_after}`"
            );
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    assert_eq!(
        beta.get("/api/v1/account").await.status,
        200,
        "another key is not limited"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let r = app.raw(app.http.get(format!("{}/nope", app.base))).await;
    let id = r
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(id.len(), 32, "{id}");
    let r2 = app.raw(app.http.get(format!("{}/healthz", app.base))).await;
    assert_ne!(
        r2.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(id)
    );
}

#[tokio::test]
async fn metrics_in_prometheus_format() {
    let (app, acme) = TestApp::with_account("ACME").await;
    acme.insert(&serde_json::json!({"batch_id": 1, "data": [{"phone_number": "9876543210"}, {"phone_number": "1"}]}))
        .await;
    acme.get("/api/v1/queues/batch-status/1").await;
    let r = app.raw(app.http.get(format!("{}/metrics", app.base))).await;
    assert_eq!(r.status, 200);
    let t = &r.text;
    assert!(
        t.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"route="/api/v1/queues/batch-status/{batch_id}""#)
            && l.contains(r#"status="200""#)),
        "{t}"
    );
    assert!(t.contains("http_request_duration_seconds_bucket{"), "{t}");
    assert!(
        t.contains(r#"ingest_rows_total{outcome="accepted"} 1"#),
        "{t}"
    );
    assert!(
        t.contains(r#"ingest_rows_rejected_total{reason="invalid_phone_number"} 1"#),
        "{t}"
    );
    assert!(!t.contains("9876543210"));
}

#[tokio::test]
async fn invented_methods_share_one_metrics_label() {
    let app = TestApp::spawn().await;
    for name in ["FOOBAR", "BAZQUUX"] {
        let method = reqwest::Method::from_bytes(name.as_bytes()).expect("method");
        app.raw(app.http.request(method, format!("{}/healthz", app.base)))
            .await;
    }
    let t = app
        .raw(app.http.get(format!("{}/metrics", app.base)))
        .await
        .text;
    let other: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains(r#"method="other""#))
        .collect();
    assert_eq!(other.len(), 1, "{t}");
    assert!(other[0].ends_with(" 2"), "{t}");
    assert!(!t.contains("FOOBAR") && !t.contains("BAZQUUX"), "{t}");
}

#[tokio::test]
async fn refuses_to_start_on_a_newer_schema() {
    let env = dialer_core::test_support::TestEnv::new().await;
    {
        use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
        let mut conn = AsyncPgConnection::establish(&env.config.database_url)
            .await
            .expect("connect");
        conn.batch_execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('99991231000000')",
        )
        .await
        .expect("fake a newer migration");
    }
    let err = dialer_api::startup::Application::build(env.config.clone())
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("newer version") && err.contains("99991231000000"),
        "{err}"
    );
}

#[tokio::test]
async fn database_outage_is_503_json() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let (app, acme) = TestApp::with_account("ACME").await;
    assert_eq!(acme.get("/api/v1/account").await.status, 200);
    let url = app.env.config.database_url.clone();
    let (server, db) = url.rsplit_once('/').expect("database in URL");
    let admin_url = format!("{server}/postgres");
    let mut admin = AsyncPgConnection::establish(&admin_url)
        .await
        .expect("admin");
    let drop = format!("DROP DATABASE {db} WITH (FORCE)");
    admin.batch_execute(&drop).await.expect("drop");
    let r = acme.get("/api/v1/account").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (503, "unavailable"),
        "{}",
        r.text
    );
    let r = app.raw(app.http.get(format!("{}/readyz", app.base))).await;
    r.assert_error(503, "not_ready");
}
