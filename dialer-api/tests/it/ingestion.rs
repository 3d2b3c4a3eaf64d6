//! insertdataincallqueue: accepted rows, every rejection reason, duplicates, idempotency,
//! whole-request errors, quotas.

use crate::helpers::TestApp;
use serde_json::{Value, json};

#[tokio::test]
async fn accepts_rows_and_echoes_numbers_exactly() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let r = acme
        .insert(&json!({"batch_id": 12345, "data": [
            {"phone_number": "9876543210", "custom_data": {"customer_id": "CUST001", "campaign_id": "CAMP001"}},
            {"phone_number": 9876543211u64}
        ]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["batch_id"], 12345);
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["duplicates"], 0);
    assert_eq!(v["rejected"], json!([]));
    assert_eq!(v["total_calls"], 2);

    let s = acme.get("/api/v1/queues/batch-status/12345").await.json();
    let calls = s["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["phone_number"], "9876543210");
    assert_eq!(calls[0]["phone_number_e164"], "+919876543210");
    assert_eq!(calls[0]["call_status"], "queued");
    assert_eq!(
        calls[0]["custom_data"],
        json!({"customer_id": "CUST001", "campaign_id": "CAMP001"})
    );
    assert_eq!(calls[1]["phone_number"], "9876543211");
    assert_eq!(calls[1]["custom_data"], json!(null));
}

#[tokio::test]
async fn custom_data_is_kept_byte_for_byte() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let body = r#"{"batch_id": 7, "data": [{"phone_number": "9876543210", "custom_data": {"b":  2, "a": [1,2], "z": "é\u00e9"}}]}"#;
    let r = acme
        .post_json_text("/api/v1/queues/insertdataincallqueue", body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = acme.get("/api/v1/queues/batch-status/7").await;
    assert!(
        s.text
            .contains(r#""custom_data":{"b":  2, "a": [1,2], "z": "é\u00e9"}"#),
        "{}",
        s.text
    );
}

#[tokio::test]
async fn every_rejection_reason() {
    let (app, acme) = TestApp::with_account("ACME").await;
    app.sql(
        "UPDATE accounts SET allowed_countries = '{IN}', redial_window_hours = 24;
         INSERT INTO dnc_numbers (account_id, phone_e164) VALUES (NULL, '+919876500001');
         INSERT INTO dnc_numbers (account_id, phone_e164)
           SELECT id, '+919876500002' FROM accounts WHERE accountcode = 'ACME';",
    )
    .await;
    // a number this account dialed an hour ago, in another batch
    let r = acme
        .insert(&json!({"batch_id": 1, "data": [{"phone_number": "9876500003"}]}))
        .await;
    assert_eq!(r.json()["accepted"], 1);
    app.sql("UPDATE calls SET last_dialed_at = now() - interval '1 hour'")
        .await;

    let big = "x".repeat(5000);
    let r = acme
        .insert(&json!({"batch_id": 2, "data": [
            {"phone_number": "9876543210"},
            {"phone_number": "98765x"},
            {"phone_number": "9876500001"},
            {"phone_number": "09876500002"},
            {"phone_number": "+14155550123"},
            {"phone_number": 9876500003u64},
            {"phone_number": "9876543211", "custom_data": "not an object"},
            {"phone_number": "9876543212", "custom_data": {"big": big}},
            {"phone_number": "+91 98765 43210"},
            {"custom_data": {}}
        ]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["duplicates"], 1, "row 8 repeats row 0");
    assert_eq!(
        v["rejected"],
        json!([
            {"index": 1, "phone_number": "98765x", "reason": "invalid_phone_number"},
            {"index": 2, "phone_number": "9876500001", "reason": "do_not_call"},
            {"index": 3, "phone_number": "09876500002", "reason": "do_not_call"},
            {"index": 4, "phone_number": "+14155550123", "reason": "destination_not_allowed"},
            {"index": 5, "phone_number": 9876500003u64, "reason": "recently_called"},
            {"index": 6, "phone_number": "9876543211", "reason": "custom_data_not_object"},
            {"index": 7, "phone_number": "9876543212", "reason": "custom_data_too_large"},
            {"index": 9, "phone_number": null, "reason": "invalid_phone_number"}
        ])
    );
    assert_eq!(v["total_calls"], 1);
}

#[tokio::test]
async fn phone_numbers_follow_the_contract_grammar_and_are_never_guessed_at() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let r = acme
        .insert(&json!({"batch_id": 3, "data": [
            {"phone_number": "9180334018"},
            {"phone_number": 9180334019u64},
            {"phone_number": "+91 (98765) 43-210"},
            {"phone_number": "98765ABCDE"},
            {"phone_number": "call me at 9870200011"},
            {"phone_number": "9876511135 ext. 7"},
            {"phone_number": "++919876543211"},
            {"phone_number": "91+9876543212"},
            {"phone_number": "\u{663}\u{668}\u{667}\u{666}\u{665}\u{664}\u{663}\u{662}\u{661}\u{660}"},
            {"phone_number": "9876543213\u{0}"},
            {"phone_number": "0091 98765 43214"}
        ]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let invalid = |index: usize, raw: &str| json!({"index": index, "phone_number": raw, "reason": "invalid_phone_number"});
    assert_eq!(
        v["rejected"],
        json!([
            invalid(3, "98765ABCDE"),
            invalid(4, "call me at 9870200011"),
            invalid(5, "9876511135 ext. 7"),
            invalid(6, "++919876543211"),
            invalid(7, "91+9876543212"),
            invalid(
                8,
                "\u{663}\u{668}\u{667}\u{666}\u{665}\u{664}\u{663}\u{662}\u{661}\u{660}"
            ),
            invalid(9, "9876543213\u{0}"),
        ])
    );
    assert_eq!(v["accepted"], 4);
    let s = acme.get("/api/v1/queues/batch-status/3").await.json();
    let numbers: Vec<(Value, Value)> = s["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c["phone_number"].clone(), c["phone_number_e164"].clone()))
        .collect();
    assert_eq!(
        numbers,
        [
            (json!("9180334018"), json!("+919180334018")),
            (json!("9180334019"), json!("+919180334019")),
            (json!("+91 (98765) 43-210"), json!("+919876543210")),
            (json!("0091 98765 43214"), json!("+919876543214")),
        ]
    );
}

#[tokio::test]
async fn another_accounts_dnc_list_does_not_apply() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let _other = app.account("OTHER").await;
    app.sql(
        "INSERT INTO dnc_numbers (account_id, phone_e164)
         SELECT id, '+919876543210' FROM accounts WHERE accountcode = 'OTHER'",
    )
    .await;
    let r = acme
        .insert(&json!({"batch_id": 1, "data": [{"phone_number": "9876543210"}]}))
        .await;
    assert_eq!(r.json()["accepted"], 1, "{}", r.text);
}

#[tokio::test]
async fn same_request_twice_adds_nothing() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let body = json!({"batch_id": 9, "data": [{"phone_number": "9876543210"}, {"phone_number": "9876543211"}]});
    let first = acme.insert(&body).await.json();
    assert_eq!(
        (first["accepted"].clone(), first["duplicates"].clone()),
        (json!(2), json!(0))
    );
    let second = acme.insert(&body).await.json();
    assert_eq!(second["accepted"], 0);
    assert_eq!(second["duplicates"], 2);
    assert_eq!(second["total_calls"], 2);
    // more numbers in the same batch are added
    let third = acme
        .insert(&json!({"batch_id": 9, "data": [{"phone_number": "+919876543210"}, {"phone_number": "9876543212"}]}))
        .await
        .json();
    assert_eq!(
        (third["accepted"].clone(), third["duplicates"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(third["total_calls"], 3);
}

#[tokio::test]
async fn whole_request_errors_name_the_field() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let cases = [
        (json!({"data": []}), "batch_id"),
        (json!({"batch_id": "12", "data": []}), "batch_id"),
        (json!({"batch_id": 0, "data": []}), "batch_id"),
        (json!({"batch_id": -5, "data": []}), "batch_id"),
        (json!({"batch_id": 1.5, "data": []}), "batch_id"),
        (json!({"batch_id": 1}), "data"),
        (
            json!({"batch_id": 1, "data": {"phone_number": "1"}}),
            "data",
        ),
        (
            json!({"batch_id": 1, "data": [], "max_attempts": 0}),
            "max_attempts",
        ),
        (
            json!({"batch_id": 1, "data": [], "retry_on": ["answered"]}),
            "retry_on",
        ),
        (
            json!({"batch_id": 1, "data": [], "calling_hours": {"start": "9", "end": "21:00"}}),
            "calling_hours.start",
        ),
        (
            json!({"batch_id": 1, "data": [], "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (
            json!({"batch_id": 1, "data": [], "dispatch": "yes"}),
            "dispatch",
        ),
        (json!([1, 2]), "object"),
    ];
    for (body, field) in cases {
        let r = acme.insert(&body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_request");
        let message = r.json()["message"].as_str().unwrap_or("").to_owned();
        assert!(
            message.contains(field),
            "{body}: message `{message}` should name {field}"
        );
    }
    // 2^63-1 is a valid batch id
    let r = acme
        .insert(&json!({"batch_id": i64::MAX, "data": []}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = acme
        .insert(&json!({"batch_id": 9223372036854775808u64, "data": []}))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn row_limit_is_413_and_quotas_are_429() {
    let (app, acme) = TestApp::with_account("ACME").await;
    app.sql(
        "UPDATE accounts SET max_rows_per_request = 2, max_queued_calls = 3, max_calls_per_day = 4",
    )
    .await;
    let rows = |from: u64, n: u64| -> Vec<serde_json::Value> {
        (from..from + n)
            .map(|i| json!({"phone_number": format!("98765{:05}", i)}))
            .collect()
    };
    let r = acme.insert_rows(1, rows(0, 3)).await;
    r.assert_refused(413, "payload_too_large", "limit is 2");

    assert_eq!(acme.insert_rows(1, rows(0, 2)).await.json()["accepted"], 2);
    let r = acme.insert_rows(1, rows(2, 2)).await;
    r.assert_refused(429, "quota_exceeded", "max_queued_calls");
    // all or nothing: the rejected request stored none of its rows
    let s = acme.get("/api/v1/queues/batch-status/1").await.json();
    assert_eq!(s["total_calls"], 2);

    // finished calls no longer count as queued, but still count for the day
    app.sql("UPDATE calls SET status = 'completed', finished_at = now()")
        .await;
    assert_eq!(acme.insert_rows(1, rows(2, 2)).await.json()["accepted"], 2);
    let r = acme.insert_rows(1, rows(4, 1)).await;
    r.assert_refused(429, "quota_exceeded", "max_calls_per_day");
}

#[tokio::test]
async fn cancelled_batch_is_closed() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    acme.insert(&json!({"batch_id": 5, "data": [{"phone_number": "9876543210"}]}))
        .await;
    assert_eq!(acme.control(5, "cancel").await.status, 200);
    let r = acme
        .insert(&json!({"batch_id": 5, "data": [{"phone_number": "9876543211"}]}))
        .await;
    r.assert_error(409, "batch_closed");
}

#[tokio::test]
async fn unknown_fields_are_refused_naming_them() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let row = json!([{"phone_number": "9876543210"}]);
    let huge_key = "k".repeat(100_000);
    let cases = [
        (
            json!({"batch_id": 1, "data": row, "max_attempt": 3}),
            "unknown field `max_attempt`",
        ),
        (
            json!({"batch_id": 1, "data": [{"phone_number": "9876543210", "custom_dat": {}}]}),
            "unknown field `data[0].custom_dat`",
        ),
        (
            json!({"batch_id": 1, "data": row,
                   "calling_hours": {"start": "09:00", "end": "21:00", "note": "a\u{0}b"}}),
            "calling_hours: unknown field `note`",
        ),
        (
            json!({"batch_id": 1, "data": row,
                   "calling_hours": {"start": "09:00", "end": "21:00", huge_key.clone(): 1}}),
            "calling_hours: unknown field `kkkk",
        ),
        (
            json!({"batch_id": 1, "data": row, "calling_hours": {"start": "09:00", "end": "21:00", "x\u{0}": 1}}),
            "unknown field `x\\u{0}`",
        ),
        (
            json!({"batch_id": 1, "data": [{"phone_number": "9876543210", "x\u{0}": 1}]}),
            "unknown field `data[0].x\\u{0}`",
        ),
        (
            json!({"batch_id": 1, "data": row, "accountcode": "OTHER"}),
            "`accountcode`",
        ),
    ];
    for (body, words) in cases {
        let r = acme.insert(&body).await;
        r.assert_refused(400, "invalid_request", words);
        assert!(r.text.len() < 2_000, "the message quotes a bounded name");
    }
    // nothing of the refused requests was stored
    assert_eq!(acme.get("/api/v1/queues/batch-status/1").await.status, 404);

    // the key's own accountcode may be sent; calling hours are stored in their normalised form
    let r = acme
        .insert(&json!({"batch_id": 1, "accountcode": "ACME", "data": row,
                        "calling_hours": {"start": "09:00", "end": "21:00", "days": ["FRI", "mon", "fri"]},
                        "retry_on": ["busy", "no_answer", "busy"], "max_attempts": 2}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        hours: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        retry_on: String,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = app.pool.get().await.expect("conn");
    let s: Stored = diesel::sql_query(
        "SELECT calling_hours::text AS hours, array_to_string(retry_on, ',') AS retry_on
         FROM batches WHERE batch_id = 1",
    )
    .get_result(&mut conn)
    .await
    .expect("batch row");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&s.hours).ok(),
        Some(json!({"start": "09:00", "end": "21:00", "days": ["mon", "fri"]}))
    );
    assert_eq!(s.retry_on, "busy,no_answer");
}

#[tokio::test]
async fn settings_sent_again_must_be_the_same() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let settings = json!({"batch_name": "spring", "max_attempts": 3, "retry_on": ["busy", "no_answer"],
        "calling_hours": {"start": "09:00", "end": "21:00", "days": ["mon", "tue"]},
        "priority": 5, "expires_at": "2030-01-01T00:00:00.0000009Z", "dispatch": false, "retry_delay_seconds": 60,
        "caller_id": "+15550100"});
    let with = |phone: &str, extra: &serde_json::Value| {
        let mut body = settings.clone();
        body["batch_id"] = json!(3);
        body["data"] = json!([{"phone_number": phone}]);
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        body
    };
    let r = acme.insert(&with("9876543210", &json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // the same values again (in another spelling), or none at all, are fine
    let same = json!({"retry_on": ["no_answer", "busy"], "expires_at": "2030-01-01T05:30:00.000001+05:30",
                      "calling_hours": {"start": "09:00", "end": "21:00", "days": ["TUE", "mon"]}});
    let r = acme.insert(&with("9876543211", &same)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = acme
        .insert(&json!({"batch_id": 3, "data": [{"phone_number": "9876543212"}]}))
        .await;
    assert_eq!(r.json()["accepted"], 1, "{}", r.text);

    for (change, field) in [
        (json!({"batch_name": "autumn"}), "batch_name"),
        (json!({"max_attempts": 4}), "max_attempts"),
        (json!({"retry_on": ["busy"]}), "retry_on"),
        (
            json!({"calling_hours": {"start": "10:00", "end": "21:00", "days": ["mon", "tue"]}}),
            "calling_hours",
        ),
        (json!({"priority": 1}), "priority"),
        (json!({"expires_at": "2031-01-01T00:00:00Z"}), "expires_at"),
        (json!({"dispatch": true}), "dispatch"),
        (json!({"retry_delay_seconds": 61}), "retry_delay_seconds"),
        (json!({"caller_id": "+15550101"}), "caller_id"),
    ] {
        let r = acme.insert(&with("9876543213", &change)).await;
        r.assert_refused(409, "batch_settings_conflict", &format!("`{field}`"));
    }
    // a refused request stores none of its rows
    let s = acme.get("/api/v1/queues/batch-status/3").await.json();
    assert_eq!(s["total_calls"], 3);
}

#[tokio::test]
async fn a_request_with_nothing_accepted_creates_no_batch() {
    let (app, acme) = TestApp::with_account("ACME").await;
    app.sql("INSERT INTO dnc_numbers (account_id, phone_e164) VALUES (NULL, '+919876500001');")
        .await;
    let r = acme
        .insert(&json!({"batch_id": 8, "max_attempts": 2, "data": [
            {"phone_number": "98765x"},
            {"phone_number": "9876500001"}
        ]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        (v["accepted"].clone(), v["total_calls"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(v["rejected"].as_array().map(Vec::len), Some(2));
    let r = acme.insert(&json!({"batch_id": 9, "data": []})).await;
    assert_eq!(r.json()["total_calls"], 0, "{}", r.text);
    for batch in [8, 9] {
        let s = acme
            .get(&format!("/api/v1/queues/batch-status/{batch}"))
            .await;
        s.assert_error(404, "not_found");
    }
    // the batch is created, with its settings, by the first request that adds a call
    let r = acme
        .insert(
            &json!({"batch_id": 8, "max_attempts": 3, "data": [{"phone_number": "9876500002"}]}),
        )
        .await;
    assert_eq!(r.json()["total_calls"], 1, "{}", r.text);
    // and an existing batch answers its count when a later request adds nothing
    let r = acme
        .insert(&json!({"batch_id": 8, "data": [{"phone_number": "98765x"}]}))
        .await;
    assert_eq!(r.json()["total_calls"], 1, "{}", r.text);
}

#[tokio::test]
async fn custom_data_nested_too_deep_is_rejected_per_row() {
    let (_app, acme) = TestApp::with_account("ACME").await;
    let nested = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    let body = format!(
        r#"{{"batch_id": 4, "data": [
            {{"phone_number": "9876543210", "custom_data": {}}},
            {{"phone_number": "9876543211", "custom_data": {}}},
            {{"phone_number": "9876543212", "custom_data": {}}}]}}"#,
        nested(32),
        nested(33),
        nested(200)
    );
    let r = acme
        .post_json_text("/api/v1/queues/insertdataincallqueue", &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(
        v["rejected"],
        json!([
            {"index": 1, "phone_number": "9876543211", "reason": "custom_data_too_deep"},
            {"index": 2, "phone_number": "9876543212", "reason": "custom_data_too_deep"}
        ])
    );
    // the accepted call comes out whole in the CSV export
    let csv = acme.get("/api/v1/queues/batch-status/4?format=csv").await;
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.text);
    assert!(lines[1].contains("9876543210"), "{}", lines[1]);
}

#[tokio::test]
async fn csv_submissions_take_settings_from_the_query() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let path = "/api/v1/queues/insertdataincallqueue/?batch_id=20&max_attempts=2&retry_on=busy,no_answer&dispatch=false";
    let csv = "\u{feff}phone_number,custom_data\r\n\
               9876543210,\"{\"\"b\"\":  2, \"\"a\"\": \"\"x,y\"\"}\"\r\n\
               \"+91 98765 43211\",\r\n\
               98765x,\r\n\
               9876543212,not json\r\n";
    let r = acme
        .post_raw(path, Some("text/csv; charset=utf-8"), csv)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["accepted"], 2, "{}", r.text);
    assert_eq!(
        v["rejected"],
        json!([
            {"index": 2, "phone_number": "98765x", "reason": "invalid_phone_number"},
            {"index": 3, "phone_number": "9876543212", "reason": "custom_data_not_object"}
        ])
    );
    let s = acme.get("/api/v1/queues/batch-status/20").await;
    assert!(
        s.text.contains(r#""custom_data":{"b":  2, "a": "x,y"}"#),
        "custom_data byte for byte: {}",
        s.text
    );
    assert!(
        s.text.contains(r#""phone_number":"+91 98765 43211""#),
        "{}",
        s.text
    );
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
        max_attempts: Option<i32>,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = app.pool.get().await.expect("conn");
    let row: Row = diesel::sql_query("SELECT max_attempts FROM batches WHERE batch_id = 20")
        .get_result(&mut conn)
        .await
        .expect("batch row");
    assert_eq!(row.max_attempts, Some(2));

    // the same settings again are fine; another value is a conflict, as with JSON
    let again = acme
        .post_raw(path, Some("text/csv"), "phone_number\n9876543213\n")
        .await;
    assert_eq!(again.json()["accepted"], 1, "{}", again.text);
    acme.post_raw(
        "/api/v1/queues/insertdataincallqueue?batch_id=20&max_attempts=3",
        Some("text/csv"),
        "phone_number\n9876543214\n",
    )
    .await
    .assert_refused(409, "batch_settings_conflict", "max_attempts");

    // Every column but the number is a field of custom_data, as text.
    let r = acme
        .post_raw(
            "/api/v1/queues/insertdataincallqueue?batch_id=22",
            Some("text/csv"),
            "phone_number,customer_id,campaign_id\n9876543220,CUST001,CAMP001\n9876543221,,007\n",
        )
        .await;
    assert_eq!(r.json()["accepted"], 2, "{}", r.text);
    let s = acme.batch_status(22, "").await;
    assert_eq!(
        s["calls"][0]["custom_data"],
        json!({"customer_id": "CUST001", "campaign_id": "CAMP001"}),
        "{s}"
    );
    assert_eq!(
        s["calls"][1]["custom_data"],
        json!({"customer_id": "", "campaign_id": "007"}),
        "{s}"
    );

    let base = "/api/v1/queues/insertdataincallqueue?batch_id=21";
    for (query, body, words) in [
        (
            "",
            "phone_number,custom_data,customer\n9876543210,{},C1\n",
            "CSV column `customer`: give `custom_data` either",
        ),
        (
            "",
            "phone_number,,x\n9876543210,a,b\n",
            "CSV column 2 has no name",
        ),
        (
            "",
            "phone_number,customer,customer\n9876543210,a,b\n",
            "CSV column `customer` appears twice",
        ),
        ("", "custom_data\n{}\n", "`phone_number` column"),
        ("", "phone_number\n9876543210,extra\n", "CSV row 1"),
        (
            "&max_attempts=abc",
            "phone_number\n9876543210\n",
            "`max_attempts`",
        ),
        (
            "&maxattempts=2",
            "phone_number\n9876543210\n",
            "unknown field `maxattempts`",
        ),
        (
            "&priority=1&priority=2",
            "phone_number\n9876543210\n",
            "`priority` is given twice",
        ),
    ] {
        let r = acme
            .post_raw(&format!("{base}{query}"), Some("text/csv"), body)
            .await;
        r.assert_refused(400, "invalid_request", words);
    }
    acme.post_raw(
        "/api/v1/queues/insertdataincallqueue?batch_id=x",
        Some("text/csv"),
        "phone_number\n9876543210\n",
    )
    .await
    .assert_refused(400, "invalid_request", "batch_id");
    acme.post_raw(base, Some("text/plain"), "phone_number\n9876543210\n")
        .await
        .assert_refused(415, "unsupported_media_type", "text/csv");
    assert_eq!(acme.get("/api/v1/queues/batch-status/21").await.status, 404);
}
