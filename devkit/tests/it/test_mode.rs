//! Test mode end to end, as deployed: the real binaries, a "real" PBX and a simulated one (two
//! ami-sims, the second registered `simulated`). A batch submitted with a test-mode key goes
//! through the API, RabbitMQ, the dispatcher, the simulated PBX and the callback worker; a live
//! batch with the same batch_id and the live key goes to the other PBX; neither sees the other.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use dialer_api::ops::accounts::AccountUpdate;
use dialer_core::db;
use dialer_core::test_support::TestEnv;
use dialer_devkit::api_client::ApiClient;
use dialer_devkit::{report, seed};

use crate::helpers::{batch_slice, start_lean_services, two_demo_sims};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_mode_batch_runs_the_whole_platform_on_the_simulated_pbx_only() {
    let env = TestEnv::new().await;
    let (bins, logs, mut processes, sims) = two_demo_sims(&env, "test-mode").await;
    let pool = db::build_pool(&env.config, "test-mode").expect("pool");
    let settings = AccountUpdate {
        ring_timeout_seconds: Some(3),
        calls_per_second: Some(20),
        max_concurrent_calls: Some(40),
        ..AccountUpdate::default()
    };
    let (alpha, receiver) =
        seed::account_with_receiver(&pool, "ALPHA", "US", settings, Duration::ZERO)
            .await
            .expect("account ALPHA");
    seed::servers(&pool, &sims, 40, 25).await.expect("servers");
    let simulated = sims[1].code.clone();
    {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = pool.get().await.expect("conn");
        conn.batch_execute(&format!(
            "UPDATE asterisk_servers SET simulated = (code = '{simulated}')"
        ))
        .await
        .expect("mark the simulator");
    }
    let services = start_lean_services(&bins, &mut processes, &env, Vec::new()).await;

    // A test-mode key, asked for with the live one.
    let made: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/account/keys", services.api_url))
        .header("X-API-KEY", &alpha.api_key)
        .json(&json!({"label": "staging", "mode": "test"}))
        .send()
        .await
        .expect("POST /account/keys")
        .json()
        .await
        .expect("JSON");
    assert_eq!(made["accountcode"], "ALPHA-test", "{made}");
    let test_key = made["api_key"].as_str().expect("a key").to_owned();
    let live = ApiClient::new(&services.api_url, &alpha.api_key);
    let test = ApiClient::new(&services.api_url, &test_key);

    // The same batch_id in both modes: two batches.
    let r = test
        .submit(&batch_slice(700, 0..20))
        .await
        .expect("test submit");
    assert_eq!(r["accepted"], 20, "{r}");
    let r = live
        .submit(&batch_slice(700, 20..50))
        .await
        .expect("live submit");
    assert_eq!(r["accepted"], 30, "{r}");
    test.dispatch(700).await.expect("test dispatch");
    live.dispatch(700).await.expect("live dispatch");

    let twin_id = {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            account_id: i64,
        }
        let mut conn = pool.get().await.expect("conn");
        diesel::sql_query("SELECT account_id FROM test_twins")
            .get_result::<Id>(&mut conn)
            .await
            .expect("the twin")
            .account_id
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        processes.check_alive().expect("platform processes alive");
        let t = test.batch_status(700).await.expect("test status");
        let l = live.batch_status(700).await.expect("live status");
        let te = report::events(&pool, twin_id).await.expect("events");
        let le = report::events(&pool, alpha.account.id)
            .await
            .expect("events");
        if t["batch_status"] == "completed"
            && l["batch_status"] == "completed"
            && te.written > 0
            && te.delivered == te.written
            && le.delivered == le.written
        {
            assert_eq!(t["total_calls"], 20, "{t}");
            assert_eq!(l["total_calls"], 30, "{l}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done: test {} {te:?}, live {} {le:?}; logs in {}",
            t["batch_status"],
            l["batch_status"],
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every attempt on the PBX of its mode.
    let placed = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let mut conn = pool.get().await.expect("conn");
            diesel::sql_query(sql)
                .get_result::<N>(&mut conn)
                .await
                .expect("count")
                .n
        }
    };
    let on_simulator = "SELECT count(*) AS n FROM call_attempts a \
         JOIN asterisk_servers s ON s.id = a.server_id WHERE s.simulated \
         AND a.account_id IN (SELECT account_id FROM test_twins)";
    let misplaced = "SELECT count(*) AS n FROM call_attempts a \
         JOIN asterisk_servers s ON s.id = a.server_id \
         WHERE s.simulated <> (a.account_id IN (SELECT account_id FROM test_twins))";
    assert!(placed(on_simulator).await >= 20);
    assert_eq!(placed(misplaced).await, 0);

    // The callbacks of both modes reached the endpoint, signed with the secret the client has;
    // the test ones name the twin.
    let seen = receiver.snapshot();
    assert_eq!(seen.bad_signatures, 0);
    let test_events = seen
        .call_events()
        .filter(|e| e.body["accountcode"] == "ALPHA-test")
        .count();
    let live_events = seen
        .call_events()
        .filter(|e| e.body["accountcode"] == "ALPHA")
        .count();
    assert!(
        test_events >= 20 && live_events >= 30,
        "{test_events} test, {live_events} live"
    );
    processes.stop_all(Duration::from_secs(10)).await;
}
