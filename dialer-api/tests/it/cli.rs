//! dialerctl against the real database and broker, next to the running API.

use crate::helpers::{Run, TestApp, dialerctl, drain_dial_queue, words};
use serde_json::json;

fn ctl(app: &TestApp, args: &[&str]) -> Run {
    dialerctl(app, &[("DIALER_AMI_SECRET", "ami-secret-123")], &[], args)
}

#[tokio::test]
async fn operator_workflow() {
    let app = TestApp::spawn().await;
    let r = ctl(&app, &["--json", "migrate"]);
    r.assert_ok();
    assert_eq!(r.json()["applied"], json!([]));

    let r = ctl(
        &app,
        &words("account create ACME --country IN --timezone Asia/Kolkata --json"),
    );
    let created = r.ok_json();
    let key = created["api_key"].as_str().unwrap_or_default().to_owned();
    let secret = created["callback_secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(key.starts_with("dk_"));
    use base64::Engine;
    let raw = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(|b| b.len())
            .ok(),
        Some(32)
    );
    // shown once: list and show never print them
    for args in [
        &["--json", "account", "list"][..],
        &["account", "show", "ACME"][..],
        &["account", "list"][..],
    ] {
        let r = ctl(&app, args);
        r.assert_ok();
        assert!(r.stdout.contains("ACME"));
        assert!(
            !r.stdout.contains(&key) && !r.stdout.contains(&secret),
            "{}",
            r.stdout
        );
    }
    let r = ctl(&app, &words("account create ACME"));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1);

    // the printed key works against the API
    let acme = app.client(key, "ACME");
    let r = acme.insert(&json!({"batch_id": 7, "data": [{"phone_number": "9876543210"}, {"phone_number": "9876543211"}]})).await;
    assert_eq!(r.json()["accepted"], 2, "{}", r.text);

    let r = ctl(
        &app,
        &words(
            "server add --code ast1 --host 127.0.0.1 --username dialer --max-channels 30 --max-cps 10 --channel-template PJSIP/{number}@trunk --json",
        ),
    );
    r.assert_ok();
    let r = ctl(&app, &words("server list --json"));
    assert_eq!(r.json()["servers"][0]["code"], "ast1");
    // No dispatcher reports on it yet; then its holder says it is connected.
    assert_eq!(r.json()["servers"][0]["state"], "not_followed");
    app.sql(
        "INSERT INTO server_status (server_id, holder, connected, draining, capacity_factor, live_calls)
         SELECT id, 'dispatcher-1', true, false, 0.5, 3 FROM asterisk_servers",
    )
    .await;
    let r = ctl(&app, &words("server list --json"));
    let listed = &r.json()["servers"][0];
    assert_eq!(
        (&listed["state"], &listed["holder"], &listed["live_calls"]),
        (&json!("backing_off"), &json!("dispatcher-1"), &json!(3)),
        "{listed}"
    );
    let text = ctl(&app, &words("server list")).stdout;
    assert!(text.contains("backing_off"), "{text}");
    assert!(
        !r.stdout.contains("ami-secret-123"),
        "AMI secret printed: {}",
        r.stdout
    );
    let r = ctl(
        &app,
        &words(
            "server add --code bad --host h --username u --max-channels 1 --max-cps 1 --channel-template PJSIP/trunk",
        ),
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("{number}"), "{}", r.stderr);

    let r = ctl(&app, &words("--json dispatch --account ACME"));
    r.assert_ok();
    assert_eq!(r.json()["dispatched"], 2);
    assert_eq!(
        ctl(&app, &words("--json dispatch --account ACME --batch 7")).json()["dispatched"],
        0
    );
    assert_eq!(drain_dial_queue(&app).await.len(), 2);

    let r = ctl(&app, &words("--json batch status --account ACME --batch 7"));
    let v = r.json();
    assert_eq!(
        (v["batch_status"].clone(), v["total_calls"].clone()),
        (json!("dispatching"), json!(2))
    );
    assert_eq!(
        ctl(&app, &words("--json batch pause --account ACME --batch 7")).json()["batch_status"],
        "paused"
    );
    assert_eq!(
        ctl(&app, &words("--json batch resume --account ACME --batch 7")).json()["batch_status"],
        "dispatching"
    );
    let v = ctl(&app, &words("--json batch cancel --account ACME --batch 7")).json();
    assert_eq!(
        (v["batch_status"].clone(), v["failed_calls"].clone()),
        (json!("cancelled"), json!(2))
    );
    let r = ctl(&app, &words("batch status --account ACME --batch 7"));
    assert!(
        r.stdout.contains("batch 7 cancelled: 2 calls"),
        "{}",
        r.stdout
    );

    let r = ctl(&app, &words("batch status --account ACME --batch 8"));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("batch 8 not found"), "{}", r.stderr);
    let r = ctl(&app, &words("--json dispatch --account NOPE"));
    assert_ne!(r.code, 0);
    assert_eq!(r.json()["status"], "error");
}

#[tokio::test]
async fn refuses_an_unmigrated_database_until_migrate() {
    let app = TestApp::spawn().await;
    app.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .await;
    let r = ctl(&app, &["account", "list"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("dialerctl migrate"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    let r = ctl(&app, &["--json", "migrate"]);
    r.assert_ok();
    let known = dialer_core::migrations::known_versions()
        .expect("embedded")
        .len();
    assert_eq!(r.json()["applied"].as_array().map(Vec::len), Some(known));
    assert_eq!(ctl(&app, &["account", "list"]).code, 0);
}

#[tokio::test]
async fn account_update_rotate_suspend_and_servers() {
    let app = TestApp::spawn().await;
    let r = ctl(&app, &words("--json account create ACME"));
    let key = r.json()["api_key"].as_str().unwrap_or_default().to_owned();
    let old = app.client(key, "ACME");

    let r = ctl(
        &app,
        &[
            "--json",
            "account",
            "update",
            "ACME",
            "--allowed-countries",
            "in,us",
            "--max-queued-calls",
            "5",
            "--calling-hours",
            r#"{"start":"09:00","end":"21:00","days":["mon"]}"#,
            "--retry-on",
            "busy,no_answer",
            "--callback-url",
            "https://example.com/hook",
            "--batch-events",
            "true",
            "--timezone",
            "Asia/Kolkata",
        ],
    );
    r.assert_ok();
    let a = r.json()["account"].clone();
    assert_eq!(a["allowed_countries"], json!(["IN", "US"]));
    assert_eq!(a["limits"]["max_queued_calls"], 5);
    assert_eq!(a["callback_batch_events"], true);
    for bad in [
        &["account", "update", "ACME", "--timezone", "Mars/Olympus"][..],
        &[
            "account",
            "update",
            "ACME",
            "--callback-url",
            "http://example.com/x",
        ][..],
        &["account", "update", "ACME", "--retry-on", "answered"][..],
        &["account", "update", "ACME", "--max-attempts", "0"][..],
        &["account", "update", "ACME", "--allowed-prefixes", "91"][..],
        &["account", "update", "NOPE", "--name", "x"][..],
    ] {
        let r = ctl(&app, bad);
        assert_ne!(r.code, 0, "{bad:?} should fail");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{bad:?}: {}", r.stderr);
    }

    // rotation without downtime: both keys work until the old ones are revoked
    let r = ctl(&app, &words("--json account rotate-key ACME"));
    let new_key = r.json()["api_key"].as_str().unwrap_or_default().to_owned();
    let new = app.client(new_key, "ACME");
    assert_eq!(old.get("/api/v1/account").await.status, 200);
    assert_eq!(new.get("/api/v1/account").await.status, 200);
    let r = ctl(
        &app,
        &words("--json account rotate-key ACME --revoke-previous"),
    );
    assert_eq!(r.json()["revoked"], 2);
    assert_eq!(old.get("/api/v1/account").await.status, 401);
    assert_eq!(new.get("/api/v1/account").await.status, 401);
    let newest = app.client(
        r.json()["api_key"].as_str().unwrap_or_default().to_owned(),
        "ACME",
    );
    assert_eq!(newest.get("/api/v1/account").await.status, 200);

    assert_eq!(ctl(&app, &words("account suspend ACME")).code, 0);
    assert_eq!(newest.get("/api/v1/account").await.status, 403);
    assert_eq!(ctl(&app, &words("account activate ACME")).code, 0);
    assert_eq!(newest.get("/api/v1/account").await.status, 200);

    ctl(
        &app,
        &words(
            "server add --code ast1 --host h --username u --max-channels 2 --max-cps 1 --channel-template Local/{number}@out",
        ),
    );
    let r = ctl(
        &app,
        &words("--json server update ast1 --max-channels 40 --port 5039"),
    );
    assert_eq!(
        (
            r.json()["server"]["max_channels"].clone(),
            r.json()["server"]["port"].clone()
        ),
        (json!(40), json!(5039))
    );
    let r = ctl(&app, &words("--json server disable ast1"));
    assert_eq!(r.json()["server"]["enabled"], false);
    assert_ne!(ctl(&app, &words("server update ast1 --port 70000")).code, 0);
    assert_ne!(ctl(&app, &words("server disable nope")).code, 0);
}

#[tokio::test]
async fn dnc_lists_block_submissions() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let r = ctl(&app, &words("--json dnc add 9876543210 +919876543211"));
    assert_eq!(r.json()["added"], 2, "{}", r.stderr);
    let r = ctl(&app, &words("--json dnc add 9876543210 --account ACME"));
    assert_eq!(r.json()["added"], 1);
    let r = ctl(&app, &words("dnc add 12x"));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nothing was added"), "{}", r.stderr);

    let file = std::env::temp_dir().join(format!("dnc-{}.txt", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        "# list\n9876543212\n\n+91 98765 43213\nnot-a-number\n9876543212\n",
    )
    .expect("write");
    let r = ctl(
        &app,
        &[
            "--json",
            "dnc",
            "import",
            file.to_str().unwrap_or_default(),
            "--account",
            "ACME",
        ],
    );
    let _ = std::fs::remove_file(&file);
    let v = r.json();
    assert_eq!(
        (v["added"].clone(), v["invalid"][0]["line"].clone()),
        (json!(2), json!(5)),
        "{v}"
    );

    let r = acme
        .insert(&json!({"batch_id": 1, "data": [
            {"phone_number": "9876543210"}, {"phone_number": "9876543211"}, {"phone_number": "9876543212"},
            {"phone_number": "9876543213"}, {"phone_number": "9876543214"}]}))
        .await
        .json();
    assert_eq!(r["accepted"], 1);
    assert_eq!(
        r["rejected"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["reason"] == "do_not_call").count()),
        Some(4)
    );

    assert_eq!(ctl(&app, &words("dnc remove 9876543211")).code, 0);
    assert_ne!(
        ctl(&app, &words("dnc remove 9876543211")).code,
        0,
        "already removed"
    );
    let r = acme
        .insert(&json!({"batch_id": 1, "data": [{"phone_number": "9876543211"}]}))
        .await
        .json();
    assert_eq!(r["accepted"], 1);
}

#[tokio::test]
async fn account_update_sets_and_clears_the_callback_ca() {
    let app = TestApp::spawn().await;
    ctl(&app, &words("account create ACME")).assert_ok();
    let pem_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/data/test-receiver-ca.pem"
    );
    let pem = std::fs::read_to_string(pem_path).expect("fixture");
    let stored = async || -> Option<String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            callback_ca_cert: Option<String>,
        }
        use diesel_async::RunQueryDsl;
        let mut conn = app.pool.get().await.expect("conn");
        diesel::sql_query("SELECT callback_ca_cert FROM accounts WHERE accountcode = 'ACME'")
            .get_result::<Row>(&mut conn)
            .await
            .expect("account row")
            .callback_ca_cert
    };

    ctl(
        &app,
        &["account", "update", "ACME", "--callback-ca-file", pem_path],
    )
    .assert_ok();
    assert_eq!(stored().await.as_deref(), Some(pem.as_str()));

    // a key beside the certificate, a file that is no certificate, a missing file: refused,
    // and what was set stays
    let dir = std::env::temp_dir().join(format!("ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let with_key = dir.join("with-key.pem");
    std::fs::write(
        &with_key,
        format!("{pem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    )
    .expect("write");
    let not_pem = dir.join("notes.txt");
    std::fs::write(&not_pem, "hello").expect("write");
    for (path, words_) in [
        (with_key.to_string_lossy().into_owned(), "private key"),
        (not_pem.to_string_lossy().into_owned(), "BEGIN CERTIFICATE"),
        (
            dir.join("absent.pem").to_string_lossy().into_owned(),
            "cannot read",
        ),
    ] {
        let r = ctl(
            &app,
            &["account", "update", "ACME", "--callback-ca-file", &path],
        );
        r.refused(words_);
    }
    assert_eq!(stored().await.as_deref(), Some(pem.as_str()));

    ctl(&app, &words("account update ACME --callback-ca-file none")).assert_ok();
    assert_eq!(stored().await, None);
    let _ = std::fs::remove_dir_all(&dir);
}
