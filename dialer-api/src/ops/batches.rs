//! Batch lookups and the batch summary (counts, totals, waiting reason), shared by the API and
//! dialerctl.

use std::collections::BTreeMap;

use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::domain::{BatchStatus, CallStatus, StateCounts, Totals};
use dialer_core::models::Batch;
use dialer_core::schema::batches;

use crate::ops::dry_run;
use crate::ops::error::{OpsError, OpsResult, Refusals};

/// The account's batch with this client `batch_id`; another account's is "not found".
pub async fn find_batch(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    batch_id: i64,
) -> OpsResult<Batch> {
    of_account(account_id, batch_id)
        .first(conn)
        .await
        .map_err(not_found(batch_id))
}

/// [`find_batch`], the row locked until the transaction ends.
pub async fn lock_batch(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    batch_id: i64,
) -> OpsResult<Batch> {
    of_account(account_id, batch_id)
        .for_update()
        .first(conn)
        .await
        .map_err(not_found(batch_id))
}

#[diesel::dsl::auto_type(no_type_alias)]
fn of_account(account_id: i64, batch_id: i64) -> _ {
    let select: AsSelect<Batch, Pg> = Batch::as_select();
    batches::table
        .filter(batches::account_id.eq(account_id))
        .filter(batches::batch_id.eq(batch_id))
        .select(select)
}

fn not_found(batch_id: i64) -> impl FnOnce(diesel::result::Error) -> OpsError {
    move |e| Refusals::missing(format!("batch {batch_id} not found")).error(e)
}

/// A batch's progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchSummary {
    pub batch_id: i64,
    #[schema(required = true)]
    pub batch_name: Option<String>,
    #[schema(schema_with = crate::data_schema::batch_status)]
    pub batch_status: BatchStatus,
    /// Why calls that could be dialing are not, in words an operator can act on; else null.
    #[schema(required = true)]
    pub waiting_reason: Option<String>,
    #[serde(flatten)]
    #[schema(schema_with = crate::data_schema::totals)]
    pub totals: Totals,
    /// Every call state, zeros included, so clients need not guess the keys.
    #[schema(schema_with = crate::data_schema::status_counts)]
    pub counts: BTreeMap<&'static str, i64>,
    /// What `counts` and `totals` were made of, for `batch_completed`.
    #[serde(skip)]
    #[schema(ignore)]
    pub state: StateCounts,
    #[schema(schema_with = crate::data_schema::time_required)]
    pub created_at: String,
    #[schema(schema_with = crate::data_schema::time_or_null, required = true)]
    pub dispatched_at: Option<String>,
}

pub async fn summary(conn: &mut AsyncPgConnection, batch: &Batch) -> OpsResult<BatchSummary> {
    let state = dialer_core::lifecycle::state_counts(conn, batch.id).await?;
    let counts: BTreeMap<&'static str, i64> = state.count_map().into_iter().collect();
    let totals = state.totals();
    let waiting_reason = waiting_reason(conn, batch, &counts).await?;
    Ok(BatchSummary {
        batch_id: batch.batch_id,
        batch_name: batch.name.clone(),
        batch_status: batch.status,
        waiting_reason,
        totals,
        counts,
        state,
        created_at: dialer_core::event_body::rfc3339(batch.created_at),
        dispatched_at: batch.dispatched_at.map(dialer_core::event_body::rfc3339),
    })
}

/// How many of a batch's undialed calls `waiting_reason` looks at: enough to name what holds
/// the batch, few enough for a status poll (clients poll a few times a second; a sample of
/// 1,000 cost PostgreSQL 0.2-0.35 s of CPU per 1,000 calls in the paced bench).
const WAITING_SAMPLE: i64 = 100;

/// Why calls that could be dialing are not, in words an operator can act on: the dry run of up
/// to 100 of the batch's undialed calls as they are, and the reason that holds most of them
/// when none would dial.
async fn waiting_reason(
    conn: &mut AsyncPgConnection,
    batch: &Batch,
    counts: &BTreeMap<&'static str, i64>,
) -> OpsResult<Option<String>> {
    let get = |s: CallStatus| counts.get(s.as_str()).copied().unwrap_or(0);
    let undialed =
        get(CallStatus::Queued) + get(CallStatus::Scheduled) + get(CallStatus::RetryWait);
    if undialed == 0 || batch.status == BatchStatus::Cancelled {
        return Ok(None);
    }
    let scope = dry_run::Scope {
        account_id: Some(batch.account_id),
        batch_pk: Some(batch.id),
    };
    let run =
        dry_run::evaluate_limited(conn, scope, dry_run::Mode::AsTheyAre, Some(WAITING_SAMPLE))
            .await?;
    if run.would_dial > 0 {
        return Ok(None);
    }
    Ok(run.held.into_iter().next().map(|h| h.detail))
}
