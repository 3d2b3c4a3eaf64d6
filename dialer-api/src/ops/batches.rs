//! Batch lookups and the batch summary (counts, totals, waiting reason), shared by the API and
//! dialerctl.

use std::collections::BTreeMap;

use diesel::dsl::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::calling_hours::CallingHours;
use dialer_core::domain::{BatchStatus, CallStatus, ServerState, StateCounts, Totals};
use dialer_core::models::Batch;
use dialer_core::schema::batches;

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

/// Why calls that could be dialing are not, in words an operator can act on.
async fn waiting_reason(
    conn: &mut AsyncPgConnection,
    batch: &Batch,
    counts: &BTreeMap<&'static str, i64>,
) -> OpsResult<Option<String>> {
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
            if let Some(reason) = no_pbx(conn).await? {
                return Ok(Some(reason));
            }
            outside_calling_hours(conn, batch).await?
        }
    })
}

/// "no PBX connected (...)" when no enabled server takes calls now, with why.
async fn no_pbx(conn: &mut AsyncPgConnection) -> OpsResult<Option<String>> {
    let servers = crate::ops::servers::states(conn).await?;
    if servers.iter().any(|s| s.state.takes_calls()) {
        return Ok(None);
    }
    let codes = |state: ServerState| -> Vec<&str> {
        servers
            .iter()
            .filter(|s| s.state == state)
            .map(|s| s.code.as_str())
            .collect()
    };
    let why = if servers.iter().all(|s| s.state == ServerState::Disabled) {
        "none enabled: dialerctl server add / enable".to_owned()
    } else if !codes(ServerState::Reconnecting).is_empty() {
        format!(
            "reconnecting to {}",
            codes(ServerState::Reconnecting).join(", ")
        )
    } else if !codes(ServerState::HandedOver).is_empty() {
        "being handed over".to_owned()
    } else {
        "no dispatcher running".to_owned()
    };
    Ok(Some(format!("no PBX connected ({why})")))
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
) -> OpsResult<Option<String>> {
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
    let time = NaiveTime::parse_from_str(&now.local_time, "%H:%M").map_err(OpsError::internal)?;
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
