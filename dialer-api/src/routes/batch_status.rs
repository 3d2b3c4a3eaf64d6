use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::value::RawValue;

use dialer_core::models::Batch;

use crate::api_error::{ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::csv_download::{self, CsvChunk};
use crate::json_body::parse_batch_id;
use crate::ops::batches::{self, BatchSummary};
use crate::ops::call_listing::{self, CSV_HEADER};
use crate::ops::error::OpsResult;
use crate::ops::paging;
use crate::state::AppState;

/// A batch's progress and a page of its calls.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusResponse {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    #[serde(flatten)]
    batch: BatchSummary,
    /// One entry per call: the callback body of its latest event, or a queued entry.
    #[schema(schema_with = crate::data_schema::call_entries)]
    calls: Vec<Box<RawValue>>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Batch progress and its calls.
///
/// `?format=csv` streams every matching call as CSV (`limit` and `cursor` do not apply).
#[utoipa::path(
    get,
    path = "/api/v1/queues/batch-status/{batch_id}",
    tag = "batches",
    params(
        ("batch_id" = i64, Path, minimum = 1, description = "the client's batch id"),
        ("status" = Option<String>, Query, description = "only calls whose entry shows one of these `call_status` values, comma separated (e.g. `queued,busy`)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "calls per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "the `next_cursor` of the previous page"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
    ),
    responses(
        (status = 200, description = "the batch and a page of its calls", content(
            (StatusResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`invalid_request` naming `batch_id`, `status`, `limit`, `cursor` or `format`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such batch of this account", body = ErrorResponse),
    )
)]
pub async fn batch_status(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    let batch_id = parse_batch_id(&path)?;
    let statuses = call_listing::parse_statuses(query.get("status").map(String::as_str))?;
    let csv = csv_download::wants_csv(&query)?;
    let mut conn = state.pool.get().await?;
    let batch = batches::find_batch(&mut conn, account.id, batch_id).await?;
    if csv {
        drop(conn);
        return Ok(csv_response(
            state.get_ref().clone(),
            account.accountcode.clone(),
            batch,
            statuses,
        ));
    }
    let cursor = paging::parse_cursor(query.get("cursor").map(String::as_str))?.unwrap_or(0);
    let limit = paging::parse_limit(query.get("limit").map(String::as_str))?;
    let summary = batches::summary(&mut conn, &batch).await?;
    let mut rows =
        call_listing::page(&mut conn, batch.id, statuses.as_deref(), cursor, limit + 1).await?;
    let next_cursor = paging::next_cursor(&mut rows, limit, |r| r.id);
    let calls = rows
        .iter()
        .map(|r| r.entry_json(&account.accountcode, batch.batch_id))
        .collect::<OpsResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(StatusResponse {
        status: "success",
        batch: summary,
        calls,
        next_cursor,
    }))
}

/// Every matching call as CSV.
fn csv_response(
    app: AppState,
    accountcode: String,
    batch: Batch,
    statuses: Option<Vec<String>>,
) -> HttpResponse {
    let filename = format!("batch-{}.csv", batch.batch_id);
    csv_download::download(&filename, CSV_HEADER, move |cursor, limit| {
        let (app, accountcode, batch, statuses) = (
            app.clone(),
            accountcode.clone(),
            batch.clone(),
            statuses.clone(),
        );
        async move {
            let mut conn = app.pool.get().await?;
            let after = cursor.unwrap_or(0);
            let rows =
                call_listing::page(&mut conn, batch.id, statuses.as_deref(), after, limit).await?;
            let mut text = String::new();
            for row in &rows {
                call_listing::csv_line(&row.entry_json(&accountcode, batch.batch_id)?, &mut text);
            }
            Ok(CsvChunk {
                text,
                last_id: rows.last().map(|r| r.id),
                rows: rows.len(),
            })
        }
    })
}
