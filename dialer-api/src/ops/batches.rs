//! Batch lookups, the batch summary (counts, totals, waiting reason) and batch control
//! (pause, resume, cancel), shared by the API and dialerctl.

use std::collections::BTreeMap;

use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::calling_hours::CallingHours;
use dialer_core::db::DbPool;
use dialer_core::domain::{BatchStatus, CallStatus, EventType, Totals};
use dialer_core::event_body::never_dialed_body_sql;
use dialer_core::event_outbox;
use dialer_core::models::Batch;
use dialer_core::schema::batches;

use crate::api_error::{ApiError, ApiResult};
use crate::broker::Broker;

/// The account's batch with this client `batch_id`; another account's is "not found".
pub async fn find_batch(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    batch_id: i64,
) -> ApiResult<Batch> {
    batches::table
        .filter(batches::account_id.eq(account_id))
        .filter(batches::batch_id.eq(batch_id))
        .select(Batch::as_select())
        .first(conn)
        .await
        .map_err(|e| match e {
            diesel::result::Error::NotFound => {
                ApiError::not_found(format!("batch {batch_id} not found"))
            }
            other => other.into(),
        })
}

async fn lock_batch(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    batch_id: i64,
) -> ApiResult<Batch> {
    batches::table
        .filter(batches::account_id.eq(account_id))
        .filter(batches::batch_id.eq(batch_id))
        .select(Batch::as_select())
        .for_update()
        .first(conn)
        .await
        .map_err(|e| match e {
            diesel::result::Error::NotFound => {
                ApiError::not_found(format!("batch {batch_id} not found"))
            }
            other => other.into(),
        })
}

/// A batch's progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchSummary {
    pub batch_id: i64,
    #[schema(required = true)]
    pub batch_name: Option<String>,
    #[schema(schema_with = crate::api_schema::batch_status)]
    pub batch_status: BatchStatus,
    /// Why calls that could be dialing are not, in words an operator can act on; else null.
    #[schema(required = true)]
    pub waiting_reason: Option<String>,
    #[serde(flatten)]
    #[schema(schema_with = crate::api_schema::totals)]
    pub totals: Totals,
    /// Every call state, zeros included, so clients need not guess the keys.
    #[schema(schema_with = crate::api_schema::status_counts)]
    pub counts: BTreeMap<&'static str, i64>,
    #[schema(schema_with = crate::api_schema::time_required)]
    pub created_at: String,
    #[schema(schema_with = crate::api_schema::time_or_null, required = true)]
    pub dispatched_at: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: CallStatus,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

pub async fn summary(conn: &mut AsyncPgConnection, batch: &Batch) -> ApiResult<BatchSummary> {
    let rows: Vec<StatusCount> = diesel::sql_query(
        "SELECT status, count(*) AS n FROM calls WHERE batch_pk = $1 GROUP BY status",
    )
    .bind::<BigInt, _>(batch.id)
    .load(conn)
    .await?;
    let mut counts: BTreeMap<&'static str, i64> =
        CallStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for r in &rows {
        counts.insert(r.status.as_str(), r.n);
    }
    let totals = Totals::from_counts(rows.iter().map(|r| (r.status, r.n)));
    let waiting_reason = waiting_reason(conn, batch, &counts).await?;
    Ok(BatchSummary {
        batch_id: batch.batch_id,
        batch_name: batch.name.clone(),
        batch_status: batch.status,
        waiting_reason,
        totals,
        counts,
        created_at: dialer_core::event_body::rfc3339(batch.created_at),
        dispatched_at: batch.dispatched_at.map(dialer_core::event_body::rfc3339),
    })
}

/// Why calls that could be dialing are not, in words an operator can act on.
async fn waiting_reason(
    conn: &mut AsyncPgConnection,
    batch: &Batch,
    counts: &BTreeMap<&'static str, i64>,
) -> ApiResult<Option<String>> {
    let get = |s: CallStatus| counts.get(s.as_str()).copied().unwrap_or(0);
    let undialed =
        get(CallStatus::Queued) + get(CallStatus::Scheduled) + get(CallStatus::RetryWait);
    if undialed == 0 {
        return Ok(None);
    }
    Ok(match batch.status {
        BatchStatus::Paused => Some("batch is paused; resume it to continue".to_owned()),
        BatchStatus::Pending => Some("not dispatched yet; call dispatch-calls".to_owned()),
        BatchStatus::Cancelled => None,
        BatchStatus::Dispatching | BatchStatus::Completed => {
            if get(CallStatus::Queued) > 0 && get(CallStatus::Scheduled) == 0 {
                return Ok(Some(
                    "new calls not dispatched yet; call dispatch-calls".to_owned(),
                ));
            }
            let servers: Count =
                diesel::sql_query("SELECT count(*) AS n FROM asterisk_servers WHERE enabled")
                    .get_result(conn)
                    .await?;
            if servers.n == 0 {
                return Ok(Some("no PBX connected".to_owned()));
            }
            outside_calling_hours(conn, batch).await?
        }
    })
}

#[derive(diesel::QueryableByName)]
struct LocalNow {
    #[diesel(sql_type = Text)]
    timezone: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Jsonb>)]
    calling_hours: Option<serde_json::Value>,
    #[diesel(sql_type = Text)]
    local_time: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    iso_day: i32,
}

/// "outside calling hours until 09:00 Asia/Kolkata" when the batch's (else the account's)
/// calling hours are closed now in the account's timezone. The dispatcher may apply a callee's
/// own zone; this is the operator's view.
async fn outside_calling_hours(
    conn: &mut AsyncPgConnection,
    batch: &Batch,
) -> ApiResult<Option<String>> {
    use chrono::{NaiveTime, Weekday};
    let now: LocalNow = diesel::sql_query(
        "SELECT a.timezone, coalesce($2::jsonb, a.calling_hours) AS calling_hours,
                to_char(now() AT TIME ZONE a.timezone, 'HH24:MI') AS local_time,
                extract(isodow FROM now() AT TIME ZONE a.timezone)::int AS iso_day
         FROM accounts a WHERE a.id = $1",
    )
    .bind::<BigInt, _>(batch.account_id)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Jsonb>, _>(&batch.calling_hours)
    .get_result(conn)
    .await?;
    let Some(hours) = now
        .calling_hours
        .as_ref()
        .and_then(|h| CallingHours::from_json(h).ok())
    else {
        return Ok(None);
    };
    let time = NaiveTime::parse_from_str(&now.local_time, "%H:%M").map_err(ApiError::internal)?;
    let days = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let day = days[(now.iso_day - 1).clamp(0, 6) as usize];
    if hours.allows(day, time) {
        return Ok(None);
    }
    let (on, start) = hours.next_opening(day, time);
    let when = match on {
        None => start.format("%H:%M").to_string(),
        Some(d) => format!("{} {}", d.to_string().to_lowercase(), start.format("%H:%M")),
    };
    Ok(Some(format!(
        "outside calling hours until {when} {}",
        now.timezone
    )))
}

/// `pause`: no new call starts. Idempotent.
pub async fn pause(pool: &DbPool, account_id: i64, batch_id: i64) -> ApiResult<BatchSummary> {
    let mut conn = pool.get().await?;
    conn.transaction::<BatchSummary, ApiError, _>(async |conn| {
        let batch = lock_batch(conn, account_id, batch_id).await?;
        match batch.status {
            BatchStatus::Cancelled | BatchStatus::Completed => {
                return Err(ApiError::conflict(
                    "batch_closed",
                    format!("batch {batch_id} is {}", batch.status),
                ));
            }
            BatchStatus::Paused => {}
            BatchStatus::Pending | BatchStatus::Dispatching => {
                diesel::update(batches::table.find(batch.id))
                    .set((
                        batches::status.eq(BatchStatus::Paused.as_str()),
                        batches::paused_at.eq(diesel::dsl::now),
                        batches::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)
                    .await?;
            }
        }
        let batch = find_batch(conn, account_id, batch_id).await?;
        summary(conn, &batch).await
    })
    .await
}

/// `resume`: dialing continues without another dispatch. The dispatcher drops jobs of paused
/// batches (their calls stay `scheduled`), so resuming re-arms the current job of every
/// scheduled call for the outbox; a job still queued is then delivered twice, which the
/// dispatcher's claim makes harmless.
pub async fn resume(
    pool: &DbPool,
    broker: &Broker,
    account_id: i64,
    batch_id: i64,
) -> ApiResult<BatchSummary> {
    let mut conn = pool.get().await?;
    let (summary, batch_pk) = conn
        .transaction::<(BatchSummary, Option<i64>), ApiError, _>(async |conn| {
            let batch = lock_batch(conn, account_id, batch_id).await?;
            let mut rearmed = None;
            match batch.status {
                BatchStatus::Cancelled => {
                    return Err(ApiError::conflict(
                        "batch_closed",
                        format!("batch {batch_id} is cancelled"),
                    ));
                }
                BatchStatus::Paused => {
                    let next = if batch.dispatched_at.is_some() {
                        BatchStatus::Dispatching
                    } else {
                        BatchStatus::Pending
                    };
                    diesel::update(batches::table.find(batch.id))
                        .set((
                            batches::status.eq(next.as_str()),
                            batches::paused_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                            batches::updated_at.eq(diesel::dsl::now),
                        ))
                        .execute(conn)
                        .await?;
                    diesel::sql_query(
                        "UPDATE dial_jobs j SET published_at = NULL
                         FROM calls c
                         WHERE j.call_pk = c.id AND c.batch_pk = $1 AND c.status = 'scheduled'
                           AND j.attempt = c.attempts + 1 AND j.published_at IS NOT NULL",
                    )
                    .bind::<BigInt, _>(batch.id)
                    .execute(conn)
                    .await?;
                    rearmed = Some(batch.id);
                }
                _ => {}
            }
            let batch = find_batch(conn, account_id, batch_id).await?;
            Ok((summary(conn, &batch).await?, rearmed))
        })
        .await?;
    drop(conn);
    if let Some(pk) = batch_pk {
        crate::dispatch::publish_committed(pool, broker, &[pk]).await;
    }
    Ok(summary)
}

/// `cancel`: no new call starts; every call not yet dialed ends now with a `call_cancelled`
/// event, written in the same transaction as the status change (set-based, one statement).
pub async fn cancel(
    pool: &DbPool,
    broker: &Broker,
    account: &dialer_core::models::Account,
    batch_id: i64,
) -> ApiResult<BatchSummary> {
    let (account_id, accountcode) = (account.id, account.accountcode.as_str());
    let mut conn = pool.get().await?;
    let (summary, batch_pk, cancelled) = conn
        .transaction::<(BatchSummary, i64, usize), ApiError, _>(async |conn| {
            let batch = lock_batch(conn, account_id, batch_id).await?;
            let mut cancelled = 0;
            if batch.status != BatchStatus::Cancelled {
                diesel::update(batches::table.find(batch.id))
                    .set((
                        batches::status.eq(BatchStatus::Cancelled.as_str()),
                        batches::cancelled_at.eq(diesel::dsl::now),
                        batches::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)
                    .await?;
                let undialed = CallStatus::sql_list(CallStatus::is_undialed);
                let body = never_dialed_body_sql(EventType::CallCancelled, None, "$2", "$3");
                cancelled = diesel::sql_query(format!(
                    "WITH target AS (
                        UPDATE calls SET status = 'cancelled', event_seq = event_seq + 1,
                               next_due_at = NULL, finished_at = now(), updated_at = now()
                        WHERE batch_pk = $1 AND status IN ({undialed})
                        RETURNING id, call_id, phone_raw, phone_e164, custom_data, attempts, event_seq
                     ), ev AS (
                        SELECT t.*, 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id FROM target t
                     )
                     INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, event_type, body)
                     SELECT event_id, $4, $1, id, event_seq, 'call_cancelled', {body} FROM ev"
                ))
                .bind::<BigInt, _>(batch.id)
                .bind::<Text, _>(accountcode)
                .bind::<BigInt, _>(batch.batch_id)
                .bind::<BigInt, _>(account_id)
                .execute(conn)
                .await?;
            }
            let batch = find_batch(conn, account_id, batch_id).await?;
            let summary = summary(conn, &batch).await?;
            if cancelled > 0 && summary.totals.pending_calls == 0 && account.callback_batch_events {
                // Nothing left in progress: the cancel itself finishes the batch.
                write_batch_completed(conn, account, &batch, &summary).await?;
                cancelled += 1;
            }
            Ok((summary, batch.id, cancelled))
        })
        .await?;
    drop(conn);
    if cancelled > 0 {
        tracing::info!(batch_id, cancelled, "batch cancelled");
        let result: Result<usize, String> = async {
            let channel = broker.channel().await.map_err(|e| e.to_string())?;
            event_outbox::publish_pending(
                pool,
                &channel,
                &broker.topology,
                event_outbox::Scope::Batches(&[batch_pk]),
            )
            .await
            .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "events left in the outbox for the sweeper");
        }
    }
    Ok(summary)
}

/// The `batch_completed` event (for accounts that subscribe), same body as the dispatcher's.
async fn write_batch_completed(
    conn: &mut AsyncPgConnection,
    account: &dialer_core::models::Account,
    batch: &Batch,
    summary: &BatchSummary,
) -> ApiResult<()> {
    let event_id = dialer_core::event_body::new_event_id();
    let now = chrono::Utc::now();
    let counts: serde_json::Map<String, serde_json::Value> = summary
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| ((*k).to_owned(), (*n).into()))
        .collect();
    let body = serde_json::json!({
        "event_id": event_id,
        "event_type": EventType::BatchCompleted.as_str(),
        "accountcode": account.accountcode,
        "batch_id": batch.batch_id,
        "total_calls": summary.totals.total_calls,
        "completed_calls": summary.totals.completed_calls,
        "failed_calls": summary.totals.failed_calls,
        "counts": counts,
        "occurred_at": dialer_core::event_body::rfc3339(now),
    });
    diesel::sql_query(
        "INSERT INTO call_events (event_id, account_id, batch_pk, event_type, body, occurred_at)
         VALUES ($1, $2, $3, 'batch_completed', $4, $5)",
    )
    .bind::<Text, _>(&event_id)
    .bind::<BigInt, _>(account.id)
    .bind::<BigInt, _>(batch.id)
    .bind::<Text, _>(body.to_string())
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}
