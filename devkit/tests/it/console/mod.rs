//! The operator console in a real browser (headless Chromium through WebDriver) against the
//! real binaries: `dialer-api`, `dispatcher` and `callback-worker` as processes, a simulated
//! Asterisk server, an account whose callbacks a receiver of this test verifies. An operator
//! signs in (a bad token first), watches a batch dial to its end without reloading, pauses
//! another and sees dialing stop, replays failed callbacks, disables and enables a server,
//! finds it all in the audit log, and signs out; forged requests with the browser's own cookie
//! are refused. The protections in detail are tested over plain HTTP in
//! `dialer-api/tests/it/console.rs`.

mod browser;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use serde_json::{Value, json};

use dialer_api::ops::accounts::{AccountUpdate, CreatedAccount};
use dialer_api::ops::operators;
use dialer_core::db::{self, DbPool};
use dialer_core::test_support::TestEnv;
use dialer_devkit::api_client::ApiClient;
use dialer_devkit::platform::{self, Processes, RunningServices, SimSpec};
use dialer_devkit::receiver::Receiver;
use dialer_devkit::seed;

use crate::helpers::{binaries, repo_root, start_lean_services};
use browser::Browser;

/// The platform of one test: its processes stop when it is dropped.
struct Platform {
    _env: TestEnv,
    processes: Processes,
    services: RunningServices,
    pool: DbPool,
    logs: PathBuf,
    acme: CreatedAccount,
    receiver: Receiver,
}

/// One simulated server (`ast1`, the demo's outcomes by the number's last two digits), account
/// ACME at 5 calls per second with a receiver refusing callbacks for `refuse_for`, and the
/// services with `extra` in their environment.
async fn platform(refuse_for: Duration, extra: &[(&str, &str)]) -> Platform {
    let env = TestEnv::new().await;
    let bins = binaries();
    let logs = std::env::temp_dir().join(format!("dialer-console-{}", env.config.queue_prefix));
    let mut processes = Processes::new(&logs).expect("log dir");
    let sim = SimSpec {
        code: "ast1".to_owned(),
        config: Some(repo_root().join("examples/ami-sim/demo.toml")),
        instant_answer: false,
    };
    let sims = platform::start_sims(&bins, &mut processes, &[sim])
        .await
        .expect("simulator");
    let pool = db::build_pool(&env.config, "console-test").expect("pool");
    let settings = AccountUpdate {
        ring_timeout_seconds: Some(3),
        calls_per_second: Some(5),
        max_concurrent_calls: Some(20),
        ..AccountUpdate::default()
    };
    let (acme, receiver) = seed::account_with_receiver(&pool, "ACME", "US", settings, refuse_for)
        .await
        .expect("account ACME");
    seed::servers(&pool, &sims, 40, 20).await.expect("server");
    let vars = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let services = start_lean_services(&bins, &mut processes, &env, vars).await;
    Platform {
        _env: env,
        processes,
        services,
        pool,
        logs,
        acme,
        receiver,
    }
}

impl Platform {
    fn api(&self) -> ApiClient {
        ApiClient::new(&self.services.api_url, &self.acme.api_key)
    }

    /// Submits batch `batch_id` of these numbers and dispatches it, as a client does.
    async fn dial(&self, batch_id: i64, numbers: &[String]) {
        let data: Vec<Value> = numbers
            .iter()
            .map(|n| json!({ "phone_number": n }))
            .collect();
        let r = self
            .api()
            .submit(&json!({ "batch_id": batch_id, "data": data }))
            .await
            .expect("submit");
        assert_eq!(r["accepted"], json!(numbers.len()), "{r}");
        self.api().dispatch(batch_id).await.expect("dispatch");
    }

    async fn count(&self, sql: &str) -> i64 {
        // Here only: its `execute` would hide the browser client's.
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.expect("conn");
        diesel::sql_query(sql)
            .get_result::<N>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    }

    /// A signed-in browser on the console, as operator `name`; a wrong token is tried first.
    async fn operator_signs_in(&self, name: &str) -> Browser {
        let token = operators::create(&self.pool, name)
            .await
            .expect("operator")
            .token;
        let b = Browser::start(&self.logs).await;
        let base = &self.services.api_url;
        b.client
            .goto(&format!("{base}/console"))
            .await
            .expect("open the console");
        assert_eq!(b.path().await, "/console/sign-in", "no session: the form");
        b.type_into("#token", "dop_not-a-token").await;
        b.click("#sign-in").await;
        b.wait_text("#notice", Duration::from_secs(10), |t| {
            t.contains("not accepted")
        })
        .await;
        b.type_into("#token", &token).await;
        b.click("#sign-in").await;
        b.wait_text("#operator", Duration::from_secs(10), |t| t == name)
            .await;
        b.wait_text("#conn", Duration::from_secs(10), |t| t == "live")
            .await;
        b
    }

    /// Clicks `button`, checks the confirmation asks `question`, confirms, and waits for the
    /// result line to say `result`.
    async fn confirm_action(&self, b: &Browser, button: &str, question: &str, result: &str) {
        b.click(button).await;
        let asked = b
            .wait_text("#confirm-text", Duration::from_secs(5), |t| !t.is_empty())
            .await;
        assert_eq!(asked, question);
        b.click("#confirm-yes").await;
        b.wait_text("#result", Duration::from_secs(15), |t| t.contains(result))
            .await;
    }
}

/// `+1 <area> 555-01xx` for `xx` in `last_two`: the simulator's outcome is chosen by `xx`.
fn numbers(area: u32, last_two: std::ops::Range<u32>) -> Vec<String> {
    last_two.map(|i| format!("+1{area}55501{i:02}")).collect()
}

/// A row's cell text, by the row's key (`ACME/1`, `ACME`, `ast1`).
fn cell(table: &str, key: &str, cell: &str) -> String {
    format!("#{table} tr[data-key=\"{key}\"] td.{cell}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_a_batch_finish_pauses_another_and_signs_out() {
    let p = platform(Duration::ZERO, &[]).await;
    let b = p.operator_signs_in("alice").await;
    // Marks this page: still there at the end means it never reloaded.
    b.client
        .execute("window.consoleMark = 42; return 1;", vec![])
        .await
        .expect("script");

    // Batch 1, twenty numbers that answer: the page follows it to its end by itself.
    p.dial(1, &numbers(201, 0..20)).await;
    let status = cell("batches", "ACME/1", "status");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = b.text(&status).await.unwrap_or_default();
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "batch 1 did not end: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen.iter().any(|s| s == "dispatching"),
        "the page never showed the batch dialing: {seen:?}"
    );
    let progress = b
        .text(&cell("batches", "ACME/1", "progress"))
        .await
        .unwrap_or_default();
    assert_eq!(progress, "20 / 20 (100%)");
    let answered = b
        .text(&cell("batches", "ACME/1", "answered"))
        .await
        .unwrap_or_default();
    assert_eq!(answered, "20");

    // Batch 2, a hundred numbers of every outcome at 5 calls per second: paused while it dials.
    p.dial(2, &numbers(202, 0..100)).await;
    b.wait_text(
        &cell("batches", "ACME/2", "status"),
        Duration::from_secs(20),
        |t| t == "dispatching",
    )
    .await;
    b.wait_text(
        &cell("batches", "ACME/2", "progress"),
        Duration::from_secs(20),
        |t| !t.starts_with("0 /"),
    )
    .await;
    if std::env::var_os("DIALER_CONSOLE_SCREENSHOT").is_some() {
        // For the documentation's picture: more of the batch, and the plots' first points.
        b.wait_text(
            &cell("batches", "ACME/2", "progress"),
            Duration::from_secs(40),
            |t| t.contains("(3") || t.contains("(4"),
        )
        .await;
    }
    screenshot(&b, &p).await;
    p.confirm_action(
        &b,
        "#batches tr[data-key=\"ACME/2\"] button.pause",
        "Pause batch ACME/2?",
        "batch ACME/2 is paused",
    )
    .await;
    b.wait_text(
        &cell("batches", "ACME/2", "status"),
        Duration::from_secs(10),
        |t| t == "paused",
    )
    .await;
    // Dialing stopped: no attempt of batch 2 started after the pause.
    let batch2 = "FROM call_attempts t JOIN calls c ON c.id = t.call_pk \
                  JOIN batches x ON x.id = c.batch_pk WHERE x.batch_id = 2";
    let started = p.count(&format!("SELECT count(*) AS n {batch2}")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = p
        .count(&format!(
            "SELECT count(*) AS n {batch2} AND t.originated_at > \
             (SELECT at FROM audit_log WHERE action = 'pause')"
        ))
        .await;
    assert!(started > 0, "batch 2 had not started");
    assert_eq!(after, 0, "calls of batch 2 started after the pause");
    assert_eq!(
        p.count("SELECT count(*) AS n FROM batches WHERE batch_id = 2 AND status = 'paused'")
            .await,
        1
    );

    // The audit log on the page shows the sign-in and the pause.
    let audit = b
        .wait_text("#audit tbody", Duration::from_secs(10), |t| {
            t.contains("ACME/2")
        })
        .await
        .replace('\t', " ");
    assert!(
        audit.contains("alice pause ACME/2 ok") && audit.contains("alice sign_in"),
        "{audit}"
    );

    // The browser's own cookie with a forged token, or no cookie: refused, nothing resumed.
    let cookie = b
        .client
        .get_named_cookie("dialer_console")
        .await
        .expect("the session cookie");
    assert!(cookie.http_only().unwrap_or(false));
    let forged = |cookie: Option<String>| {
        let mut req = reqwest::Client::new()
            .post(format!("{}/console/actions", p.services.api_url))
            .header("Origin", &p.services.api_url)
            .header("X-CSRF-Token", "forged")
            .json(&json!({"action": "resume", "account": "ACME", "batch_id": 2}));
        if let Some(c) = cookie {
            req = req.header("Cookie", format!("dialer_console={c}"));
        }
        req.send()
    };
    let with_cookie = forged(Some(cookie.value().to_owned()))
        .await
        .expect("request");
    assert_eq!(with_cookie.status().as_u16(), 403);
    let without = forged(None).await.expect("request");
    assert_eq!(without.status().as_u16(), 401);
    assert_eq!(
        p.count("SELECT count(*) AS n FROM batches WHERE batch_id = 2 AND status = 'paused'")
            .await,
        1
    );

    let mark = b
        .client
        .execute("return window.consoleMark || 0;", vec![])
        .await
        .expect("script");
    assert_eq!(mark, json!(42), "the page reloaded");

    // Signing out ends the session: the console asks for a token again.
    b.click("#sign-out").await;
    b.wait_text("#notice", Duration::from_secs(10), |t| {
        t.contains("signed out")
    })
    .await;
    b.client
        .goto(&format!("{}/console", p.services.api_url))
        .await
        .expect("open the console");
    assert_eq!(b.path().await, "/console/sign-in");
    b.close().await;
    stop(p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_replays_failed_callbacks_and_disables_a_server() {
    // Every callback fails for the first 12 s: three quick tries each, then failed for good.
    let p = platform(
        Duration::from_secs(12),
        &[
            ("DIALER_CALLBACK_RETRY_SCHEDULE", "200ms,200ms"),
            ("DIALER_CALLBACK_CIRCUIT_FAILURES", "1000"),
        ],
    )
    .await;
    let started = Instant::now();
    p.dial(1, &numbers(201, 0..3)).await;
    let b = p.operator_signs_in("bob").await;
    let failed_sql = "SELECT count(*) AS n FROM call_events WHERE delivery_status = 'failed'";
    let settled = "SELECT count(*) AS n FROM call_events WHERE delivery_status = 'pending'";
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.count(failed_sql).await < 9 || p.count(settled).await > 0 {
        assert!(Instant::now() < deadline, "the callbacks did not all fail");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let failed = p.count(failed_sql).await;
    b.wait_text(
        &cell("accounts", "ACME", "failed"),
        Duration::from_secs(10),
        |t| t == failed.to_string(),
    )
    .await;
    // The receiver is back; replay from the console.
    if let Some(rest) = Duration::from_secs(12).checked_sub(started.elapsed()) {
        tokio::time::sleep(rest + Duration::from_millis(200)).await;
    }
    p.confirm_action(
        &b,
        "#accounts tr[data-key=\"ACME\"] button.replay",
        "Send every failed callback of ACME again?",
        &format!("{failed} failed callbacks of ACME will be sent again"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while p
        .count("SELECT count(*) AS n FROM call_events WHERE delivery_status <> 'delivered'")
        .await
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the replayed callbacks were not delivered"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(p.receiver.event_count() as i64, failed);
    assert_eq!(p.receiver.snapshot().bad_signatures, 0);
    b.wait_text(
        &cell("accounts", "ACME", "failed"),
        Duration::from_secs(10),
        |t| t == "0",
    )
    .await;

    // A server out and back.
    b.wait_text(
        &cell("servers", "ast1", "state"),
        Duration::from_secs(10),
        |t| t == "connected",
    )
    .await;
    p.confirm_action(
        &b,
        "#servers tr[data-key=\"ast1\"] button.disable",
        "Disable server ast1? No new call will go to it.",
        "server ast1 disabled",
    )
    .await;
    b.wait_text(
        &cell("servers", "ast1", "state"),
        Duration::from_secs(10),
        |t| t == "disabled",
    )
    .await;
    p.confirm_action(
        &b,
        "#servers tr[data-key=\"ast1\"] button.enable",
        "Enable server ast1?",
        "server ast1 enabled",
    )
    .await;
    b.wait_text(
        &cell("servers", "ast1", "state"),
        Duration::from_secs(20),
        |t| t == "connected",
    )
    .await;
    let audit = b
        .wait_text("#audit tbody", Duration::from_secs(10), |t| {
            t.contains("enable_server")
        })
        .await
        .replace('\t', " ");
    for want in [
        "bob replay_failed ACME ok",
        "bob disable_server ast1 ok",
        "bob enable_server ast1 ok",
    ] {
        assert!(audit.contains(want), "{want}: {audit}");
    }
    b.close().await;
    stop(p).await;
}

/// Saves what the page shows to the run's logs, and to `docs/console.png` when
/// `DIALER_CONSOLE_SCREENSHOT` is set (the documentation's picture comes from this test).
async fn screenshot(b: &Browser, p: &Platform) {
    let png = b.client.screenshot().await.expect("screenshot");
    std::fs::write(p.logs.join("console.png"), &png).expect("write the screenshot");
    if std::env::var_os("DIALER_CONSOLE_SCREENSHOT").is_some() {
        std::fs::write(repo_root().join("docs/console.png"), &png).expect("docs/console.png");
    }
}

async fn stop(mut p: Platform) {
    p.processes.stop_all(Duration::from_secs(10)).await;
    p.receiver.stop().await;
}
