//! After the answer, at the API: batch settings (checked, stored, compared on later posts),
//! prompts (WAV and text, and every way they can be wrong), the media URLs the PBX uses (a
//! prompt's audio, a recording upload that works once), each refusal clear and nothing stored
//! half.

use serde_json::{Value, json};

use dialer_core::media_url::MediaUrls;

use crate::helpers::{Client, TestApp};

fn wav(rate: u32, channels: u16, bits: u16, frames: u32) -> Vec<u8> {
    let block = channels * bits / 8;
    let data = frames * u32::from(block);
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    out.extend((0..data).map(|i| (i % 251) as u8));
    out
}

async fn post_prompt(app: &TestApp, c: &Client, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = app
        .raw(
            app.http
                .post(c.url("/api/v1/prompts"))
                .header("X-API-KEY", &c.key)
                .header("Content-Type", content_type)
                .body(body),
        )
        .await;
    let v = r.json();
    (r.status, v)
}

async fn delete_prompt(app: &TestApp, c: &Client, prompt_id: &str) -> crate::helpers::Reply {
    app.raw(
        app.http
            .delete(c.url(&format!("/api/v1/prompts/{prompt_id}")))
            .header("X-API-KEY", &c.key),
    )
    .await
}

async fn prompts_stored(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS n FROM prompts").await
}

#[tokio::test]
async fn prompts_that_cannot_be_played_are_refused_and_nothing_is_stored() {
    let (app, c) = TestApp::with_account("ACME").await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "audio/wav",
            b"ID3\x04 an mp3, not a wav".to_vec(),
            400,
            "not a WAV",
        ),
        ("audio/wav", wav(44100, 1, 16, 100), 400, "44100 Hz"),
        ("audio/wav", wav(8000, 2, 16, 100), 400, "mono"),
        ("audio/wav", wav(8000, 1, 24, 100), 400, "16-bit"),
        ("audio/wav", wav(8000, 1, 16, 0), 400, "no samples"),
        ("audio/wav", Vec::new(), 400, "not a WAV"),
        (
            "application/json",
            br#"{"text": ""}"#.to_vec(),
            400,
            "`text` is empty",
        ),
        (
            "application/json",
            br#"{"text": "   "}"#.to_vec(),
            400,
            "`text` is empty",
        ),
        (
            "application/json",
            br#"{"txt": "hello"}"#.to_vec(),
            400,
            "txt",
        ),
        ("application/json", br#"{"text": 5}"#.to_vec(), 400, "text"),
        (
            "application/json",
            br#"{"text": "hi", "language": "-v"}"#.to_vec(),
            400,
            "language",
        ),
        (
            "application/json",
            br#"{"text": "hi", "language": "zz"}"#.to_vec(),
            400,
            "no voice",
        ),
        ("application/json", b"{not json".to_vec(), 400, ""),
        ("text/plain", b"hello".to_vec(), 415, "audio/wav"),
    ];
    for (content_type, body, status, words) in cases {
        let (got, v) = post_prompt(&app, &c, content_type, body).await;
        assert_eq!(got, status, "{content_type}: {v}");
        assert_eq!(v["status"], "error");
        assert!(v["message"].as_str().unwrap_or("").contains(words), "{v}");
    }
    let long = "word ".repeat(500);
    let (got, v) = post_prompt(
        &app,
        &c,
        "application/json",
        json!({ "text": long }).to_string().into_bytes(),
    )
    .await;
    assert_eq!(got, 400, "{v}");
    // Over 10 MB.
    let (got, v) = post_prompt(&app, &c, "audio/wav", wav(8000, 1, 16, 5_300_000)).await;
    assert_eq!(
        (got, v["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
    assert_eq!(prompts_stored(&app).await, 0, "nothing stored half");
}

#[tokio::test]
async fn prompts_are_stored_at_8_khz_listed_and_served_to_the_pbx_by_signed_url() {
    let (app, c) = TestApp::with_account("ACME").await;
    let (status, up) = post_prompt(&app, &c, "audio/wav", wav(16000, 1, 16, 8000)).await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(
        (up["sample_rate"].as_i64(), up["duration_ms"].as_i64()),
        (Some(8000), Some(500))
    );
    let (status, spoken) = post_prompt(
        &app,
        &c,
        "application/json",
        br#"{"text": "Your appointment is tomorrow at nine."}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{spoken}");
    assert_eq!(spoken["language"], "en");
    let list = c.get("/api/v1/prompts").await.json();
    assert_eq!(list["prompts"].as_array().map(Vec::len), Some(2), "{list}");
    let other = app.account("OTHER").await;
    let theirs = other.get("/api/v1/prompts").await.json();
    assert_eq!(theirs["prompts"], json!([]), "another account sees none");

    // The PBX's URL: the stored WAV, cacheable; a forged or altered one is not found.
    let id = up["prompt_id"].as_str().expect("id");
    let mut conn = app.pool.get().await.expect("conn");
    let media = MediaUrls::load(&mut conn, &app.base)
        .await
        .expect("media key");
    let url = media.prompt(id);
    let r = app.http.get(&url).send().await.expect("GET prompt");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("max-age")
    );
    let body = r.bytes().await.expect("bytes");
    assert_eq!(&body[..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes([body[24], body[25], body[26], body[27]]),
        8000
    );
    assert_eq!(body.len(), 44 + 8000, "0.5 s at 8 kHz, 16-bit");
    let forged = MediaUrls::new(&app.base, vec![1; 32]).prompt(id);
    let r = app.http.get(&forged).send().await.expect("GET forged");
    assert_eq!(r.status().as_u16(), 404);
    let other_id = spoken["prompt_id"].as_str().expect("id");
    let swapped = url.replace(id, other_id);
    let r = app.http.get(&swapped).send().await.expect("GET swapped");
    assert_eq!(r.status().as_u16(), 404);

    // Deleting: another account's is not found; its own goes.
    let r = delete_prompt(&app, &other, id).await;
    r.assert_error(404, "not_found");
    let r = delete_prompt(&app, &c, id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.http.get(&url).send().await.expect("GET deleted");
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn flow_settings_are_checked_stored_and_cannot_change() {
    let (app, c) = TestApp::with_account("ACME").await;
    let (_, prompt) = post_prompt(&app, &c, "audio/wav", wav(8000, 1, 16, 800)).await;
    let prompt = prompt["prompt_id"].as_str().expect("id").to_owned();
    let row = |extra: Value| {
        let mut b = json!({"batch_id": 5, "data": [{"phone_number": "9876543210"}]});
        if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        b
    };
    for (extra, words) in [
        (json!({"amd": "maybe"}), "amd"),
        (json!({"amd": true}), "amd"),
        (
            json!({"gather": {"max_digits": 0, "timeout_seconds": 5}}),
            "max_digits",
        ),
        (
            json!({"gather": {"max_digits": 1, "timeout_seconds": 600}}),
            "timeout_seconds",
        ),
        (
            json!({"gather": {"max_digits": 1, "timeout_seconds": 5, "finish_on_key": "x"}}),
            "finish_on_key",
        ),
        (
            json!({"gather": {"max_digits": 1, "timeout_seconds": 5, "finish_on_key": "#", "opt_out_digit": "#"}}),
            "opt_out_digit",
        ),
        (json!({"gather": "1 digit"}), "gather"),
        (
            json!({"gather": {"max_digits": 1, "timeout_seconds": 5, "digits": 1}}),
            "digits",
        ),
        (json!({"record": "yes"}), "record"),
        (json!({"message_prompt": "prm_doesnotexist"}), "no prompt"),
        (
            json!({"message_prompt": "../../etc/passwd"}),
            "message_prompt",
        ),
        (json!({"amd": "voicemail"}), "voicemail_prompt"),
        (
            json!({"amd": "detect", "voicemail_prompt": prompt}),
            "voicemail_prompt",
        ),
    ] {
        let r = c.insert(&row(extra.clone())).await;
        r.assert_refused(400, "invalid_request", words);
    }
    // Another account's prompt is as unknown as none.
    let other = app.account("OTHER").await;
    let r = other
        .insert(&json!({"batch_id": 5, "message_prompt": prompt, "data": [{"phone_number": "9876543210"}]}))
        .await;
    r.assert_refused(400, "invalid_request", "no prompt");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM batches").await,
        0,
        "nothing stored"
    );

    let settings = json!({"amd": "voicemail", "voicemail_prompt": prompt, "message_prompt": prompt,
                          "gather": {"max_digits": 3, "timeout_seconds": 4, "finish_on_key": "#", "opt_out_digit": "9"},
                          "record": true});
    let r = c.insert(&row(settings.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The same settings again are fine; a different one is a conflict.
    let r = c.insert(&row(settings)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.insert(&row(json!({"amd": "detect"}))).await;
    r.assert_refused(409, "batch_settings_conflict", "amd");
    let r = c
        .insert(&row(
            json!({"gather": {"max_digits": 1, "timeout_seconds": 4}}),
        ))
        .await;
    r.assert_refused(409, "batch_settings_conflict", "gather");
    let stored = app
        .count(
            "SELECT count(*) AS n FROM batches WHERE amd = 'voicemail' AND record \
             AND gather->>'opt_out_digit' = '9' AND message_prompt LIKE 'prm\\_%'",
        )
        .await;
    assert_eq!(stored, 1);
    // A batch without settings dials as before.
    let r = c
        .insert(&json!({"batch_id": 6, "data": [{"phone_number": "9876543210"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM batches WHERE batch_id = 6 AND amd = 'off' AND NOT record AND gather IS NULL").await,
        1
    );
    // The counts of after the answer are there, zeros included.
    let status = c.batch_status(5, "").await;
    for key in ["answered_human", "answered_machine", "opted_out"] {
        assert_eq!(status["counts"][key], 0, "{status}");
    }
}

#[tokio::test]
async fn a_recording_upload_url_works_once_and_only_as_signed() {
    let (app, c) = TestApp::with_account("ACME").await;
    let r = c
        .insert(&json!({"batch_id": 9, "record": true, "data": [{"phone_number": "9876543210"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // An attempt as the dispatcher would have made it.
    app.sql(
        "UPDATE calls SET status = 'dialing', attempts = 1; \
         INSERT INTO call_attempts (id, call_pk, attempt, state, originated_at, account_id) \
           SELECT gen_random_uuid(), id, 1, 'answered', now(), account_id FROM calls",
    )
    .await;
    #[derive(diesel::QueryableByName)]
    struct CallId {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        call_id: uuid::Uuid,
    }
    let mut conn = app.pool.get().await.expect("conn");
    let call: CallId = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT call_id FROM calls"),
        &mut conn,
    )
    .await
    .expect("call");
    let media = MediaUrls::load(&mut conn, &app.base).await.expect("key");
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let url = media.recording_upload(call.call_id, 1, expires);
    let put = |url: String, body: Vec<u8>| {
        app.http
            .put(url)
            .header("Content-Type", "audio/wav")
            .body(body)
    };
    let recording = wav(8000, 1, 16, 16000);
    // Not a WAV: refused, nothing kept, the URL still usable.
    let r = app.raw(put(url.clone(), b"garbage".to_vec())).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(app.count("SELECT count(*) AS n FROM recordings").await, 0);
    // Forged, for another attempt, expired: not accepted.
    let forged = MediaUrls::new(&app.base, vec![3; 32]).recording_upload(call.call_id, 1, expires);
    app.raw(put(forged, recording.clone()))
        .await
        .assert_error(404, "not_found");
    let other_attempt = media.recording_upload(call.call_id, 2, expires);
    app.raw(put(other_attempt, recording.clone()))
        .await
        .assert_error(404, "not_found");
    let expired = media.recording_upload(
        call.call_id,
        1,
        chrono::Utc::now() - chrono::Duration::seconds(5),
    );
    app.raw(put(expired, recording.clone()))
        .await
        .assert_error(410, "upload_expired");
    // The upload, once.
    let r = app.raw(put(url.clone(), recording.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.raw(put(url, recording.clone()))
        .await
        .assert_error(409, "recording_exists");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM recordings WHERE duration_seconds = 2")
            .await,
        1
    );
    // Served to its own account; the attempt has not ended, so no event yet.
    let path = format!("/api/v1/recordings/{}/1", call.call_id);
    let r = app
        .http
        .get(c.url(&path))
        .header("X-API-KEY", &c.key)
        .send()
        .await
        .expect("GET recording");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.bytes().await.expect("bytes") == recording,
        "the bytes uploaded"
    );
    // The call's own URL serves its latest stored attempt's; attempt 2 has none.
    let call_path = format!("/api/v1/recordings/{}", call.call_id);
    let r = app
        .http
        .get(c.url(&call_path))
        .header("X-API-KEY", &c.key)
        .send()
        .await
        .expect("GET the call's recording");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.bytes().await.expect("bytes") == recording,
        "the same bytes"
    );
    let second = format!("/api/v1/recordings/{}/2", call.call_id);
    app.raw(app.http.get(c.url(&second)).header("X-API-KEY", &c.key))
        .await
        .assert_error(404, "not_found");
    let other = app.account("OTHER").await;
    for p in [&path, &call_path] {
        let r = app
            .raw(app.http.get(other.url(p)).header("X-API-KEY", &other.key))
            .await;
        r.assert_error(404, "not_found");
    }
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM call_events WHERE event_type = 'call_recording_ready'"
        )
        .await,
        0,
        "the terminal event comes first"
    );
    // Past retention: not served, and the sweep deletes the file, then the row.
    app.sql("UPDATE recordings SET expires_at = now() - interval '1 second'")
        .await;
    let r = app
        .raw(app.http.get(c.url(&path)).header("X-API-KEY", &c.key))
        .await;
    r.assert_error(404, "not_found");
    let store = dialer_api::recording_store::RecordingStore::open(&app.env.config.recordings_store)
        .expect("store");
    #[derive(diesel::QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Text)]
        object_key: String,
    }
    let key: Key = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT object_key FROM recordings"),
        &mut conn,
    )
    .await
    .expect("key");
    assert!(store.get(&key.object_key).await.expect("get").is_some());
    let deleted =
        dialer_api::ops::recordings::delete_expired(&mut conn, &store, chrono::Utc::now(), 10)
            .await
            .expect("sweep");
    assert_eq!(deleted, 1);
    assert_eq!(store.get(&key.object_key).await.expect("get"), None);
    assert_eq!(app.count("SELECT count(*) AS n FROM recordings").await, 0);
}

#[tokio::test]
async fn account_defaults_and_retention_are_set_with_dialerctl() {
    use crate::helpers::dialerctl;
    let (app, c) = TestApp::with_account("ACME").await;
    let (_, prompt) = post_prompt(&app, &c, "audio/wav", wav(8000, 1, 16, 800)).await;
    let prompt = prompt["prompt_id"].as_str().expect("id").to_owned();
    let ctl = |args: &[&str]| dialerctl(&app, &[], &[], args);
    // Refused: a bad policy, an impossible gather, another account's (or no) prompt,
    // voicemail without its prompt, a retention out of range.
    for args in [
        vec!["account", "update", "ACME", "--amd", "sometimes"],
        vec![
            "account",
            "update",
            "ACME",
            "--gather",
            r#"{"max_digits":99,"timeout_seconds":5}"#,
        ],
        vec![
            "account",
            "update",
            "ACME",
            "--message-prompt",
            "prm_nothere",
        ],
        vec!["account", "update", "ACME", "--amd", "voicemail"],
        vec![
            "account",
            "update",
            "ACME",
            "--recording-retention-days",
            "0",
        ],
    ] {
        let r = ctl(&args);
        assert_ne!(r.code, 0, "{args:?}: {}", r.stdout);
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM account_call_flow")
            .await,
        0
    );
    let r = ctl(&[
        "--json",
        "account",
        "update",
        "ACME",
        "--amd",
        "detect",
        "--message-prompt",
        &prompt,
        "--gather",
        r#"{"max_digits":2,"timeout_seconds":3,"opt_out_digit":"9"}"#,
        "--record",
        "true",
        "--recording-retention-days",
        "30",
    ]);
    let v = r.ok_json();
    assert_eq!(v["call_flow"]["amd"], "detect", "{v}");
    assert_eq!(v["call_flow"]["recording_retention_days"], 30, "{v}");
    // A batch that says nothing takes the defaults; one that says otherwise keeps its own.
    let r = c
        .insert(&json!({"batch_id": 1, "data": [{"phone_number": "9876543210"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c
        .insert(&json!({"batch_id": 2, "amd": "off", "record": false,
                        "data": [{"phone_number": "9876543210"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM batches WHERE batch_id = 1 AND amd = 'detect' AND record \
             AND message_prompt = '{prompt}' AND gather->>'max_digits' = '2'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM batches WHERE batch_id = 2 AND amd = 'off' AND NOT record"
        )
        .await,
        1
    );
    // The defaults hold the prompt: it cannot be deleted while they name it.
    let r = delete_prompt(&app, &c, &prompt).await;
    r.assert_error(409, "prompt_in_use");
    // Cleared again.
    let r = ctl(&[
        "--json",
        "account",
        "update",
        "ACME",
        "--amd",
        "off",
        "--message-prompt",
        "none",
        "--gather",
        "none",
        "--record",
        "false",
    ]);
    let v = r.ok_json();
    assert_eq!(v["call_flow"]["message_prompt"], Value::Null, "{v}");
    assert_eq!(v["call_flow"]["recording_retention_days"], 30, "kept: {v}");
}

#[tokio::test]
async fn recordings_go_to_an_s3_compatible_bucket() {
    use dialer_api::recording_store::RecordingStore;
    // moto's S3 server (scripts/services.sh s3 installs it; scripts/test says where).
    let python = std::env::var("DIALER_S3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let mut server = tokio::process::Command::new(&python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{python} -m moto.server: {e} (scripts/services.sh s3)"));
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http
            .put(format!("{endpoint}/recs"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "moto did not start with {python} (scripts/services.sh s3 installs it)"
    );
    let vars: std::collections::HashMap<&str, String> = [
        ("AWS_ENDPOINT", endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
    ]
    .into_iter()
    .collect();
    let store =
        RecordingStore::open_with("s3://recs/dialer", |k| vars.get(k).cloned()).expect("S3 store");
    let key = RecordingStore::key(3, uuid::Uuid::nil(), 1);
    assert_eq!(store.get(&key).await.expect("get"), None);
    let body = bytes::Bytes::from(wav(8000, 1, 16, 4000));
    store.put(&key, body.clone()).await.expect("put");
    assert_eq!(store.get(&key).await.expect("get"), Some(body.clone()));
    // Under the configured prefix in the bucket, as an S3 client sees it.
    let listing = http
        .get(format!(
            "{endpoint}/recs?list-type=2&prefix=dialer/recordings/3/"
        ))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert!(listing.contains(&format!("dialer/{key}")), "{listing}");
    store.delete(&key).await.expect("delete");
    assert_eq!(store.get(&key).await.expect("get"), None);
    let _ = server.kill().await;
}
