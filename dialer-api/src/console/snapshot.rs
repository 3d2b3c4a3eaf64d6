//! What the console shows live, read from the tables in one go: batches open or finished in the
//! last minutes (their summary, as the batch-status endpoint gives it), calls per second and
//! channels in use per account and per server, each server's connection state, each account's
//! callback backlog and failed deliveries, the plots' series and the latest audit entries.
//!
//! Every read is bounded: live attempts through the partial indexes of attempts not ended,
//! recent attempts through the BRIN index `call_attempts_originated_brin`, open batches through
//! `batches_completed`, per-account counts of the callback queue and failed events capped at
//! [`COUNT_CAP`] (a million-event backlog must not be counted every two seconds).

use std::collections::HashMap;

use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::db::DbPool;
use dialer_core::domain::{BatchStatus, CallStatus, ServerState};
use dialer_core::models::Batch;
use dialer_core::schema::batches;

use crate::console::series::{Series, SeriesCache};
use crate::ops::OpsResult;
use crate::ops::audit_log::{self, EntryView};
use crate::ops::batches::summary;

/// Batches shown at most (the newest); the rest are counted.
pub const MAX_BATCHES: i64 = 50;
/// A finished batch stays this long on the page, so its end is seen.
const FINISHED_SHOWN_MINUTES: i32 = 10;
/// Counts above this show as "at least".
pub const COUNT_CAP: i64 = 100_000;
/// Calls per second are the attempts started in this many last seconds, divided by it.
const RATE_WINDOW_SECONDS: i32 = 10;
const AUDIT_SHOWN: i64 = 20;

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub at: String,
    pub batches: Vec<BatchLive>,
    /// Batches open or lately finished beyond the ones shown.
    pub more_batches: i64,
    pub accounts: Vec<AccountLive>,
    pub servers: Vec<ServerLive>,
    pub series: Series,
    pub audit: Vec<EntryView>,
    /// Counts of the callback queue and failed events stop here ("at least").
    pub count_cap: i64,
}

#[derive(Debug, Serialize)]
pub struct BatchLive {
    pub account: String,
    pub batch_id: i64,
    pub name: Option<String>,
    pub status: BatchStatus,
    pub waiting_reason: Option<String>,
    pub total: i64,
    /// Calls with their final outcome.
    pub done: i64,
    pub answered: i64,
    pub busy: i64,
    pub no_answer: i64,
    /// Ended without an answer otherwise (failed, timed out unanswered).
    pub failed: i64,
    /// Never dialed: cancelled, skipped, expired.
    pub not_dialed: i64,
    pub human: i64,
    pub machine: i64,
}

#[derive(Debug, Serialize)]
pub struct AccountLive {
    pub account: String,
    pub status: String,
    pub cps: f64,
    pub max_cps: i32,
    pub channels: i64,
    pub max_channels: i32,
    /// Events waiting for delivery (at most [`COUNT_CAP`]).
    pub backlog: i64,
    /// Events whose delivery failed for good (at most [`COUNT_CAP`]); a replay sends them again.
    pub failed_callbacks: i64,
}

#[derive(Debug, Serialize)]
pub struct ServerLive {
    pub code: String,
    pub state: ServerState,
    pub enabled: bool,
    pub holder: Option<String>,
    pub capacity_factor: Option<f64>,
    pub cps: f64,
    pub max_cps: i32,
    pub channels: i64,
    pub max_channels: i32,
}

pub async fn build(pool: &DbPool, cache: &mut SeriesCache) -> OpsResult<Snapshot> {
    let mut conn = pool.get().await?;
    let (batches, more_batches) = batches_live(&mut conn).await?;
    let usage = usage(&mut conn).await?;
    let accounts = accounts_live(&mut conn, &usage).await?;
    let servers = servers_live(&mut conn, &usage).await?;
    let series = cache.refresh(&mut conn).await?;
    let audit = audit_log::recent(&mut conn, AUDIT_SHOWN).await?;
    Ok(Snapshot {
        at: dialer_core::event_body::rfc3339(chrono::Utc::now()),
        batches,
        more_batches,
        accounts,
        servers,
        series,
        audit,
        count_cap: COUNT_CAP,
    })
}

#[derive(diesel::QueryableByName)]
struct OpenBatch {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    accountcode: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

async fn batches_live(conn: &mut AsyncPgConnection) -> OpsResult<(Vec<BatchLive>, i64)> {
    let open: Vec<OpenBatch> = diesel::sql_query(
        "SELECT b.id, a.accountcode, count(*) OVER () AS total
         FROM batches b JOIN accounts a ON a.id = b.account_id
         WHERE b.completed_at IS NULL
            OR b.completed_at > now() - make_interval(mins => $1)
         ORDER BY b.completed_at IS NOT NULL, b.created_at DESC, b.id DESC
         LIMIT $2",
    )
    .bind::<Integer, _>(FINISHED_SHOWN_MINUTES)
    .bind::<BigInt, _>(MAX_BATCHES)
    .load(conn)
    .await?;
    let more = open
        .as_slice()
        .first()
        .map_or(0, |b| b.total - open.len() as i64);
    let ids: Vec<i64> = open.iter().map(|b| b.id).collect();
    let rows: Vec<Batch> = batches::table
        .filter(batches::id.eq_any(&ids))
        .select(Batch::as_select())
        .load(conn)
        .await?;
    let by_id: HashMap<i64, Batch> = rows.into_iter().map(|b| (b.id, b)).collect();
    let mut out = Vec::with_capacity(open.len());
    for o in &open {
        let Some(batch) = by_id.get(&o.id) else {
            continue; // deleted meanwhile (an account erased)
        };
        let s = summary(conn, batch).await?;
        let get = |st: CallStatus| s.state.get(st);
        let (busy, no_answer) = (get(CallStatus::Busy), get(CallStatus::NoAnswer));
        let not_dialed =
            get(CallStatus::Cancelled) + get(CallStatus::Skipped) + get(CallStatus::Expired);
        out.push(BatchLive {
            account: o.accountcode.clone(),
            batch_id: batch.batch_id,
            name: batch.name.clone(),
            status: batch.status,
            waiting_reason: s.waiting_reason,
            total: s.totals.total_calls,
            done: s.totals.total_calls - s.totals.pending_calls,
            answered: s.totals.completed_calls,
            busy,
            no_answer,
            failed: s.totals.failed_calls - busy - no_answer - not_dialed,
            not_dialed,
            human: s.state.answered_human,
            machine: s.state.answered_machine,
        });
    }
    Ok((out, more))
}

/// Channels in use and recent attempts, per account and server.
#[derive(Default)]
struct Usage {
    channels_by_account: HashMap<i64, i64>,
    channels_by_server: HashMap<i64, i64>,
    recent_by_account: HashMap<i64, i64>,
    recent_by_server: HashMap<i64, i64>,
}

#[derive(diesel::QueryableByName)]
struct UsageRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    account_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    server_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn usage(conn: &mut AsyncPgConnection) -> OpsResult<Usage> {
    let live: Vec<UsageRow> = diesel::sql_query(
        "SELECT account_id, server_id, count(*) AS n FROM call_attempts
         WHERE ended_at IS NULL GROUP BY account_id, server_id",
    )
    .load(conn)
    .await?;
    let recent: Vec<UsageRow> = diesel::sql_query(
        "SELECT account_id, server_id, count(*) AS n FROM call_attempts
         WHERE originated_at > now() - make_interval(secs => $1) GROUP BY account_id, server_id",
    )
    .bind::<Integer, _>(RATE_WINDOW_SECONDS)
    .load(conn)
    .await?;
    let mut u = Usage::default();
    let add = |map: &mut HashMap<i64, i64>, key: Option<i64>, n: i64| {
        if let Some(k) = key {
            *map.entry(k).or_default() += n;
        }
    };
    for r in &live {
        add(&mut u.channels_by_account, r.account_id, r.n);
        add(&mut u.channels_by_server, r.server_id, r.n);
    }
    for r in &recent {
        add(&mut u.recent_by_account, r.account_id, r.n);
        add(&mut u.recent_by_server, r.server_id, r.n);
    }
    Ok(u)
}

fn per_second(recent: Option<&i64>) -> f64 {
    recent.copied().unwrap_or(0) as f64 / f64::from(RATE_WINDOW_SECONDS)
}

#[derive(diesel::QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    accountcode: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    calls_per_second: i32,
    #[diesel(sql_type = Integer)]
    max_concurrent_calls: i32,
    #[diesel(sql_type = BigInt)]
    backlog: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

async fn accounts_live(conn: &mut AsyncPgConnection, u: &Usage) -> OpsResult<Vec<AccountLive>> {
    // Each count stops at the cap: an index range per account, never a whole-table count.
    let rows: Vec<AccountRow> = diesel::sql_query(
        "SELECT a.id, a.accountcode, a.status, a.calls_per_second, a.max_concurrent_calls,
            (SELECT count(*) FROM (SELECT 1 FROM callback_queue q WHERE q.account_id = a.id
                                   LIMIT $1) c) AS backlog,
            (SELECT count(*) FROM (SELECT 1 FROM call_events e WHERE e.account_id = a.id
                                   AND e.delivery_status = 'failed' LIMIT $1) f) AS failed
         FROM accounts a ORDER BY a.accountcode",
    )
    .bind::<BigInt, _>(COUNT_CAP)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AccountLive {
            cps: per_second(u.recent_by_account.get(&r.id)),
            channels: u.channels_by_account.get(&r.id).copied().unwrap_or(0),
            account: r.accountcode,
            status: r.status,
            max_cps: r.calls_per_second,
            max_channels: r.max_concurrent_calls,
            backlog: r.backlog,
            failed_callbacks: r.failed,
        })
        .collect())
}

/// Each server as `ops::servers::states` reads it (the mapping `dialerctl server list` shows),
/// with the attempts' calls per second and channels on it.
async fn servers_live(conn: &mut AsyncPgConnection, u: &Usage) -> OpsResult<Vec<ServerLive>> {
    let states = crate::ops::servers::states(conn).await?;
    Ok(states
        .into_iter()
        .map(|s| ServerLive {
            cps: per_second(u.recent_by_server.get(&s.id)),
            channels: u.channels_by_server.get(&s.id).copied().unwrap_or(0),
            state: s.state,
            holder: s.holder,
            capacity_factor: s.capacity_factor,
            code: s.code,
            enabled: s.enabled,
            max_cps: s.max_cps,
            max_channels: s.max_channels,
        })
        .collect())
}
