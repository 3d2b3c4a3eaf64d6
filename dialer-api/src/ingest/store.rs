//! Storing a submission: one transaction per request, serialised per account (quotas), with
//! set-based statements (arrays bound once, `UNNEST`), never a statement per row.

use std::collections::HashSet;

use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use dialer_core::call_flow::CallFlow;
use dialer_core::domain::{AmdPolicy, BatchStatus, CallStatus};
use dialer_core::lifecycle;
use dialer_core::models::Account;

use super::rows::{Candidate, Checked, RejectReason, Rejection};
use super::settings::BatchSettings;
use crate::api_error::{ApiError, ApiResult};
use crate::ops;
use crate::ops::batches::find_batch;
use crate::ops::dispatch::{DispatchOutcome, schedule_in_tx};
use dialer_core::prepared::PrepareOnce;

pub struct Stored {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
    pub total_calls: i64,
    pub dispatched: Option<DispatchOutcome>,
}

#[derive(diesel::QueryableByName)]
struct Phone {
    #[diesel(sql_type = Text)]
    phone_e164: String,
}

/// The numbers a `SELECT phone_e164 ...` found.
fn phone_set(rows: Vec<Phone>) -> HashSet<String> {
    rows.into_iter().map(|p| p.phone_e164).collect()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Lock key space for per-account ingestion (first half of the two-key advisory lock).
const INGEST_LOCK: i32 = 0x696e_6773; // "ings"

/// Why the submission's transaction ended without committing.
enum Abort {
    Refused(ApiError),
    /// Nothing was accepted for a batch this request would have created: the batch is not
    /// created either (an empty batch with frozen settings helps nobody).
    NothingToCreate(Stored),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Refused(e.into())
    }
}

impl From<ApiError> for Abort {
    fn from(e: ApiError) -> Self {
        Abort::Refused(e)
    }
}

pub async fn store(
    conn: &mut AsyncPgConnection,
    account: &Account,
    batch_id: i64,
    settings: &BatchSettings,
    checked: Checked,
) -> ApiResult<Stored> {
    let stored = conn
        .transaction::<Stored, Abort, _>(async |conn| {
            store_in_tx(conn, account, batch_id, settings, checked).await
        })
        .await;
    match stored {
        Ok(s) | Err(Abort::NothingToCreate(s)) => Ok(s),
        Err(Abort::Refused(e)) => Err(e),
    }
}

async fn store_in_tx(
    conn: &mut AsyncPgConnection,
    account: &Account,
    batch_id: i64,
    settings: &BatchSettings,
    checked: Checked,
) -> Result<Stored, Abort> {
    {
        // One submission per account at a time, so quota checks see each other's rows.
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<Integer, _>(INGEST_LOCK)
            .bind::<Integer, _>(account.id as i32)
            .prepared()
            .execute(conn)
            .await?;
        let flow = ops::call_flow::resolve(conn, account.id, settings.flow_overrides())
            .await
            .map_err(ApiError::from)?;
        let (batch, created) = upsert_batch(conn, account.id, batch_id, settings, &flow).await?;
        if !batch.status.accepts_calls() {
            return Err(ApiError::conflict(
                "batch_closed",
                format!("batch {batch_id} is cancelled"),
            )
            .into());
        }
        if let Some(field) = settings.conflict_with(&batch) {
            return Err(ApiError::conflict(
                "batch_settings_conflict",
                format!(
                    "`{field}` differs from the value batch {batch_id} was created with; \
                     settings are taken when a batch is created and cannot change"
                ),
            )
            .into());
        }

        let Checked {
            mut candidates,
            mut rejected,
            duplicates: in_request_duplicates,
        } = checked;
        let numbers: Vec<String> = candidates
            .iter()
            .map(|c| c.number.as_str().to_owned())
            .collect();
        let dnc = diesel::sql_query(
            "SELECT phone_e164 FROM dnc_numbers
             WHERE phone_e164 = ANY($1) AND (account_id IS NULL OR account_id = $2)",
        )
        .bind::<Array<Text>, _>(&numbers)
        .bind::<BigInt, _>(account.id)
        .prepared()
        .load::<Phone>(conn)
        .await?;
        let dnc = phone_set(dnc);
        let recent = if account.redial_window_hours > 0 {
            let recent = diesel::sql_query(
                "SELECT DISTINCT phone_e164 FROM calls
                 WHERE account_id = $1 AND phone_e164 = ANY($2)
                   AND last_dialed_at > now() - make_interval(hours => $3)",
            )
            .bind::<BigInt, _>(account.id)
            .bind::<Array<Text>, _>(&numbers)
            .bind::<Integer, _>(account.redial_window_hours)
            .prepared()
            .load::<Phone>(conn)
            .await?;
            phone_set(recent)
        } else {
            HashSet::new()
        };
        candidates.retain(|c: &Candidate| {
            let reason = if dnc.contains(c.number.as_str()) {
                RejectReason::DoNotCall
            } else if recent.contains(c.number.as_str()) {
                RejectReason::RecentlyCalled
            } else {
                return true;
            };
            rejected.push(Rejection {
                index: c.index,
                phone_number: Some(c.raw_json.clone()),
                reason,
            });
            false
        });
        rejected.sort_by_key(|r| r.index);

        let accepted = insert_calls(conn, account.id, batch.id, &candidates).await?;
        let duplicates = in_request_duplicates + (candidates.len() - accepted);
        if created && accepted == 0 {
            return Err(Abort::NothingToCreate(Stored {
                accepted,
                duplicates,
                rejected,
                total_calls: 0,
                dispatched: None,
            }));
        }

        if accepted > 0 {
            check_quotas(conn, account).await?;
            if batch.status == BatchStatus::Completed {
                // New calls reopen a finished batch.
                lifecycle::schedule::reopen(conn, batch.id, batch.dispatched_at.is_some()).await?;
            }
        }
        let dispatched = if batch.auto_dispatch && batch.status != BatchStatus::Paused {
            Some(schedule_in_tx(conn, account.id, Some(batch.id)).await?)
        } else {
            None
        };
        let total: Count = diesel::sql_query("SELECT count(*) AS n FROM calls WHERE batch_pk = $1")
            .bind::<BigInt, _>(batch.id)
            .prepared()
            .get_result(conn)
            .await?;
        Ok(Stored {
            accepted,
            duplicates,
            rejected,
            total_calls: total.n,
            dispatched,
        })
    }
}

async fn upsert_batch(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    batch_id: i64,
    s: &BatchSettings,
    flow: &CallFlow,
) -> ApiResult<(dialer_core::models::Batch, bool)> {
    // Settings are taken only when the batch is created; later posts may repeat them only.
    let created = diesel::sql_query(
        "INSERT INTO batches (account_id, batch_id, name, caller_id, max_attempts, retry_delay_seconds,
                              retry_on, calling_hours, priority, expires_at, auto_dispatch,
                              amd, message_prompt, voicemail_prompt, gather, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, 0), $10, coalesce($11, false),
                 $12, $13, $14, $15, $16)
         ON CONFLICT (account_id, batch_id) DO NOTHING",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(batch_id)
    .bind::<Nullable<Text>, _>(&s.name)
    .bind::<Nullable<Text>, _>(&s.caller_id)
    .bind::<Nullable<Integer>, _>(s.max_attempts)
    .bind::<Nullable<Integer>, _>(s.retry_delay_seconds)
    .bind::<Nullable<Array<Text>>, _>(&s.retry_on)
    .bind::<Nullable<Jsonb>, _>(&s.calling_hours)
    .bind::<Nullable<Integer>, _>(s.priority)
    .bind::<Nullable<Timestamptz>, _>(s.expires_at)
    .bind::<Nullable<Bool>, _>(s.dispatch)
    .bind::<Text, _>(flow.amd.unwrap_or(AmdPolicy::Off))
    .bind::<Nullable<Text>, _>(&flow.message_prompt)
    .bind::<Nullable<Text>, _>(&flow.voicemail_prompt)
    .bind::<Nullable<Jsonb>, _>(flow.gather.as_ref().and_then(|g| serde_json::to_value(g).ok()))
    .bind::<Bool, _>(flow.record)
    .prepared()
    .execute(conn)
    .await?;
    Ok((find_batch(conn, account_id, batch_id).await?, created == 1))
}

async fn insert_calls(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    batch_pk: i64,
    candidates: &[Candidate],
) -> ApiResult<usize> {
    if candidates.is_empty() {
        return Ok(0);
    }
    let raw: Vec<&str> = candidates.iter().map(|c| c.raw.as_str()).collect();
    let e164: Vec<&str> = candidates.iter().map(|c| c.number.as_str()).collect();
    let region: Vec<Option<&str>> = candidates.iter().map(|c| c.number.region()).collect();
    let custom: Vec<Option<&str>> = candidates
        .iter()
        .map(|c| c.custom_data.as_deref())
        .collect();
    let n = diesel::sql_query(
        "INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, phone_region, custom_data)
         SELECT $1, $2, r.raw, r.e164, r.region, r.custom
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[]) AS r(raw, e164, region, custom)
         ON CONFLICT (account_id, batch_pk, phone_e164) DO NOTHING",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(batch_pk)
    .bind::<Array<Text>, _>(&raw)
    .bind::<Array<Text>, _>(&e164)
    .bind::<Array<Nullable<Text>>, _>(&region)
    .bind::<Array<Nullable<Text>>, _>(&custom)
    .prepared()
    .execute(conn)
    .await?;
    Ok(n)
}

/// Runs after the insert, inside the transaction: a breach rolls the whole request back.
async fn check_quotas(conn: &mut AsyncPgConnection, account: &Account) -> ApiResult<()> {
    let unfinished = CallStatus::sql_unfinished("", |_| true);
    let queued: Count = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM calls WHERE account_id = $1 AND {unfinished}"
    ))
    .bind::<BigInt, _>(account.id)
    .prepared()
    .get_result(conn)
    .await?;
    within_quota(
        queued.n,
        "calls waiting or in progress",
        "max_queued_calls",
        account.max_queued_calls,
    )?;
    let today: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM calls
         WHERE account_id = $1 AND created_at >= (date_trunc('day', now() AT TIME ZONE $2) AT TIME ZONE $2)",
    )
    .bind::<BigInt, _>(account.id)
    .bind::<Text, _>(&account.timezone)
    .prepared()
    .get_result(conn)
    .await?;
    within_quota(
        today.n,
        "calls submitted today",
        "max_calls_per_day",
        account.max_calls_per_day,
    )
}

/// Refuses a count over the account's quota `setting` (whose value is `max`).
fn within_quota(n: i64, what: &str, setting: &str, max: i64) -> ApiResult<()> {
    if n > max {
        return Err(ApiError::quota_exceeded(format!(
            "this request would make {n} {what}; the account's {setting} is {max}"
        )));
    }
    Ok(())
}
