//! Batch submission (`insertdataincallqueue`): parse, check each row, store the accepted rows
//! together.

pub mod body;
pub mod rows;
pub mod settings;
pub mod store;

use serde::Serialize;
use serde_json::value::RawValue;

use dialer_core::models::Account;
use dialer_core::phone::parse_country;

use crate::api_error::{ApiError, ApiResult};
use crate::json_body::{self, TopLevel};
use crate::ops::handoff;
use crate::state::AppState;

/// A row that was not added, and why.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RejectedRow {
    /// Position of the row in `data`, from 0.
    pub index: usize,
    #[schema(schema_with = crate::data_schema::phone_as_submitted, required = true)]
    pub phone_number: Option<Box<RawValue>>,
    #[schema(schema_with = crate::data_schema::reject_reason)]
    pub reason: rows::RejectReason,
}

/// The answer to a submission: what was added, what was a duplicate, what was rejected.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubmitResponse {
    #[schema(schema_with = crate::data_schema::success_status)]
    pub status: &'static str,
    pub batch_id: i64,
    /// Rows added by this request.
    pub accepted: usize,
    /// Numbers already in the batch (or repeated in the request): counted, not added again.
    pub duplicates: usize,
    pub rejected: Vec<RejectedRow>,
    /// Calls in the batch now.
    pub total_calls: i64,
    /// Present when the batch dispatches on submission (`"dispatch": true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatched: Option<i64>,
}

struct Parsed {
    batch_id: i64,
    settings: settings::BatchSettings,
    checked: rows::Checked,
}

/// Refuses the whole request when a row has a field the platform does not know (a misspelt
/// `custom_data` would otherwise be dropped). Rows that are not objects are left to
/// [`rows::check`].
fn refuse_unknown_row_fields(data: &[&RawValue]) -> ApiResult<()> {
    for (i, row) in data.iter().enumerate() {
        if let Ok(fields) =
            serde_json::from_str::<std::collections::HashMap<String, &RawValue>>(row.get())
        {
            json_body::refuse_unknown(
                fields.keys().map(String::as_str),
                &rows::ROW_FIELDS,
                &format!("data[{i}]."),
            )?;
        }
    }
    Ok(())
}

/// Parses and checks a body (no I/O): CPU-bound for large batches, so it runs off the worker.
fn parse_and_check(
    body: &[u8],
    account: &Account,
    also_code: Option<String>,
    max_rows: usize,
    max_custom_data_bytes: usize,
) -> ApiResult<Parsed> {
    let top: TopLevel<'_> = json_body::parse_object(body)?;
    let known: Vec<&str> = ["batch_id", "data", "accountcode"]
        .into_iter()
        .chain(settings::FIELDS)
        .collect();
    top.only(&known)?;
    if let Some(code) = top.get::<String>("accountcode", "a string")?
        && code != account.accountcode
        && Some(&code) != also_code.as_ref()
    {
        return Err(ApiError::invalid_request(
            "`accountcode` is not the account of this API key (it may be left out)",
        ));
    }
    let batch_id = json_body::batch_id_field(&top)?
        .ok_or_else(|| ApiError::invalid_request("`batch_id` is required (a positive integer)"))?;
    let data: Vec<&RawValue> = match top.raw("data") {
        None => {
            return Err(ApiError::invalid_request(
                "`data` is required (a list of rows)",
            ));
        }
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| ApiError::invalid_request("`data` must be a list of rows"))?,
    };
    let settings = settings::parse(&top)?;
    refuse_unknown_row_fields(&data)?;
    let limit = max_rows.min(account.max_rows_per_request.max(0) as usize);
    if data.len() > limit {
        return Err(ApiError::payload_too_large(format!(
            "`data` has {} rows; the limit is {limit} per request",
            data.len()
        )));
    }
    let country = parse_country(&account.default_country).map_err(ApiError::internal)?;
    let rules = rows::Rules {
        country,
        allowed_countries: &account.allowed_countries,
        allowed_prefixes: &account.allowed_prefixes,
        max_custom_data_bytes,
    };
    Ok(Parsed {
        batch_id,
        settings,
        checked: rows::check(&data, &rules),
    })
}

pub async fn submit(
    state: &AppState,
    account: &Account,
    body: body::SubmissionBody,
) -> ApiResult<SubmitResponse> {
    let (max_rows, max_custom) = (
        state.config.max_rows_per_request,
        state.config.max_custom_data_bytes,
    );
    let acc = account.clone();
    // A test-mode key may name its live account: the same request works in both modes.
    let also_code = match account.accountcode.ends_with("-test") {
        true => {
            let mut conn = state.pool.get().await?;
            crate::ops::test_mode::live_of(&mut conn, account.id)
                .await?
                .map(|live| live.accountcode)
        }
        false => None,
    };
    let Parsed {
        batch_id,
        settings,
        checked,
    } = actix_web::web::block(move || {
        let json = body.into_json()?;
        parse_and_check(&json, &acc, also_code, max_rows, max_custom)
    })
    .await
    .map_err(ApiError::internal)??;
    let mut conn = state.pool.get().await?;
    let stored = store::store(&mut conn, account, batch_id, &settings, checked).await?;
    drop(conn);
    if let Some(d) = &stored.dispatched {
        handoff::hand_off(
            &state.pool,
            &state.broker,
            d.dispatched,
            &d.batch_pks,
            handoff::API_HANDOFF,
        )
        .await;
    }
    let mut by_reason: Vec<(&'static str, usize)> = Vec::new();
    for r in &stored.rejected {
        match by_reason
            .iter_mut()
            .find(|(reason, _)| *reason == r.reason.as_str())
        {
            Some((_, n)) => *n += 1,
            None => by_reason.push((r.reason.as_str(), 1)),
        }
    }
    crate::metrics::rows(stored.accepted, stored.duplicates, &by_reason);
    tracing::info!(
        batch_id,
        accepted = stored.accepted,
        duplicates = stored.duplicates,
        rejected = stored.rejected.len(),
        "batch submission stored"
    );
    Ok(SubmitResponse {
        status: "success",
        batch_id,
        accepted: stored.accepted,
        duplicates: stored.duplicates,
        rejected: stored
            .rejected
            .into_iter()
            .map(|r| RejectedRow {
                index: r.index,
                phone_number: r.phone_number,
                reason: r.reason,
            })
            .collect(),
        total_calls: stored.total_calls,
        dispatched: stored.dispatched.map(|d| d.dispatched),
    })
}
