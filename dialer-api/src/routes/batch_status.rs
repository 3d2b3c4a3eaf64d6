use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use diesel_async::pooled_connection::deadpool::Object;
use serde::Serialize;
use serde_json::value::RawValue;

use dialer_core::domain::CallStatus;
use dialer_core::models::Batch;

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::json_body::parse_batch_id;
use crate::ops::batches::{self, BatchSummary};
use crate::ops::call_listing::{self, CSV_HEADER};
use crate::ops::error::{OpsError, OpsResult};
use crate::ops::paging;
use crate::state::AppState;

const CSV_CHUNK: i64 = 5000;

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

/// `?status=`: the `call_status` values entries show (their latest event's, or `queued` before
/// any), never the internal states behind `counts`, so a filter matches what a client reads.
fn parse_statuses(q: &HashMap<String, String>) -> ApiResult<Option<Vec<String>>> {
    let Some(raw) = q.get("status") else {
        return Ok(None);
    };
    let shown = call_listing::entry_statuses();
    let mut out = Vec::new();
    for s in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match s.parse::<CallStatus>() {
            Ok(status) if shown.contains(&status) => out.push(status.as_str().to_owned()),
            _ => {
                let names: Vec<&str> = shown.iter().map(|s| s.as_str()).collect();
                return Err(ApiError::invalid_request(format!(
                    "`status`: `{}` is not a call_status entries show ({})",
                    dialer_core::client_text::quoted(s),
                    names.join(", ")
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(ApiError::invalid_request("`status` is empty"));
    }
    Ok(Some(out))
}

fn parse_cursor(q: &HashMap<String, String>) -> ApiResult<i64> {
    match q.get("cursor").map(String::as_str) {
        None | Some("") => Ok(0),
        Some(c) => {
            c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid_request("`cursor` is not a cursor this API returned")
            })
        }
    }
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
    Client { state, account }: Client,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    let batch_id = parse_batch_id(&path)?;
    let statuses = parse_statuses(&query)?;
    let csv = match query.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "`format` must be json or csv, not `{other}`"
            )));
        }
    };
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
    let cursor = parse_cursor(&query)?;
    let limit = paging::parse_limit(query.get("limit").map(String::as_str))?;
    let summary = batches::summary(&mut conn, &batch).await?;
    let mut rows =
        call_listing::page(&mut conn, batch.id, statuses.as_deref(), cursor, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
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

struct CsvState {
    app: AppState,
    accountcode: String,
    batch: Batch,
    statuses: Option<Vec<String>>,
    after: i64,
    header_sent: bool,
    done: bool,
}

/// Streams every matching call as CSV, a chunk of rows per database round trip, so memory stays
/// flat whatever the batch size.
fn csv_response(
    app: AppState,
    accountcode: String,
    batch: Batch,
    statuses: Option<Vec<String>>,
) -> HttpResponse {
    let filename = format!("batch-{}.csv", batch.batch_id);
    let init = CsvState {
        app,
        accountcode,
        batch,
        statuses,
        after: 0,
        header_sent: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(init, |mut st| async move {
        if st.done {
            return None;
        }
        let mut out = String::new();
        if !st.header_sent {
            out.push_str(CSV_HEADER);
            st.header_sent = true;
        }
        let chunk = async {
            let mut conn: Object<_> = st.app.pool.get().await?;
            call_listing::page(
                &mut conn,
                st.batch.id,
                st.statuses.as_deref(),
                st.after,
                CSV_CHUNK,
            )
            .await
        }
        .await;
        match chunk {
            Ok(rows) => {
                if (rows.len() as i64) < CSV_CHUNK {
                    st.done = true;
                }
                for row in &rows {
                    match row.entry_json(&st.accountcode, st.batch.batch_id) {
                        Ok(entry) => call_listing::csv_line(&entry, &mut out),
                        Err(e) => return Some((Err(e), CsvState { done: true, ..st })),
                    }
                }
                if let Some(last) = rows.last() {
                    st.after = last.id;
                }
                Some((Ok::<Bytes, OpsError>(Bytes::from(out)), st))
            }
            // Headers are gone by now: ending the stream early is the only signal left.
            Err(e) => Some((Err(e), CsvState { done: true, ..st })),
        }
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(stream)
}
