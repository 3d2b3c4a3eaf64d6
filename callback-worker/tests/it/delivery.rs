//! The engine against real PostgreSQL and real HTTP receivers on loopback.

use std::time::{Duration, Instant};

use crate::helpers::{
    Endpoint, Harness, SETTLED, account_events_in, assert_in_order_per_call, events_in, secret,
};
use crate::receiver::{self, MODE_FAIL, MODE_HANG, MODE_OK, ReceiverState};
use dialer_core::callbacks::listing::{self, EventFilter};
use dialer_core::callbacks::replay::{self, ReplaySelection};
use dialer_core::callbacks::rotation;
use dialer_core::domain::DeliveryStatus;

#[tokio::test]
async fn receiver_verifies_both_signatures_and_rejects_a_changed_byte() {
    let h = Harness::new().await;
    let Endpoint {
        secret: s,
        state,
        addr,
        account,
    } = h.endpoint("SIGN", MODE_OK).await;
    h.deliver(account, 4, 2, 8).await;
    let got = state.received();
    assert_eq!(got.len(), 8, "one request per event");
    for r in &got {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.x_signature_secret, Some(0));
        assert_eq!(r.webhook_secrets, vec![0]);
        assert_eq!(r.webhook_entries, 1);
    }
    // Every attempt is on record with its status and answer.
    assert_eq!(
        h.count("SELECT count(*) AS n FROM callback_deliveries WHERE status_code = 200 AND response_head = 'ok' AND attempt = 1").await,
        8
    );

    // The same check refuses a body changed by one byte.
    let body = br#"{"event_id":"evt_1","sequence":1}"#.to_vec();
    let ts = chrono::Utc::now().timestamp();
    let keys = callback_worker::signing::SigningKeys {
        current: callback_worker::signing::CallbackSecret::parse(&s).expect("secret"),
        previous: None,
    };
    let h1 = keys.sign("evt_1", &body, chrono::Utc::now());
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(format!("http://{addr}/cb"))
            .header("X-Signature", &h1.x_signature)
            .header("webhook-id", "evt_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", &h1.webhook_signature)
            .body(body)
            .send()
    };
    assert_eq!(post(body.clone()).await.expect("post").status(), 200);
    let mut changed = body.clone();
    changed[20] ^= 0x01;
    assert_eq!(post(changed).await.expect("post").status(), 401);
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_keeps_x_signature_on_the_old_one() {
    let h = Harness::new().await;
    let Endpoint {
        secret: old,
        state: account_url_state,
        account,
        ..
    } = h.endpoint("ROT", MODE_OK).await;
    let mut conn = h.conn().await;
    let rotated = rotation::rotate_secret(&mut conn, account, Duration::from_secs(3600))
        .await
        .expect("rotate")
        .expect("account exists");
    assert!(rotated.previous_valid_until.is_some());
    h.deliver(account, 2, 1, 2).await;
    // A client that knows only the old secret still verifies both headers...
    for r in account_url_state.received() {
        assert_eq!(r.status, 200);
        assert_eq!(
            r.webhook_entries, 2,
            "both signatures during the grace period"
        );
        assert_eq!(r.x_signature_secret, Some(0));
    }
    // ...and one that knows only the new secret verifies webhook-signature.
    let both = ReceiverState::new(vec![rotated.secret.clone(), old.clone()]);
    let addr2 = receiver::start(both.clone(), None).await;
    h.exec(&format!(
        "UPDATE accounts SET callback_url = 'http://{addr2}/cb'"
    ))
    .await;
    h.deliver(account, 1, 1, 3).await;
    let r = &both.received()[0];
    assert_eq!(r.webhook_secrets, vec![0, 1]);
    assert_eq!(
        r.x_signature_secret,
        Some(1),
        "X-Signature stays on the old secret"
    );

    // After the grace period only the new secret signs.
    h.exec("UPDATE accounts SET callback_secret_previous_until = now() - interval '1 second'")
        .await;
    h.deliver(account, 1, 1, 4).await;
    let r = &both.received()[1];
    assert_eq!(r.webhook_secrets, vec![0]);
    assert_eq!(r.webhook_entries, 1);
    assert_eq!(r.x_signature_secret, Some(0));
}

#[tokio::test]
async fn endpoint_down_then_up_gets_every_event_in_order_per_call() {
    let h = Harness::new().await;
    let (state, account) = h.receiving("DOWN", MODE_FAIL).await;
    h.events(account, 20, 3).await;
    let mut config = h.config();
    config.schedule = callback_worker::schedule::RetrySchedule::parse(
        "100ms,200ms,300ms,400ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms",
        0.2,
    )
    .expect("schedule");
    // A quick circuit, so the outage also exercises it.
    config.circuit.failures_to_open = 5;
    config.circuit.first_cooldown = Duration::from_millis(300);
    config.circuit.max_cooldown = Duration::from_millis(600);
    let run = h.start(config);
    // Down for a while: only the first event of each call may be tried.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tried_while_down = state.received();
    assert!(!tried_while_down.is_empty());
    assert!(
        tried_while_down.iter().all(|r| r.sequence == Some(1)),
        "a later event went before its predecessor was settled"
    );
    state.set_mode(MODE_OK);
    h.wait_delivered(60, Duration::from_secs(60)).await;
    run.shutdown().await;
    assert_in_order_per_call(&state.accepted(), 60);
    // Every try is on record: the failed ones too.
    let failed_tries = h
        .count("SELECT count(*) AS n FROM callback_deliveries WHERE status_code = 503")
        .await;
    assert_eq!(
        failed_tries,
        state.received().iter().filter(|r| r.status == 503).count() as i64
    );
}

#[tokio::test]
async fn failing_forever_ends_failed_and_redelivery_sends_it_again() {
    let h = Harness::new().await;
    let (state, account) = h.receiving("FAIL", MODE_FAIL).await;
    h.events(account, 2, 2).await;
    let run = h.start(h.config());
    // 4 tries each (first + 3 retries) of the first event of each call, then the second.
    h.wait_count(
        &events_in(DeliveryStatus::Failed),
        4,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        h.count("SELECT count(*) AS n FROM callback_deliveries")
            .await,
        16
    );
    assert_eq!(
        h.count("SELECT count(*) AS n FROM call_events WHERE delivery_attempts = 4 AND last_error = 'HTTP 503'")
            .await,
        4
    );
    let mut conn = h.conn().await;
    let page = listing::list_events(
        &mut conn,
        account,
        &EventFilter {
            status: Some(DeliveryStatus::Failed),
            limit: Some(3),
            cursor: None,
        },
    )
    .await
    .expect("list");
    assert_eq!(page.events.len(), 3);
    let rest = listing::list_events(
        &mut conn,
        account,
        &EventFilter {
            status: Some(DeliveryStatus::Failed),
            limit: Some(3),
            cursor: page.next_cursor,
        },
    )
    .await
    .expect("list page 2");
    assert_eq!(rest.events.len(), 1);
    assert_eq!(rest.next_cursor, None);
    let attempts = listing::event_attempts(&mut conn, account, &page.events[0].event_id)
        .await
        .expect("attempts")
        .expect("event exists");
    assert_eq!(attempts.len(), 4);
    assert!(attempts.iter().all(|a| a.status_code == Some(503)));
    // Another account sees none of it.
    assert!(
        listing::event_attempts(&mut conn, account + 1000, &page.events[0].event_id)
            .await
            .expect("attempts")
            .is_none()
    );

    state.set_mode(MODE_OK);
    let one = vec![page.events[0].event_id.clone()];
    let reset = replay::redeliver(&mut conn, account, &ReplaySelection::EventIds(one.clone()))
        .await
        .expect("redeliver one");
    assert_eq!(reset, one);
    h.wait_delivered(1, Duration::from_secs(30)).await;
    let reset = replay::redeliver(&mut conn, account, &ReplaySelection::AllFailed)
        .await
        .expect("redeliver all");
    assert_eq!(reset.len(), 3);
    h.wait_delivered(4, Duration::from_secs(30)).await;
    run.shutdown().await;
    // Attempt numbers went on from 5: the failed tries stay on record.
    assert_eq!(
        h.count(
            "SELECT count(*) AS n FROM callback_deliveries WHERE attempt = 5 AND status_code = 200"
        )
        .await,
        4
    );
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another() {
    let h = Harness::new().await;
    let (hanging, slow) = h.receiving("HANG", MODE_HANG).await;
    let (healthy, fast) = h.receiving("FAST", MODE_OK).await;
    // The hanging endpoint's events are written first, so they are claimed first.
    h.events(slow, 200, 1).await;
    h.events(fast, 30, 2).await;
    let mut config = h.config();
    config.core.callback_timeout = Duration::from_secs(30);
    config.lease = Duration::from_secs(60);
    config.endpoint_concurrency = 8;
    let started = Instant::now();
    let run = h.start(config);
    let took = h
        .wait_count(
            &account_events_in(fast, DeliveryStatus::Delivered),
            60,
            Duration::from_secs(30),
        )
        .await;
    // Far less than one timeout of the hanging endpoint: nothing waited on it.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(
        h.count(&format!(
            "SELECT count(*) AS n FROM callback_deliveries d JOIN call_events e ON e.id = d.event_pk WHERE e.account_id = {slow}"
        ))
        .await,
        0,
        "no try of the hanging endpoint has finished yet"
    );
    // The cap holds: the hanging endpoint never had more than 8 requests open.
    assert!(hanging.requests.load(std::sync::atomic::Ordering::SeqCst) <= 8);
    assert!(started.elapsed() < Duration::from_secs(30));
    run.shutdown().await;
    assert_in_order_per_call(&healthy.accepted(), 60);
}

#[tokio::test]
async fn batch_events_go_only_to_subscribers() {
    let h = Harness::new().await;
    let (yes, subscriber) = h.receiving("SUB", MODE_OK).await;
    h.exec(&format!(
        "UPDATE accounts SET callback_batch_events = true WHERE id = {subscriber}"
    ))
    .await;
    let (no, other) = h.receiving("NOSUB", MODE_OK).await;
    let b1 = h.events(subscriber, 1, 1).await;
    let b2 = h.events(other, 1, 1).await;
    let e1 = h.batch_event(b1).await;
    let e2 = h.batch_event(b2).await;
    let run = h.start(h.config());
    h.wait_count(SETTLED, 4, Duration::from_secs(30)).await;
    run.shutdown().await;
    assert!(yes.accepted().iter().any(|r| r.event_id == e1));
    assert!(no.received().iter().all(|r| r.event_id != e2));
    assert_eq!(no.accepted().len(), 1, "its call event still goes");
    assert_eq!(
        h.count(&format!(
            "SELECT count(*) AS n FROM call_events WHERE event_id = '{e2}' AND delivery_status = '{}'",
            DeliveryStatus::Skipped
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn private_and_loopback_urls_are_refused_unless_allowed() {
    let h = Harness::new().await;
    let s = secret();
    let state = ReceiverState::new(vec![s.clone()]);
    let addr = receiver::start(state.clone(), None).await;
    let port = addr.port();
    let plain = h
        .account(
            "PLAIN",
            &format!("http://127.0.0.1:{port}/cb"),
            &s,
            false,
            None,
        )
        .await;
    let named = h
        .account(
            "NAMED",
            &format!("https://localhost:{port}/cb"),
            &s,
            false,
            None,
        )
        .await;
    let private = h
        .account("PRIV", "https://10.0.0.1/cb", &s, false, None)
        .await;
    for a in [plain, named, private] {
        h.events(a, 1, 1).await;
    }
    let mut config = h.config();
    config.core.allow_http_loopback_callbacks = false;
    config.schedule = callback_worker::schedule::RetrySchedule::parse("", 0.0).expect("none");
    let run = h.start(config);
    h.wait_count(
        &events_in(DeliveryStatus::Failed),
        3,
        Duration::from_secs(30),
    )
    .await;
    run.shutdown().await;
    assert_eq!(state.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    let error_of = |account: i64| {
        format!(
            "SELECT count(*) AS n FROM callback_deliveries d JOIN call_events e ON e.id = d.event_pk \
             WHERE e.account_id = {account} AND d.error LIKE '%{{}}%'"
        )
    };
    assert_eq!(
        h.count(&error_of(plain).replace("{}", "must use https"))
            .await,
        1
    );
    // A name is checked where it is resolved, so it cannot be rebound to an internal address.
    assert_eq!(
        h.count(&error_of(named).replace("{}", "resolves only to private"))
            .await,
        1
    );
    assert_eq!(
        h.count(&error_of(private).replace("{}", "private, loopback or link-local address"))
            .await,
        1
    );
    let _ = MODE_OK;
}

#[tokio::test]
async fn redirects_are_not_followed_and_answers_are_read_to_1_kb() {
    let h = Harness::new().await;
    let (moving, redirected) = h.receiving("MOVED", receiver::MODE_REDIRECT).await;
    let (_, big) = h.receiving("BIG", receiver::MODE_BIG).await;
    h.events(redirected, 1, 1).await;
    h.events(big, 1, 1).await;
    h.settle_without_retries(2).await;
    // A 3xx is a failure, and its Location is never visited.
    assert_eq!(moving.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        h.count(&format!(
            "SELECT count(*) AS n FROM call_events e JOIN callback_deliveries d ON d.event_pk = e.id \
             WHERE e.account_id = {redirected} AND e.delivery_status = 'failed' AND d.status_code = 302"
        ))
        .await,
        1
    );
    assert_eq!(
        h.count(&format!(
            "SELECT count(*) AS n FROM call_events e JOIN callback_deliveries d ON d.event_pk = e.id \
             WHERE e.account_id = {big} AND e.delivery_status = 'delivered' \
               AND octet_length(d.response_head) = 1024"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn a_failing_endpoint_is_backed_off_as_a_whole_and_comes_back_by_itself() {
    let h = Harness::new().await;
    let (state, account) = h.receiving("CIRCUIT", MODE_FAIL).await;
    let mut config = h.config();
    config.endpoint_concurrency = 2;
    config.circuit.failures_to_open = 3;
    config.circuit.first_cooldown = Duration::from_millis(3000);
    config.circuit.max_cooldown = Duration::from_millis(3000);
    config.schedule =
        callback_worker::schedule::RetrySchedule::parse("100ms,100ms,100ms,100ms,100ms", 0.0)
            .expect("schedule");
    h.events(account, 40, 1).await;
    let run = h.start(config);
    let t0 = Instant::now();
    while state.requests.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no request at all");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Well inside the cooldown, whatever the machine's load.
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Open after 3 failures in a row (plus what was already in flight): the rest wait.
    let while_open = state.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (3..=5).contains(&while_open),
        "{while_open} requests before the circuit held them back"
    );
    // Events held back used up none of their tries.
    assert!(
        h.count("SELECT count(*) AS n FROM call_events WHERE delivery_attempts = 0")
            .await
            >= 35
    );
    state.set_mode(MODE_OK);
    // No one tells the worker: the half-open probe finds the endpoint back.
    h.wait_delivered(40, Duration::from_secs(30)).await;
    run.shutdown().await;
    assert!(state.requests.load(std::sync::atomic::Ordering::SeqCst) <= 40 + 5 + 2);
}

/// With a 2 s timeout: an endpoint that never answers, one that answers in 1 s, one that answers
/// 200 in 1.8 s (just under the timeout: delivered at the first try, never counted as a
/// timeout), and a healthy one, whose 60 events are not slowed by the three others.
#[tokio::test]
async fn hanging_slow_and_just_in_time_endpoints_do_not_slow_a_healthy_one() {
    let h = Harness::new().await;
    let (_hanging, hang) = h.receiving("HANG", MODE_HANG).await;
    let (slow_state, slow) = h.receiving("SLOW", MODE_OK).await;
    slow_state
        .delay_ms
        .store(1000, std::sync::atomic::Ordering::SeqCst);
    let (just_state, just) = h.receiving("JUST", MODE_OK).await;
    just_state
        .delay_ms
        .store(1800, std::sync::atomic::Ordering::SeqCst);
    let (healthy, fast) = h.receiving("FAST", MODE_OK).await;
    // The others' events are written first, so they are claimed first.
    h.events(hang, 40, 1).await;
    h.events(slow, 16, 1).await;
    h.events(just, 16, 1).await;
    h.events(fast, 30, 2).await;
    let mut config = h.config();
    config.core.callback_timeout = Duration::from_secs(2);
    config.endpoint_concurrency = 8;
    let run = h.start(config);
    let took = h
        .wait_count(
            &account_events_in(fast, DeliveryStatus::Delivered),
            60,
            Duration::from_secs(30),
        )
        .await;
    eprintln!("the healthy endpoint's 60 events delivered in {took:?}");
    // Waiting behind the hanging endpoint alone would take 40 / 8 x 2 s = 10 s, behind the
    // slow ones 2 rounds of 1 s and of 1.8 s more: the healthy one waits for none of them.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    for account in [slow, just] {
        h.wait_count(
            &account_events_in(account, DeliveryStatus::Delivered),
            16,
            Duration::from_secs(30),
        )
        .await;
    }
    run.shutdown().await;
    assert_in_order_per_call(&healthy.accepted(), 60);
    let tries_of = |account: i64, filter: &str| {
        format!(
            "SELECT count(*) AS n FROM callback_deliveries d JOIN call_events e ON e.id = d.event_pk \
             WHERE e.account_id = {account} {filter}"
        )
    };
    // Just in time: one try per event, each a 200.
    assert_eq!(h.count(&tries_of(just, "")).await, 16);
    assert_eq!(
        h.count(&tries_of(just, "AND d.status_code = 200")).await,
        16
    );
    // The hanging one: tries ended by the timeout, none delivered.
    assert!(
        h.count(&tries_of(
            hang,
            "AND d.status_code IS NULL AND d.error IS NOT NULL"
        ))
        .await
            > 0
    );
    assert_eq!(
        h.count(&account_events_in(hang, DeliveryStatus::Delivered))
            .await,
        0
    );
}
