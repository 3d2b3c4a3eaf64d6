//! A dispatch whose process dies between the database commit and the publish loses no call:
//! the outbox sweeper of the next process publishes every job, each once.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestApp, drain_dial_queue};
use dialer_api::ops::accounts::{self, CreateAccount};
use dialer_core::db;
use dialer_core::test_support::TestEnv;
use diesel_async::RunQueryDsl;
use serde_json::json;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn killed_between_commit_and_publish_then_swept() {
    let env = TestEnv::new().await;
    let pool = db::build_pool(&env.config, "test").expect("pool");
    let created = accounts::create(
        &pool,
        CreateAccount {
            accountcode: "ACME".into(),
            name: String::new(),
            default_country: "IN".into(),
            timezone: "UTC".into(),
            callback_url: None,
            caller_id: None,
        },
        false,
    )
    .await
    .expect("account");

    // The real binary, told to abort right after the dispatch transaction commits.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialer-api"))
        .env("DATABASE_URL", &env.config.database_url)
        .env("AMQP_URL", &env.config.amqp_url)
        .env("DIALER_QUEUE_PREFIX", &env.config.queue_prefix)
        .env("DIALER_API_ADDR", format!("127.0.0.1:{port}"))
        .env("DIALER_API_WORKERS", "1")
        .env("DIALER_FAILPOINTS", "dispatch-after-commit")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("start dialer-api");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "dialer-api did not start");
    let rows: Vec<_> = (0..20)
        .map(|i| json!({"phone_number": format!("98765{i:05}")}))
        .collect();
    let r = http
        .post(format!("{base}/api/v1/queues/insertdataincallqueue"))
        .header("X-API-KEY", &created.api_key)
        .json(&json!({"batch_id": 1, "data": rows}))
        .send()
        .await
        .expect("insert");
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .post(format!("{base}/api/v1/controls/dispatch-calls"))
        .header("X-API-KEY", &created.api_key)
        .send()
        .await;
    assert!(
        r.is_err(),
        "the process should have died mid-request: {r:?}"
    );
    let status = child.wait().expect("child exit");
    assert!(!status.success());

    // Committed, never published.
    let mut conn = pool.get().await.expect("conn");
    let unpublished: Count =
        diesel::sql_query("SELECT count(*) AS n FROM dial_jobs WHERE published_at IS NULL")
            .get_result(&mut conn)
            .await
            .expect("count");
    assert_eq!(unpublished.n, 20);
    drop(conn);

    // The next process sweeps the outbox.
    let mut env = env;
    env.config.outbox_grace = Duration::ZERO;
    env.config.outbox_interval = Duration::from_millis(200);
    let app = TestApp::spawn_on(env).await;
    let mut jobs = Vec::new();
    for _ in 0..50 {
        jobs.extend(drain_dial_queue(&app).await);
        if jobs.len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    jobs.extend(drain_dial_queue(&app).await);
    let mut calls: Vec<i64> = jobs.iter().map(|j| j.call_pk).collect();
    calls.sort();
    calls.dedup();
    assert_eq!(
        (jobs.len(), calls.len()),
        (20, 20),
        "every call published exactly once"
    );

    // and the client sees its calls dispatched
    let acme = app.client(created.api_key.clone(), "ACME");
    let s = acme.get("/api/v1/queues/batch-status/1").await.json();
    assert_eq!(s["counts"]["scheduled"], 20);
}
