//! After the answer, end to end through the real binaries and ami-sim (its per-number callee
//! plan: the second-to-last digit says who answers and what they press, see ami-sim's README):
//! each `amd` policy, a gather ending by key, by timeout and by opt-out (the number is then
//! refused at submission), a recorded call whose `recording_url` serves the bytes the PBX
//! produced (and is 404 for another account), prompts uploaded as WAV and as text and fetched by
//! the PBX; and, with the media address unreachable from the PBX, a prompt that cannot be played
//! and a recording that never arrives, neither holding anything up.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use diesel::sql_types::{Integer, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use dialer_api::ops::accounts::AccountUpdate;
use dialer_api::prompt_audio::{Pcm, encode_wav};
use dialer_core::db::{self, DbPool};
use dialer_core::test_support::TestEnv;
use dialer_devkit::api_client::ApiClient;
use dialer_devkit::platform::{self, Processes, RunningServices, SimSpec};
use dialer_devkit::receiver::Receiver;
use dialer_devkit::seed;

use crate::helpers::{binaries, start_lean_services};

/// A mono 16-bit WAV of a 440 Hz tone, `ms` long at `rate`, in the API's own WAV form.
fn tone_wav(rate: u32, ms: u32) -> Vec<u8> {
    let samples = (0..rate * ms / 1000)
        .map(|i| {
            ((2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / f64::from(rate)).sin() * 8000.0)
                as i16
        })
        .collect();
    encode_wav(&Pcm {
        sample_rate: rate,
        samples,
    })
}

/// ami-sim with short flow timings, keeping a copy of each recording in `recordings`. Callees
/// by rule: 0510 presses 1, 2, #; 0520 hangs up 150 ms after the answer, before AMD (300 ms)
/// decides; 0530 presses 1, 2, # (key ends 340, 680, 1020 ms into the Read) and hangs up 1.15 s
/// after the answer, after AMD, between its 2nd and 3rd key.
fn sim_config(dir: &Path, recordings: &Path) -> std::path::PathBuf {
    let path = dir.join("flow-sim.toml");
    std::fs::create_dir_all(recordings).expect("recordings dir");
    std::fs::write(
        &path,
        format!(
            "ring_ms = 100\n\
             amd_human_ms = 300\namd_machine_ms = 400\namd_silence_ms = 500\n\
             greeting_ms = 900\nkey_delay_ms = 300\ndtmf_ms = 40\n\
             recordings_dir = {:?}\n\
             [[rule]]\npattern = \"+12015550510\"\noutcome = \"answered\"\n\
             answered_by = \"human\"\nkeys = \"12#\"\n\
             [[rule]]\npattern = \"+12015550520\"\noutcome = \"remote_hangup\"\n\
             talk_ms = 150\n\
             [[rule]]\npattern = \"+12015550530\"\noutcome = \"answered\"\n\
             answered_by = \"human\"\nkeys = \"12#\"\ntalk_ms = 1150\n",
            recordings.display().to_string()
        ),
    )
    .expect("sim config");
    path
}

struct Platform {
    _env: TestEnv,
    pool: DbPool,
    processes: Processes,
    services: RunningServices,
    sims: Vec<platform::RunningSim>,
    recordings: std::path::PathBuf,
}

async fn platform(name: &str, extra: Vec<(String, String)>) -> Platform {
    let env = TestEnv::new().await;
    let bins = binaries();
    let logs = std::env::temp_dir().join(format!("dialer-{name}-{}", env.config.queue_prefix));
    let mut processes = Processes::new(&logs).expect("log dir");
    let recordings = logs.join("pbx-recordings");
    let config = sim_config(&logs, &recordings);
    let sims = platform::start_sims(
        &bins,
        &mut processes,
        &[SimSpec {
            code: "ast1".to_owned(),
            config: Some(config),
            instant_answer: false,
        }],
    )
    .await
    .expect("simulator");
    let pool = db::build_pool(&env.config, name).expect("pool");
    seed::servers(&pool, &sims, 60, 50).await.expect("server");
    let mut all_extra = vec![(
        "DIALER_CALLBACK_RETRY_SCHEDULE".to_owned(),
        "500ms,1s,2s".to_owned(),
    )];
    all_extra.extend(extra);
    let services = start_lean_services(&bins, &mut processes, &env, all_extra).await;
    Platform {
        _env: env,
        pool,
        processes,
        services,
        sims,
        recordings,
    }
}

fn settings() -> AccountUpdate {
    AccountUpdate {
        ring_timeout_seconds: Some(5),
        calls_per_second: Some(20),
        max_concurrent_calls: Some(40),
        ..AccountUpdate::default()
    }
}

/// `POST /api/v1/prompts` with a body of `content_type`; the status and the JSON answer.
async fn post_prompt(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = http
        .post(format!("{api}/api/v1/prompts"))
        .header("X-API-KEY", key)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST /prompts");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The events a receiver got, by phone number, each call's in `sequence` order.
fn events_by_number(receiver: &Receiver) -> HashMap<String, Vec<Value>> {
    let mut by: HashMap<String, Vec<Value>> = HashMap::new();
    for e in receiver.snapshot().call_events() {
        let number = e.body["phone_number"].as_str().unwrap_or("").to_owned();
        by.entry(number).or_default().push(e.body.clone());
    }
    for v in by.values_mut() {
        v.sort_by_key(|e| e["sequence"].as_i64());
    }
    by
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or(""))
        .collect()
}

fn of_type<'a>(events: &'a [Value], t: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event_type"] == t)
        .unwrap_or_else(|| panic!("no {t} in {:?}", types(events)))
}

/// Waits until every batch is completed and the receiver holds `want` events.
async fn settle(
    p: &mut Platform,
    client: &ApiClient,
    batches: &[i64],
    receiver: &Receiver,
    want: impl Fn(&HashMap<String, Vec<Value>>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        p.processes.check_alive().expect("platform processes alive");
        let mut done = true;
        for b in batches {
            let s = client.batch_status(*b).await.expect("status");
            done &= s["batch_status"] == "completed";
        }
        if done && want(&events_by_number(receiver)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {:?}; logs in {}",
            events_by_number(receiver)
                .iter()
                .map(|(n, e)| (n.clone(), types(e).join(",")))
                .collect::<Vec<_>>(),
            p.processes.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct AttemptId {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_gather_opt_out_and_recording_through_the_real_binaries() {
    let mut p = platform("flow", Vec::new()).await;
    let (acct, receiver) =
        seed::account_with_receiver(&p.pool, "FLOW", "US", settings(), Duration::ZERO)
            .await
            .expect("account");
    let other = seed::account(&p.pool, "OTHER", "US", settings())
        .await
        .expect("other account");
    let api = p.services.api_url.clone();
    let client = ApiClient::new(&api, &acct.api_key);
    let http = reqwest::Client::new();

    // Prompts: a WAV upload and text spoken by the platform.
    let (status, message) =
        post_prompt(&http, &api, &acct.api_key, "audio/wav", tone_wav(8000, 300)).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["duration_ms"], 300, "{message}");
    assert_eq!(message["source"], "wav");
    let (status, voicemail) = post_prompt(
        &http,
        &api,
        &acct.api_key,
        "application/json",
        json!({"text": "Please call us back.", "language": "en"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{voicemail}");
    assert_eq!(voicemail["source"], "text");
    assert_eq!(voicemail["sample_rate"], 8000);
    assert!(
        voicemail["duration_ms"].as_i64().unwrap_or(0) > 300,
        "{voicemail}"
    );
    let message_id = message["prompt_id"].as_str().expect("prompt_id").to_owned();
    let voicemail_id = voicemail["prompt_id"]
        .as_str()
        .expect("prompt_id")
        .to_owned();

    // Another account cannot name them.
    let other_client = ApiClient::new(&api, &other.api_key);
    let refused = other_client
        .submit(&json!({"batch_id": 1, "message_prompt": message_id,
                         "data": [{"phone_number": "+12015550110"}]}))
        .await
        .expect_err("another account's prompt");
    assert!(refused.to_string().contains("400"), "{refused}");

    let gather =
        json!({"max_digits": 1, "timeout_seconds": 2, "finish_on_key": "#", "opt_out_digit": "9"});
    let numbers = |xs: &[&str]| -> Value {
        Value::Array(xs.iter().map(|n| json!({"phone_number": n})).collect())
    };
    // detect, message, gather, record: a person pressing 1, a machine, dead air, a person
    // pressing nothing, a person opting out.
    let detect = [
        "+12015550110",
        "+12015550160",
        "+12015550170",
        "+12015550180",
        "+12015550190",
    ];
    client
        .submit(
            &json!({"batch_id": 701, "amd": "detect", "message_prompt": message_id,
                        "gather": gather, "record": true, "dispatch": true,
                        "data": numbers(&detect)}),
        )
        .await
        .expect("batch 701");
    // hangup_machine: a person pressing 1, a machine.
    let hangup = ["+12015550210", "+12015550260"];
    client
        .submit(
            &json!({"batch_id": 702, "amd": "hangup_machine", "message_prompt": message_id,
                        "gather": gather, "dispatch": true, "data": numbers(&hangup)}),
        )
        .await
        .expect("batch 702");
    // voicemail: a machine gets the voicemail prompt after its greeting; a person the message.
    let drop = ["+12015550360", "+12015550310"];
    client
        .submit(
            &json!({"batch_id": 703, "amd": "voicemail", "voicemail_prompt": voicemail_id,
                        "message_prompt": message_id, "dispatch": true, "data": numbers(&drop)}),
        )
        .await
        .expect("batch 703");

    // A gather of up to 3 keys ended by the finish key (the callee presses 1, 2, #).
    let finish = ["+12015550510"];
    client
        .submit(&json!({"batch_id": 705, "message_prompt": message_id,
                        "gather": {"max_digits": 3, "timeout_seconds": 2, "finish_on_key": "#"},
                        "dispatch": true, "data": numbers(&finish)}))
        .await
        .expect("batch 705");

    // Callees hanging up mid-AMD and mid-gather: the dialplan's hangup handler reports both.
    let cut = ["+12015550520", "+12015550530"];
    client
        .submit(&json!({"batch_id": 706, "amd": "detect",
                        "gather": {"max_digits": 3, "timeout_seconds": 2, "finish_on_key": "#"},
                        "dispatch": true, "data": numbers(&cut)}))
        .await
        .expect("batch 706");

    settle(
        &mut p,
        &client,
        &[701, 702, 703, 705, 706],
        &receiver,
        |by| {
            // Every call's terminal event, and 701's recorded person's recording.
            let all = detect
                .iter()
                .chain(&hangup)
                .chain(&drop)
                .chain(&finish)
                .chain(&cut)
                .all(|n| {
                    by.get(*n)
                        .is_some_and(|e| e.iter().any(|x| x["event_type"] == "call_completed"))
                });
            all && by
                .get("+12015550110")
                .is_some_and(|e| e.iter().any(|x| x["event_type"] == "call_recording_ready"))
        },
    )
    .await;
    let by = events_by_number(&receiver);
    let snapshot = receiver.snapshot();
    assert_eq!(snapshot.bad_signatures, 0);
    assert_eq!(snapshot.out_of_order, 0);

    // 701: who answered, what was pressed, in order with the call's other events.
    let person = &by["+12015550110"];
    assert_eq!(
        types(person),
        [
            "call_started",
            "call_answered",
            "call_amd_result",
            "call_input",
            "call_completed",
            "call_recording_ready"
        ]
    );
    let amd = of_type(person, "call_amd_result");
    assert_eq!(amd["answered_by"], "human");
    assert_eq!(amd["amd_cause"], "HUMAN-800-800");
    assert_eq!(amd["call_status"], "answered");
    let input = of_type(person, "call_input");
    assert_eq!(
        (&input["digits"], &input["opted_out"]),
        (&json!("1"), &json!(false))
    );
    assert_eq!(input["answered_by"], "human", "facts carry forward");
    let done = of_type(person, "call_completed");
    assert_eq!(done["digits"], "1");
    assert_eq!(
        done["error_message"],
        Value::Null,
        "the message prompt played"
    );
    let recording_url = done["recording_url"]
        .as_str()
        .expect("recording_url")
        .to_owned();
    let call_id = done["call_id"].as_str().expect("call_id").to_owned();
    assert_eq!(
        recording_url,
        format!("{api}/api/v1/recordings/{call_id}/1"),
        "the API's own address"
    );
    let ready = of_type(person, "call_recording_ready");
    assert_eq!(ready["call_status"], "completed");
    assert_eq!(ready["disposition"], "answered");
    assert_eq!(ready["recording_url"], done["recording_url"]);
    assert!(ready["recording_duration"].as_i64().is_some(), "{ready}");
    assert!(done["recording_duration"].is_null());

    // The recording served is the one the PBX made, to its own account only.
    let mut conn = p.pool.get().await.expect("conn");
    let attempt: AttemptId = diesel::sql_query(
        "SELECT t.id FROM call_attempts t JOIN calls c ON c.id = t.call_pk \
         WHERE c.call_id = $1 AND t.attempt = $2",
    )
    .bind::<SqlUuid, _>(uuid::Uuid::parse_str(&call_id).expect("uuid"))
    .bind::<Integer, _>(1)
    .get_result(&mut conn)
    .await
    .expect("attempt");
    let made = std::fs::read(p.recordings.join(format!("{}.wav", attempt.id)))
        .expect("the PBX's copy of the recording");
    let served = http
        .get(&recording_url)
        .header("X-API-KEY", &acct.api_key)
        .send()
        .await
        .expect("GET recording");
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(
        served
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("audio/wav")
    );
    assert!(served.bytes().await.expect("bytes") == made, "same bytes");
    let foreign = http
        .get(&recording_url)
        .header("X-API-KEY", &other.api_key)
        .send()
        .await
        .expect("GET recording");
    assert_eq!(foreign.status().as_u16(), 404);

    // A machine and dead air are machines; with `detect` the flow goes on as for a person, who
    // presses nothing; the silent person times out with nothing pressed.
    for (number, cause) in [
        ("+12015550160", "LONGGREETING-1500-1500"),
        ("+12015550170", "INITIALSILENCE-2500-2500"),
    ] {
        let amd = of_type(&by[number], "call_amd_result");
        assert_eq!(
            (&amd["answered_by"], &amd["amd_cause"]),
            (&json!("machine"), &json!(cause))
        );
        assert_eq!(of_type(&by[number], "call_input")["digits"], "");
    }
    let silent = &by["+12015550180"];
    assert_eq!(of_type(silent, "call_input")["digits"], "");
    assert_eq!(of_type(silent, "call_input")["opted_out"], false);
    // The opt-out: reported, the call ended, the number now on the account's list.
    let out = &by["+12015550190"];
    let input = of_type(out, "call_input");
    assert_eq!(
        (&input["digits"], &input["opted_out"]),
        (&json!("9"), &json!(true))
    );
    assert_eq!(of_type(out, "call_completed")["opted_out"], true);
    let again = client
        .submit(
            &json!({"batch_id": 799, "data": [{"phone_number": "+12015550190"},
                                                   {"phone_number": "+12015550110"}]}),
        )
        .await
        .expect("resubmission");
    assert_eq!(again["accepted"], 1, "{again}");
    assert_eq!(again["rejected"][0]["reason"], "do_not_call", "{again}");
    // The account sees the opt-out on its own list, but only an operator may remove it.
    let listed: Value = http
        .get(format!("{api}/api/v1/dnc"))
        .header("X-API-KEY", &acct.api_key)
        .send()
        .await
        .expect("GET /dnc")
        .json()
        .await
        .expect("json");
    let entry = listed["entries"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["phone_number"] == "+12015550190"))
        .unwrap_or_else(|| panic!("the opt-out is listed: {listed}"));
    assert_eq!(entry["source"], "opt_out", "{entry}");
    let removal = http
        .delete(format!("{api}/api/v1/dnc/%2B12015550190"))
        .header("X-API-KEY", &acct.api_key)
        .send()
        .await
        .expect("DELETE /dnc");
    assert_eq!(removal.status().as_u16(), 409);
    let refusal: Value = removal.json().await.expect("json");
    assert_eq!(refusal["code"], "dnc_entry_protected", "{refusal}");

    let status = client.batch_status(701).await.expect("status");
    assert_eq!(status["counts"]["answered_human"], 3, "{status}");
    assert_eq!(status["counts"]["answered_machine"], 2, "{status}");
    assert_eq!(status["counts"]["opted_out"], 1, "{status}");

    // 705: the keys before the finish key, without it; no AMD asked, none reported.
    let finished = &by["+12015550510"];
    assert_eq!(of_type(finished, "call_input")["digits"], "12");
    assert!(!types(finished).contains(&"call_amd_result"));
    assert_eq!(of_type(finished, "call_input")["answered_by"], Value::Null);

    // 706: hung up before AMD decided: an unknown answer, no cause, nothing gathered; hung up
    // mid-gather: the keys read so far.
    let before_amd = &by["+12015550520"];
    assert_eq!(
        types(before_amd),
        [
            "call_started",
            "call_answered",
            "call_amd_result",
            "call_completed"
        ]
    );
    let amd = of_type(before_amd, "call_amd_result");
    assert_eq!(
        (&amd["answered_by"], &amd["amd_cause"]),
        (&json!("unknown"), &Value::Null)
    );
    let mid_gather = &by["+12015550530"];
    assert_eq!(
        types(mid_gather),
        [
            "call_started",
            "call_answered",
            "call_amd_result",
            "call_input",
            "call_completed"
        ]
    );
    let input = of_type(mid_gather, "call_input");
    assert_eq!(
        (&input["digits"], &input["answered_by"]),
        (&json!("12"), &json!("human"))
    );
    assert_eq!(of_type(mid_gather, "call_completed")["digits"], "12");

    // 702, hangup_machine: the machine is hung up on after the result, nothing gathered.
    assert_eq!(
        types(&by["+12015550260"]),
        [
            "call_started",
            "call_answered",
            "call_amd_result",
            "call_completed"
        ]
    );
    assert_eq!(of_type(&by["+12015550210"], "call_input")["digits"], "1");
    // 703, voicemail: the machine got the voicemail prompt (fetched by the PBX), the person the
    // message.
    let machine = &by["+12015550360"];
    assert_eq!(
        types(machine),
        [
            "call_started",
            "call_answered",
            "call_amd_result",
            "call_completed"
        ]
    );
    assert_eq!(
        of_type(machine, "call_completed")["error_message"],
        Value::Null
    );
    assert_eq!(
        of_type(&by["+12015550310"], "call_amd_result")["answered_by"],
        "human"
    );
    let stats = p.sims[0].stats().await;
    assert_eq!(stats["prompts_failed"], 0, "{stats}");
    // 701: 3 people and 2 machines as people hear the message; 702: the person; 703: the
    // person's message and the machine's voicemail; 705: the message.
    assert_eq!(stats["prompts_played"], 9, "{stats}");
    assert_eq!(stats["recordings_uploaded"], 5, "{stats}");

    // A prompt in use by a batch is kept; a finished batch's can go.
    let resp = http
        .delete(format!("{api}/api/v1/prompts/{message_id}"))
        .header("X-API-KEY", &acct.api_key)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(
        resp.status().as_u16(),
        200,
        "every batch naming it is completed"
    );
    client
        .submit(&json!({"batch_id": 704, "message_prompt": voicemail_id,
                        "data": [{"phone_number": "+12015550410"}]}))
        .await
        .expect("batch 704 (not dispatched)");
    let resp = http
        .delete(format!("{api}/api/v1/prompts/{voicemail_id}"))
        .header("X-API-KEY", &acct.api_key)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 409);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(body["code"], "prompt_in_use", "{body}");

    p.processes.stop_all(Duration::from_secs(5)).await;
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_prompt_and_a_recording_that_never_arrives_hold_nothing_up() {
    // The PBX is told to fetch and upload at an address where nothing listens.
    let dead = platform::free_port().expect("port");
    let mut p = platform(
        "flow-dead-media",
        vec![(
            "DIALER_MEDIA_URL".to_owned(),
            format!("http://127.0.0.1:{dead}"),
        )],
    )
    .await;
    let (acct, receiver) =
        seed::account_with_receiver(&p.pool, "DEAD", "US", settings(), Duration::ZERO)
            .await
            .expect("account");
    let api = p.services.api_url.clone();
    let client = ApiClient::new(&api, &acct.api_key);
    let http = reqwest::Client::new();
    let (status, message) = post_prompt(
        &http,
        &api,
        &acct.api_key,
        "audio/wav",
        tone_wav(16000, 200),
    )
    .await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(
        message["sample_rate"], 8000,
        "stored at the rate the PBX plays"
    );
    let message_id = message["prompt_id"].as_str().expect("prompt_id");
    client
        .submit(
            &json!({"batch_id": 801, "message_prompt": message_id, "record": true,
                        "dispatch": true, "data": [{"phone_number": "+12015550110"}]}),
        )
        .await
        .expect("batch 801");
    settle(&mut p, &client, &[801], &receiver, |by| {
        by.get("+12015550110")
            .is_some_and(|e| e.iter().any(|x| x["event_type"] == "call_completed"))
    })
    .await;
    // Some time for a recording that would come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let by = events_by_number(&receiver);
    let events = &by["+12015550110"];
    assert_eq!(
        types(events),
        ["call_started", "call_answered", "call_completed"],
        "no call_recording_ready"
    );
    let done = of_type(events, "call_completed");
    assert_eq!(
        done["error_message"], "the PBX could not play the message prompt",
        "{done}"
    );
    let url = done["recording_url"]
        .as_str()
        .expect("recording_url is set");
    let resp = http
        .get(url)
        .header("X-API-KEY", &acct.api_key)
        .send()
        .await
        .expect("GET recording");
    assert_eq!(resp.status().as_u16(), 404, "never stored");
    let mut conn = p.pool.get().await.expect("conn");
    let stored: Count = diesel::sql_query("SELECT count(*) AS n FROM recordings")
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(stored.n, 0);
    let stats = p.sims[0].stats().await;
    assert_eq!(stats["prompts_failed"], 1, "{stats}");
    assert_eq!(stats["recording_upload_failures"], 1, "{stats}");
    p.processes.stop_all(Duration::from_secs(5)).await;
}
