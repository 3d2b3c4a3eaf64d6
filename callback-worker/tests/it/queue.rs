//! The delivery queue: what enters it, what a claim costs, and the claim token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use callback_worker::claim::{self, CLAIM_SQL};
use callback_worker::record::{self, Outcome, Resolution};
use dialer_core::callbacks::replay::{self, ReplaySelection};
use dialer_core::domain::DeliveryStatus;
use diesel::sql_types::{Array, BigInt, Double, Text};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::helpers::{Harness, account_events_in};
use crate::receiver::MODE_OK;

const QUEUED: &str = "SELECT count(*) AS n FROM callback_queue";

#[derive(diesel::QueryableByName)]
struct EventIdRow {
    #[diesel(sql_type = Text)]
    event_id: String,
}

#[tokio::test]
async fn an_event_without_a_callback_url_is_skipped_at_insert_and_sent_only_by_a_replay() {
    let h = Harness::new().await;
    let e = h.endpoint("LATE", MODE_OK).await;
    let account = e.account;
    h.exec(&format!(
        "UPDATE accounts SET callback_url = NULL WHERE id = {account}"
    ))
    .await;
    let batch = h.events(account, 2, 1).await;
    assert_eq!(
        h.count(&format!(
            "SELECT count(*) AS n FROM call_events WHERE account_id = {account} \
             AND delivery_status = 'skipped' AND last_error = 'the account has no callback URL' \
             AND published_at IS NOT NULL"
        ))
        .await,
        2,
        "stored skipped, with the worker's reason, and nothing to hand off"
    );
    assert_eq!(h.count(QUEUED).await, 0, "never queued");

    let run = h.start(h.config());
    // A URL set afterwards does not send them (the worker re-reads settings every 200 ms and
    // polls every 200 ms here: this is several rounds of both).
    h.exec(&format!(
        "UPDATE accounts SET callback_url = 'http://{}/cb' WHERE id = {account}",
        e.addr
    ))
    .await;
    // And a batch event of an account that does not subscribe to them is skipped at insert too.
    h.batch_event(batch).await;
    assert_eq!(
        h.count(
            "SELECT count(*) AS n FROM call_events WHERE event_type = 'batch_completed' \
             AND delivery_status = 'skipped' \
             AND last_error = 'the account does not subscribe to batch events'"
        )
        .await,
        1
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        AtomicU64::load(&e.state.requests, Ordering::SeqCst),
        0,
        "nothing sent"
    );
    assert_eq!(
        h.count(&account_events_in(account, DeliveryStatus::Skipped))
            .await,
        3
    );

    // A replay sends it.
    let mut conn = h.conn().await;
    let first: EventIdRow = diesel::sql_query(
        "SELECT event_id FROM call_events WHERE account_id = $1 AND call_pk IS NOT NULL \
         ORDER BY id LIMIT 1",
    )
    .bind::<BigInt, _>(account)
    .get_result(&mut conn)
    .await
    .expect("first event");
    let one = vec![first.event_id.clone()];
    let reset = replay::redeliver(&mut conn, account, &ReplaySelection::EventIds(one.clone()))
        .await
        .expect("replay");
    assert_eq!(reset, one);
    h.wait_delivered(1, Duration::from_secs(30)).await;
    run.shutdown().await;
    let accepted = e.state.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].event_id, first.event_id);
    assert_eq!(h.count(QUEUED).await, 0, "delivered events leave the queue");
    assert_eq!(
        h.count(&account_events_in(account, DeliveryStatus::Skipped))
            .await,
        2
    );
}

/// Shared and local buffers the claim statement touched, from `EXPLAIN (ANALYZE, BUFFERS)`
/// (planning excluded), and how many events it claimed. Rolled back: nothing stays claimed.
async fn claim_buffers(h: &Harness, excluded: &[i64]) -> (i64, i64) {
    #[derive(diesel::QueryableByName)]
    struct Plan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        plan: String,
    }
    let mut conn = h.conn().await;
    let mut out = (0, 0);
    conn.transaction::<(), diesel::result::Error, _>(async |conn| {
        let plan: Plan = diesel::sql_query(format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {CLAIM_SQL}"
        ))
        .bind::<Array<BigInt>, _>(excluded.to_vec())
        .bind::<BigInt, _>(500_i64)
        .bind::<Double, _>(120.0)
        .bind::<BigInt, _>(128_i64)
        .get_result(conn)
        .await?;
        let json: serde_json::Value = serde_json::from_str(&plan.plan).expect("plan JSON");
        let top = &json[0]["Plan"];
        let n = |k: &str| top[k].as_i64().unwrap_or(0);
        out = (
            n("Shared Hit Blocks") + n("Shared Read Blocks") + n("Local Hit Blocks"),
            n("Actual Rows"),
        );
        Err(diesel::result::Error::RollbackTransaction)
    })
    .await
    .err();
    out
}

#[tokio::test]
async fn a_claim_costs_the_same_whatever_the_history() {
    let h = Harness::new().await;
    let e = h.endpoint("HISTORY", MODE_OK).await;
    // History: 4,500 events delivered for real by the worker.
    h.events(e.account, 1500, 3).await;
    let mut config = h.config();
    config.queue_vacuum = Duration::from_millis(200);
    let run = h.start(config);
    h.wait_delivered(4500, Duration::from_secs(120)).await;
    // The worker vacuums the queue a tick after each change. Once its vacuums stop (no change
    // left), the last one came after the last change: wait for that, however loaded the
    // machine is, rather than for a fixed time.
    const VACUUMS: &str = "SELECT COALESCE(sum(vacuum_count), 0)::bigint AS n \
                           FROM pg_stat_user_tables WHERE relname = 'callback_queue'";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut seen = h.count(VACUUMS).await;
    let mut still_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = h.count(VACUUMS).await;
        if now != seen {
            seen = now;
            still_since = tokio::time::Instant::now();
        } else if seen > 0 && still_since.elapsed() > Duration::from_millis(1500) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker's vacuums of the queue never settled ({seen} so far)"
        );
    }
    run.shutdown().await;
    // Three events due now.
    h.events(e.account, 3, 1).await;
    let (buffers, claimed) = claim_buffers(&h, &[]).await;
    println!("claim of {claimed} due events after 4,500 delivered: {buffers} buffers");
    assert_eq!(claimed, 3);
    // About a dozen index and heap pages per claimed event (queue, call_events, replays),
    // whatever the history; walking the history's dead entries took hundreds.
    assert!(
        buffers <= 60,
        "the claim touched {buffers} buffers for 3 events"
    );
}

/// One account's backlog (its endpoint was down, say) neither fills a claim nor lengthens it:
/// accounts take turns, and an excluded account's events are not walked. Before, the claim read
/// the queue in due order for everyone: another account's fresh callbacks waited behind the
/// backlog (78 s behind 1,000,000 events in `dialer-devkit memory`), and each claim walked the
/// excluded account's events (600 ms a claim).
#[tokio::test]
async fn an_account_s_backlog_neither_fills_a_claim_nor_lengthens_it() {
    let h = Harness::new().await;
    let big = h.endpoint("BACKLOG", MODE_OK).await;
    let small = h.endpoint("FRESH", MODE_OK).await;
    h.events(big.account, 50_000, 1).await;
    h.events(small.account, 3, 1).await;
    // Statistics as autovacuum keeps them (the queue's thresholds are low: migration
    // 2026-12-06-000001); without any the planner guesses.
    h.conn()
        .await
        .batch_execute("ANALYZE callback_queue; ANALYZE call_events")
        .await
        .expect("analyze");
    // The backlog's endpoint saturated (excluded): the claim reads the other account's events
    // only, at the cost of a claim of 3 events with no backlog at all.
    let (buffers, claimed) = claim_buffers(&h, &[big.account]).await;
    println!("claim of {claimed} events beside 50,000 of an excluded account: {buffers} buffers");
    assert_eq!(claimed, 3);
    // About 30 pages per claimed event at this size (the lease rewrites three indexes); walking
    // the excluded account's 50,000 took over 400.
    assert!(buffers <= 120, "the claim touched {buffers} buffers");
    // Not excluded: the fresh account's events come in the first claim, beside at most
    // `per_account` of the backlog.
    let mut conn = h.conn().await;
    let got = claim::claim_due(&mut conn, 100, 40, &[], Duration::from_secs(60))
        .await
        .expect("claim");
    let of = |account: i64| got.iter().filter(|e| e.account_id == account).count();
    assert_eq!((of(small.account), of(big.account)), (3, 40));
}

#[tokio::test]
async fn a_lost_claim_writes_nothing_and_the_newer_one_settles_the_event() {
    let h = Harness::new().await;
    let e = h.endpoint("TOKEN", MODE_OK).await;
    h.events(e.account, 1, 1).await;
    let mut conn = h.conn().await;
    // A lease of zero: due again at once, as after a lease that ran out.
    let first = claim::claim_due(&mut conn, 10, 10, &[], Duration::ZERO)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    let second = claim::claim_due(&mut conn, 10, 10, &[], Duration::from_secs(60))
        .await
        .expect("claim again");
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].lease_token, second[0].lease_token);
    let delivered = |token| Outcome {
        event_pk: first[0].id,
        lease_token: token,
        resolution: Resolution::Delivered,
        attempt: None,
    };
    let stale = record::record(&mut conn, &[delivered(first[0].lease_token)])
        .await
        .expect("record stale");
    assert_eq!(stale.updated, 0, "the first claim lost the event");
    assert_eq!(h.count(QUEUED).await, 1);
    // Deferring the account (circuit open) leaves the claimed event's lease alone.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    claim::defer_account(&mut conn, e.account, later)
        .await
        .expect("defer");
    let fresh = record::record(&mut conn, &[delivered(second[0].lease_token)])
        .await
        .expect("record");
    assert_eq!(fresh.updated, 1);
    assert_eq!(h.count(QUEUED).await, 0);
    assert_eq!(
        h.count(&account_events_in(e.account, DeliveryStatus::Delivered))
            .await,
        1
    );
}

#[tokio::test]
async fn settling_an_event_reports_the_events_of_its_call_waiting_behind_it() {
    let h = Harness::new().await;
    let e = h.endpoint("FOLLOW", MODE_OK).await;
    // Two calls of two events each: a claim takes the first event of each call only.
    h.events(e.account, 2, 2).await;
    let mut conn = h.conn().await;
    let settle = |events: &[claim::ClaimedEvent]| -> Vec<Outcome> {
        events
            .iter()
            .map(|ev| Outcome {
                event_pk: ev.id,
                lease_token: ev.lease_token,
                resolution: Resolution::Delivered,
                attempt: None,
            })
            .collect()
    };
    let firsts = claim::claim_due(&mut conn, 10, 10, &[], Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(firsts.len(), 2);
    // Settling one of them: the other call's second event is not behind it.
    let one = record::record(&mut conn, &settle(&firsts[..1]))
        .await
        .expect("record");
    assert_eq!((one.updated, one.followers), (1, 1));
    let two = record::record(&mut conn, &settle(&firsts[1..]))
        .await
        .expect("record");
    assert_eq!((two.updated, two.followers), (1, 1));
    let seconds = claim::claim_due(&mut conn, 10, 10, &[], Duration::from_secs(60))
        .await
        .expect("claim the followers");
    assert_eq!(seconds.len(), 2);
    // The last events of their calls: nothing waits behind them.
    let last = record::record(&mut conn, &settle(&seconds))
        .await
        .expect("record");
    assert_eq!((last.updated, last.followers), (2, 0));
    assert_eq!(h.count(QUEUED).await, 0);
}

#[tokio::test]
async fn a_call_s_later_events_follow_without_waiting_for_the_poll() {
    let h = Harness::new().await;
    let e = h.endpoint("NEXT", MODE_OK).await;
    h.events(e.account, 3, 1).await;
    h.events(e.account, 1, 4).await;
    // No prompts and a poll of a minute: only the recorder's wake-up after an event with
    // followers brings the call's later events.
    let mut config = h.config();
    config.poll_interval = Duration::from_secs(60);
    let run = h.start(config);
    let took = h.wait_delivered(7, Duration::from_secs(20)).await;
    println!("7 events, 4 of them one call's, delivered in {took:?}");
    crate::helpers::assert_in_order_per_call(&e.state.accepted(), 7);
    run.shutdown().await;
}

#[tokio::test]
async fn the_backlog_metric_counts_each_account_s_undelivered_events_and_their_age() {
    let h = Harness::new().await;
    let a = h.endpoint("ALPHA", MODE_OK).await;
    let b = h.endpoint("BRAVO", MODE_OK).await;
    h.events(a.account, 4, 2).await;
    h.events(b.account, 1, 1).await;
    // ALPHA's oldest event is 90 s old; two of its events are delivered already.
    h.exec(&format!(
        "UPDATE call_events SET occurred_at = now() - interval '90 seconds' \
         WHERE id = (SELECT min(id) FROM call_events WHERE account_id = {})",
        a.account
    ))
    .await;
    h.exec(&format!(
        "WITH d AS (SELECT id FROM call_events WHERE account_id = {} ORDER BY id DESC LIMIT 2) \
         DELETE FROM callback_queue q USING d WHERE q.event_pk = d.id",
        a.account
    ))
    .await;
    let mut rows = callback_worker::metrics::read_backlog(&h.pool)
        .await
        .expect("backlog");
    rows.sort_by(|x, y| x.accountcode.cmp(&y.accountcode));
    let seen: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| (r.accountcode.as_str(), r.queued))
        .collect();
    assert_eq!(seen, [("ALPHA", 6), ("BRAVO", 1)]);
    assert!((89.0..120.0).contains(&rows[0].oldest_seconds), "{rows:?}");
    assert!(rows[1].oldest_seconds < 30.0, "{rows:?}");
}
